"""The data-scaling experiment in miniature: one SFT run per data size, same step budget.

Writes the paper's Table 1 (greedy, PassRatio@N, Pass@N against SFT data
size, beside the question-blind control) and its reasoning-complexity analysis
(accuracy vs steps with the fitted ``Acc_step ** s``, steps beyond training
reported apart, and where the first wrong equation sits) per size.
"""

from __future__ import annotations

import json
import os

from mathjax.experiments.complexity import fit_within_and_beyond, read_step_accuracy
from mathjax.experiments.plots import plot_first_wrong_by_size, plot_scaling, plot_steps_by_size

PLOTS = {"scaling": "scaling.png", "steps": "scaling_steps.png", "first_wrong": "scaling_first_wrong.png"}


def _subset(train_path: str, n: int, out_path: str) -> str:
    """The first n training examples (the generator's order is already shuffled)."""
    if not os.path.exists(out_path):
        with open(train_path) as f:
            lines = [line for _, line in zip(range(n), f)]
        if len(lines) < n:
            raise ValueError(f"{train_path}: has {len(lines)} examples, scale {n} asked for more")
        tmp = f"{out_path}.tmp"
        with open(tmp, "w") as f:
            f.writelines(lines)
        os.replace(tmp, out_path)
    return out_path


def _row(n: int, graded: dict, report: dict) -> dict:
    """One size's cached result: demo.grade's numbers plus the report's step and first-wrong analyses."""
    row = {"num_examples": n, **{k: graded[k] for k in ("greedy_accuracy", "pass_ratio", "pass_at_n", "n")}}
    for k in ("control_pass_at_n", "control_pass_ratio", "correct_reasons"):
        if k in graded:
            row[k] = graded[k]
    for k in ("accuracy_by_steps", "first_wrong_equation"):
        if k in report:
            row[k] = report[k]
    return row


def run_scaling(opts, stages, data: dict, tok_dir: str, records: list[dict], train_inputs: dict) -> dict:
    """Trains, samples and grades one model per size in ``opts.scales``; writes scaling.{json,md} and PNGs."""
    from mathjax.experiments import demo

    work = os.path.abspath(opts.workdir)
    control = data["train"] if opts.control else None  # the same guesser as the main model's report
    rows = []
    for n in sorted(opts.scales):
        sub = os.path.join(work, f"scale_{n}")
        # "control" is part of the inputs so markers from before the control (or with it toggled) rerun.
        inputs = {**train_inputs, "num_examples": n, "num_samples": opts.scale_num_samples,
                  "temperature": opts.temperature, "max_new_tokens": opts.max_new_tokens, "control": bool(control)}

        def one(n=n, sub=sub):
            os.makedirs(sub, exist_ok=True)  # after a changed stage removed it
            train_file = _subset(data["train"], n, os.path.join(sub, "train.jsonl"))
            demo.train_model(opts, train_file, tok_dir, os.path.join(sub, "sft"))
            demo.sample_model(opts, os.path.join(sub, "sft"), records, os.path.join(sub, "samples.jsonl"),
                              opts.scale_num_samples, opts.temperature)
            demo.sample_model(opts, os.path.join(sub, "sft"), records, os.path.join(sub, "greedy.jsonl"), 1, 0.0)
            graded = demo.grade(opts, os.path.join(sub, "samples.jsonl"), os.path.join(sub, "greedy.jsonl"),
                                os.path.join(sub, "report"), control_answers=control)
            with open(os.path.join(graded["report_dir"], "report.json")) as f:
                report = json.load(f)
            return _row(n, graded, report)

        rows.append(stages.run(f"scale_{n}", one, inputs, (sub,)))
    return write_scaling(rows, work, opts.train_max_steps)


def summarise_rows(rows: list[dict], train_max_steps: int) -> list[dict]:
    """Rows sorted by size, each with ``steps_fit``: per-step accuracy, the fit within training, the steps beyond.

    Computed from the cached rows rather than cached itself, so a change to the
    fit never needs a model retrained.
    """
    out = []
    for r in sorted(rows, key=lambda r: r["num_examples"]):
        steps = read_step_accuracy(r)
        out.append({**r, "steps_fit": {**steps, **fit_within_and_beyond(steps, train_max_steps)}})
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _acc_step(sf: dict) -> str:
    return f"{sf['fit']['acc_step']:.3f}" if sf.get("fit") else "-"


def _table1(rows: list[dict]) -> list[str]:
    lines = ["| SFT examples | greedy | PassRatio@N | Pass@N | control PassRatio@N | control Pass@N "
             "| correct samples with every equation right (%) | est. Acc_step |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        why = r.get("correct_reasons") or {}
        right = why.get("all_equations_right_share") if why.get("correct_samples") else None
        lines.append(f"| {r['num_examples']} | {_pct(r['greedy_accuracy'])} | {_pct(r['pass_ratio'])} | "
                     f"{_pct(r['pass_at_n'])} | {_pct(r.get('control_pass_ratio'))} | "
                     f"{_pct(r.get('control_pass_at_n'))} | {_pct(right)} | {_acc_step(r['steps_fit'])} |")
    return lines


def _steps_table(rows: list[dict], train_max_steps: int) -> list[str]:
    sizes = " | ".join(str(r["num_examples"]) for r in rows)
    lines = [f"| steps | {sizes} |", "|---|" + "---:|" * len(rows)]
    all_steps = sorted({s for r in rows for s in r["steps_fit"]["accuracy"]})
    for s in all_steps:
        label = f"{s}" if s <= train_max_steps else f"**{s} (beyond training)**"
        cells = []
        for r in rows:
            sf = r["steps_fit"]
            cells.append(f"{_pct(sf['accuracy'][s])} (n={sf['counts'][s]})" if s in sf["accuracy"] else "-")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append(f"| fitted Acc_step (steps 1..{train_max_steps}) | "
                 + " | ".join(_acc_step(r["steps_fit"]) for r in rows) + " |")
    lines.append("| fit RMSE (accuracy, %) | " + " | ".join(
        _pct(r["steps_fit"]["fit"]["residual_rmse"]) if r["steps_fit"].get("fit") else "-" for r in rows) + " |")
    return lines


def _beyond_table(rows: list[dict]) -> list[str]:
    lines = ["| SFT examples | steps | count | measured (%) | predicted Acc_step^s (%) | measured - predicted (pp) |",
             "|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        for b in r["steps_fit"]["beyond"]:
            gap = None if b["predicted"] is None else b["measured"] - b["predicted"]
            lines.append(f"| {r['num_examples']} | {b['steps']} | {b['count']} | {_pct(b['measured'])} | "
                         f"{_pct(b['predicted'])} | {_pct(gap)} |")
    return lines if len(lines) > 2 else []


def _first_wrong_table(rows: list[dict]) -> list[str]:
    have = [r for r in rows if (r.get("first_wrong_equation") or {}).get("bins")]
    if not have:
        return []
    lines = ["| position | " + " | ".join(str(r["num_examples"]) for r in have) + " |",
             "|---|" + "---:|" * len(have)]
    for i, b in enumerate(have[0]["first_wrong_equation"]["bins"]):
        lines.append(f"| [{b['from']:.1f}, {b['to']:.1f}) | "
                     + " | ".join(_pct(r["first_wrong_equation"]["bins"][i]["share"]
                                       if r["first_wrong_equation"]["samples"] else None) for r in have) + " |")
    lines.append("| samples with a wrong equation | "
                 + " | ".join(str(r["first_wrong_equation"]["samples"]) for r in have) + " |")
    return lines


def scaling_markdown(rows: list[dict], train_max_steps: int) -> str:
    """``scaling.md``: Table 1, accuracy vs steps with the fit, the steps beyond training, first-wrong positions.

    ``rows`` come from :func:`summarise_rows`.
    """
    n = rows[0]["n"] if rows else 0
    sources = {r["steps_fit"].get("source") for r in rows} - {None}
    per = ("PassRatio of the questions with s steps, %; n = questions" if sources == {"question"}
           else "accuracy of the samples that took s steps, %; n = samples")
    out = ["# Data scaling in miniature (the paper's Table 1)", "",
           f"N = {n} samples per question. Control: a question-blind guesser drawing final answers from the "
           "training set's answer distribution, scored on the same questions. Acc_step: the fit of "
           f"`Acc(s) = Acc_step ** s` (weighted least squares on log accuracy through the origin, weights = "
           f"bucket counts) on steps 1..{train_max_steps}, those seen in SFT.", ""]
    out += _table1(rows) + ["", f"## Accuracy vs reasoning steps ({per})", ""]
    out += _steps_table(rows, train_max_steps)
    notes = [f"{r['num_examples']}: {r['steps_fit']['error']}" for r in rows if r["steps_fit"].get("error")]
    notes += [f"{r['num_examples']}: accuracy 0 at steps {r['steps_fit']['fit']['clipped_steps']} clipped to "
              "0.5/count for the log fit" for r in rows if (r["steps_fit"].get("fit") or {}).get("clipped_steps")]
    notes += [f"{r['num_examples']}: pooled buckets {r['steps_fit']['skipped']} left out" for r in rows
              if r["steps_fit"].get("skipped")]
    out += [""] + [f"- {x}" for x in notes] + ([""] if notes else [])
    beyond = _beyond_table(rows)
    if beyond:
        out += ["## Beyond training: measured vs the fit's prediction", "",
                f"Problems longer than any in SFT (> {train_max_steps} steps), reported apart; the fit never saw them.",
                ""] + beyond + [""]
    first = _first_wrong_table(rows)
    if first:
        out += ["## Position of the first wrong equation (share of samples with a wrong equation, %)", ""]
        out += first + [""]
    return "\n".join(out)


def _write(path: str, text: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_scaling(rows: list[dict], out_dir: str, train_max_steps: int) -> dict:
    """Writes ``scaling.json``, ``scaling.md`` and the three PNGs of :data:`PLOTS` into ``out_dir``.

    Needs no model: ``rows`` are the per-size dicts that ``run_scaling`` caches.
    Returns ``{"rows", "plot", "plots", "markdown"}`` (``plot``: the Table 1 plot).
    """
    rows = summarise_rows(rows, train_max_steps)
    _write(os.path.join(out_dir, "scaling.json"), json.dumps(rows, indent=2))
    md = os.path.join(out_dir, "scaling.md")
    _write(md, scaling_markdown(rows, train_max_steps) + "\n")
    plots = {k: os.path.join(out_dir, v) for k, v in PLOTS.items()}
    plot_scaling(rows, plots["scaling"])
    plot_steps_by_size(rows, plots["steps"], train_max_steps)
    plot_first_wrong_by_size(rows, plots["first_wrong"])
    return {"rows": rows, "plot": plots["scaling"], "plots": plots, "markdown": md}
