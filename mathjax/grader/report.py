"""Reports: ``report.json``, ``report.md`` (tables) and ``pass_at_k.png``.

:func:`evaluate` is the whole pipeline behind ``scripts/grade.py``: grade a
samples file, compute metrics and analyses, write the three files.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping

from mathjax.grader.analysis import accuracy_by_steps, correct_reasons, error_breakdown, first_wrong_positions
from mathjax.grader.api import DEFAULT_TIMEOUT
from mathjax.grader.bulk import grade_run
from mathjax.grader.control import CONTROL_LABEL, control_metrics, load_answer_distribution
from mathjax.grader.metrics import DEFAULT_BOOTSTRAP, compute_metrics
from mathjax.grader.samples_io import is_uri, join_path, make_dirs, open_path

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
PLOT_PNG = "pass_at_k.png"
DETAILS_JSONL = "graded.jsonl"


def _pct(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{100 * x:.1f}"


def _ci(c) -> str:
    return f"[{100 * c[0]:.1f}, {100 * c[1]:.1f}]" if c else "-"


def _markdown(r: dict) -> str:
    lines = ["# Grading report", ""]
    lines.append(f"- questions: {r.get('num_questions', 0)}, samples: {r.get('num_samples', 0)}")
    if "samples_per_question" in r:
        lines.append(f"- samples per question: {r['samples_per_question']}")
    lines.append(
        f"- first-sample accuracy: {_pct(r.get('first_sample_accuracy'))}% "
        f"{_ci(r.get('first_sample_accuracy_ci'))}"
    )
    if "pass_ratio" in r:
        lines.append(f"- PassRatio: {_pct(r['pass_ratio'])}% {_ci(r.get('pass_ratio_ci'))}")
    if "greedy_accuracy" in r:
        lines.append(f"- greedy accuracy: {_pct(r['greedy_accuracy'])}%")
    if "extraction_rate" in r:
        lines.append(f"- answers extracted: {_pct(r['extraction_rate'])}% of samples")
    ctl = r.get("control") or {}
    if ctl:
        dist = ctl.get("distribution") or {}
        lines.append(
            f"- {CONTROL_LABEL} (guesses drawn from the answer distribution of {ctl.get('source') or 'a table'}: "
            f"{dist.get('answers', 0):g} answers, {dist.get('distinct_answers', 0)} distinct; the gold is among them "
            f"for {ctl.get('questions_with_gold_in_distribution', 0)} of {ctl.get('num_questions', 0)} questions): "
            f"first-sample accuracy = PassRatio = {_pct(ctl.get('first_sample_accuracy'))}%"
        )
    lines.append("")
    pk = r.get("pass_at_k") or {}
    if pk:
        conf = int(round(100 * r.get("confidence", 0.95)))
        head = f"| k | Pass@k (%) | {conf}% CI | PassRatio@k (%) | maj@k (%) | {conf}% CI |"
        rule = "|---:|---:|---|---:|---:|---|"
        if ctl:  # the control beside the model, same k
            head += " control Pass@k (%) | control PassRatio@k (%) | control maj@k (%) |"
            rule += "---:|---:|---:|"
        lines += [head, rule]
        for k in pk:
            row = (
                f"| {k} | {_pct(pk[k])} | {_ci((r.get('pass_at_k_ci') or {}).get(k))} | "
                f"{_pct((r.get('pass_ratio_at_k') or {}).get(k))} | {_pct((r.get('maj_at_k') or {}).get(k))} | "
                f"{_ci((r.get('maj_at_k_ci') or {}).get(k))} |"
            )
            if ctl:
                row += "".join(f" {_pct((ctl.get(key) or {}).get(k))} |"
                               for key in ("pass_at_k", "pass_ratio_at_k", "maj_at_k"))
            lines.append(row)
        lines.append("")
    groupings = [(r.get(key), title) for key, title in (("by_level", "By level"), ("by_subject", "By subject"))]
    groupings += [(ctl.get(key), f"{title}: {CONTROL_LABEL}") for key, title in
                  (("by_level", "By level"), ("by_subject", "By subject"))]
    for groups, title in groupings:
        if not groups:
            continue
        cols = [c for c in next(iter(groups.values())) if c != "questions"]
        lines += [f"## {title}", "", "| group | questions | " + " | ".join(f"{c} (%)" for c in cols) + " |"]
        lines.append("|---|---:|" + "---:|" * len(cols))
        for g, row in groups.items():
            lines.append(f"| {g} | {row.get('questions', 0)} | " + " | ".join(_pct(row.get(c)) for c in cols) + " |")
        lines.append("")
    steps = r.get("accuracy_by_steps")
    if steps and steps.get("buckets"):
        unit = "questions" if steps["source"] == "question" else "samples"
        lines += [f"## Accuracy vs reasoning steps (per {steps['source']})", "", f"| steps | {unit} | accuracy (%) |"]
        lines.append("|---:|---:|---:|")
        for b in steps["buckets"]:
            lines.append(f"| {b['steps']} | {b.get(unit, 0)} | {_pct(b['accuracy'])} |")
        lines.append("")
    err = r.get("errors")
    if err and err.get("wrong_samples"):
        lines += [
            "## Wrong samples: arithmetic slips vs other errors",
            "",
            "| wrong samples | with an arithmetic slip | share (%) | other errors (%) | share, rounding allowed (%) |",
            "|---:|---:|---:|---:|---:|",
            f"| {err['wrong_samples']} | {err['wrong_with_arithmetic_slip']} | {_pct(err['arithmetic_share'])} | "
            f"{_pct(err['other_share'])} | {_pct(err['arithmetic_share_rounding'])} |",
            "",
        ]
    why = r.get("correct_reasons")
    if why and why.get("correct_samples"):
        lines += [
            "## Correct samples: right for the right reasons, or by luck",
            "",
            "| correct samples | every equation right | some equation wrong (right by luck) | no equation |",
            "|---:|---:|---:|---:|",
            f"| {why['correct_samples']} | {why['all_equations_right']} ({_pct(why['all_equations_right_share'])}%) | "
            f"{why['wrong_equation']} ({_pct(why['wrong_equation_share'])}%) | {why['no_equation']} |",
            "",
        ]
    first = r.get("first_wrong_equation")
    if first and first.get("samples"):
        lines += ["## Position of the first wrong equation (share of the way through a sample's equations)", "",
                  "| position | samples | share (%) |", "|---|---:|---:|"]
        lines += [f"| [{b['from']:.1f}, {b['to']:.1f}) | {b['samples']} | {_pct(b['share'])} |" for b in first["bins"]]
        lines.append("")
    outcomes = r.get("grading_outcomes")
    if outcomes:
        lines += ["## Grading outcomes", "", "| outcome | distinct answers |", "|---|---:|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(outcomes.items())]
        lines.append("")
    return "\n".join(lines)


def plot_pass_at_k(report: dict, path: str | os.PathLike, greedy_accuracy: float | None = None) -> None:
    """Pass@k, PassRatio@k and maj@k against k on a log2 axis (the paper's Figure 1)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    pk = report.get("pass_at_k") or {}
    ks = [int(k) for k in pk]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    if ks:
        ax.plot(ks, [100 * pk[str(k)] for k in ks], marker="o", label="Pass@k")
        ci = report.get("pass_at_k_ci")
        if ci:
            ax.fill_between(ks, [100 * ci[str(k)][0] for k in ks], [100 * ci[str(k)][1] for k in ks], alpha=0.2)
        pr = report.get("pass_ratio_at_k") or {}
        if pr:
            ax.plot(ks, [100 * pr[str(k)] for k in ks], marker="s", label="PassRatio@k")
        mj = report.get("maj_at_k") or {}
        if mj:
            ax.plot(ks, [100 * mj[str(k)] for k in ks], marker="^", linestyle="--", label="maj@k")
        ctl = report.get("control") or {}
        for key, name, color, marker in (("pass_at_k", "Pass@k", "black", "x"), ("maj_at_k", "maj@k", "gray", "+")):
            vals = ctl.get(key) or {}
            if all(str(k) in vals for k in ks):  # the guesser's line, dashed and labelled as the control
                ax.plot(ks, [100 * vals[str(k)] for k in ks], color=color, marker=marker, linestyle="--",
                        label=f"{CONTROL_LABEL}: {name}")
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks)
        ax.set_xticklabels([str(k) for k in ks])
    if greedy_accuracy is not None:
        ax.axhline(100 * greedy_accuracy, color="gray", linestyle=":", label="greedy")
    ax.set_xlabel("k (samples per question)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(True, which="both", alpha=0.3)
    # The control's lines run low, where the legend usually sits: let matplotlib find room then.
    has_control = bool(report.get("control"))
    ax.legend(loc="best" if has_control else "lower right", fontsize="small" if has_control else None)
    ax.set_title(f"{report.get('num_questions', 0)} questions")
    fig.tight_layout()
    if is_uri(path):
        with open_path(path, "wb") as f:
            fig.savefig(f, format="png", dpi=150)
    else:
        fig.savefig(path, dpi=150)
    plt.close(fig)


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if hasattr(x, "item") and callable(x.item):  # numpy scalars
        return x.item()
    return x


def write_report(
    metrics: dict,
    output_dir: str | os.PathLike,
    extra: dict | None = None,
    *,
    greedy_accuracy: float | None = None,
    plot: bool = True,
    control: dict | None = None,
) -> dict:
    """Write ``report.json``, ``report.md`` and ``pass_at_k.png`` into ``output_dir``.

    Args:
      metrics: from :func:`compute_metrics` (plus analyses); any extra keys are kept.
      extra: more keys merged into the report (e.g. ``{"greedy_accuracy": 0.41}``).
      greedy_accuracy: drawn as a horizontal line on the plot; taken from
        ``extra``/``metrics["greedy_accuracy"]`` when not given.
      plot: write the PNG.
      control: the question-blind control (:func:`control_metrics`), written
        as ``report["control"]``, as columns and tables beside the model's in
        ``report.md`` and as dashed lines on the plot.

    ``output_dir`` may be local or a URI (``gs://bucket/report``).

    Returns:
      The report dict as written.
    """
    make_dirs(output_dir)
    report = dict(metrics)
    if control is not None:
        report["control"] = control
    if extra:
        report.update(extra)
    if greedy_accuracy is not None:
        report["greedy_accuracy"] = greedy_accuracy
    report = _jsonable(report)
    with open_path(join_path(output_dir, REPORT_JSON), "w") as f:
        json.dump(report, f, indent=2, sort_keys=False)
        f.write("\n")
    with open_path(join_path(output_dir, REPORT_MD), "w") as f:
        f.write(_markdown(report) + "\n")
    if plot:
        plot_pass_at_k(report, join_path(output_dir, PLOT_PNG), report.get("greedy_accuracy"))
    return report


def write_details(results, path: str | os.PathLike) -> None:
    """Per-question grading (answers, correctness, clusters) as JSONL (local path or URI)."""
    with open_path(path, "w") as f:
        for r in results:
            f.write(
                json.dumps(
                    {
                        "index": r.index,
                        "id": r.id,
                        "gold": r.gold,
                        "answers": r.answers,
                        "correct": r.correct,
                        "clusters": r.clusters,
                        "status": r.status,
                    }
                )
                + "\n"
            )


def evaluate(
    samples,
    output_dir: str | os.PathLike,
    *,
    workers: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    fallback: str | None = "last_number",
    analyses: bool = True,
    bootstrap: int = DEFAULT_BOOTSTRAP,
    ks: list[int] | None = None,
    extra: dict | None = None,
    details: bool = True,
    progress: bool = True,
    control_answers: str | os.PathLike | Mapping[str, float] | None = None,
    angles: str | None = None,
) -> dict:
    """Grade a samples file and write the full report; returns the report dict.

    ``angles``: the degrees/radians policy (:mod:`mathjax.grader.angles`;
    default: the process default, ``"degrees"`` unless set), recorded in
    ``grading_config``.

    ``control_answers`` (a JSONL training set or JSON ``{answer: count}``
    table, see :func:`load_answer_distribution`, or such a mapping) adds the
    question-blind control: a guesser drawing final answers from that
    distribution, scored exactly on the same questions, golds and ks.
    """
    counts, source = None, None
    if control_answers is not None:  # read it before grading: a bad file fails in seconds, not after the run
        if isinstance(control_answers, Mapping):
            counts = dict(control_answers)
        else:
            counts, source = load_answer_distribution(control_answers), os.fspath(control_answers)
    t0 = time.perf_counter()
    from mathjax.grader import angles as angles_lib

    angles = angles_lib.check(angles)  # None: the process default
    results = grade_run(
        samples, workers=workers, timeout=timeout, fallback=fallback, analyses=analyses, progress=progress,
        angles=angles,
    )
    t_grade = time.perf_counter() - t0
    metrics = compute_metrics(results, ks=ks, bootstrap=bootstrap)
    metrics["accuracy_by_steps"] = accuracy_by_steps(results)
    if analyses:
        metrics["errors"] = error_breakdown(results)
        metrics["correct_reasons"] = correct_reasons(results)
        metrics["first_wrong_equation"] = first_wrong_positions(results)
    metrics["grading_seconds"] = round(t_grade, 3)
    metrics["grading_config"] = {"timeout": timeout, "fallback": fallback, "workers": workers, "angles": angles}
    control = None
    if counts is not None:
        rs = [r for r in results if r.num_samples]  # the questions the model's metrics average over
        spq = metrics.get("samples_per_question")
        control = control_metrics(
            [r.gold for r in rs], counts, metrics.get("ks") or ks or [1],
            levels=[r.level for r in rs], subjects=[r.subject for r in rs],
            group_k=min(spq) if isinstance(spq, list) else spq, timeout=timeout, workers=workers,
            bootstrap=bootstrap, source=source, angles=angles,
        )
    make_dirs(output_dir)
    if details:
        write_details(results, join_path(output_dir, DETAILS_JSONL))
    return write_report(metrics, output_dir, extra, control=control)
