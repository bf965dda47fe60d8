"""The data-scaling experiment in miniature: one SFT run per data size, same step budget."""

from __future__ import annotations

import json
import os

from mathjax.experiments.plots import plot_scaling


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


def run_scaling(opts, stages, data: dict, tok_dir: str, records: list[dict], train_inputs: dict) -> dict:
    """Trains, samples and grades one model per size in ``opts.scales``; writes scaling.{json,md,png}."""
    from mathjax.experiments import demo

    work = os.path.abspath(opts.workdir)
    rows = []
    for n in sorted(opts.scales):
        sub = os.path.join(work, f"scale_{n}")
        os.makedirs(sub, exist_ok=True)
        inputs = {**train_inputs, "num_examples": n, "num_samples": opts.scale_num_samples,
                  "temperature": opts.temperature, "max_new_tokens": opts.max_new_tokens}

        def one(n=n, sub=sub):
            train_file = _subset(data["train"], n, os.path.join(sub, "train.jsonl"))
            demo.train_model(opts, train_file, tok_dir, os.path.join(sub, "sft"))
            demo.sample_model(opts, os.path.join(sub, "sft"), records, os.path.join(sub, "samples.jsonl"),
                              opts.scale_num_samples, opts.temperature)
            demo.sample_model(opts, os.path.join(sub, "sft"), records, os.path.join(sub, "greedy.jsonl"), 1, 0.0)
            graded = demo.grade(opts, os.path.join(sub, "samples.jsonl"), os.path.join(sub, "greedy.jsonl"),
                                os.path.join(sub, "report"))
            return {"num_examples": n, **{k: graded[k] for k in ("greedy_accuracy", "pass_ratio", "pass_at_n", "n")}}

        rows.append(stages.run(f"scale_{n}", one, inputs))
    with open(os.path.join(work, "scaling.json"), "w") as f:
        json.dump(rows, f, indent=2)
    lines = ["| SFT examples | greedy Pass@1 | PassRatio@N | Pass@N |", "|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['num_examples']} | {r['greedy_accuracy']:.1%} | {r['pass_ratio']:.1%} | {r['pass_at_n']:.1%} |")
    with open(os.path.join(work, "scaling.md"), "w") as f:
        f.write(f"N = {rows[0]['n'] if rows else 0} samples per question\n\n" + "\n".join(lines) + "\n")
    plot_scaling(rows, os.path.join(work, "scaling.png"))
    return {"rows": rows, "plot": os.path.join(work, "scaling.png")}
