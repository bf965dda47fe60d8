"""Plots of the demo: accuracy vs reasoning steps, metrics vs SFT data size, complexity per size."""

from __future__ import annotations

import json
import os
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402


def _save(fig, path: str) -> None:
    """Writes the figure beside ``path`` and renames it: a killed run leaves no half-written PNG."""
    fig.tight_layout()
    tmp = f"{path}.tmp.png"
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def _greedy_by_steps(greedy_path: str) -> dict[str, float]:
    from mathjax import grader

    records = []
    with open(greedy_path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    correct = grader.grade_samples(records, workers=0, progress=False)
    groups: dict[str, list[bool]] = defaultdict(list)
    for r, c in zip(records, correct):
        steps = r.get("steps")
        if steps is not None:
            groups[str(steps)].append(bool(c and c[0]))
    return {k: sum(v) / len(v) for k, v in groups.items()}


def plot_accuracy_vs_steps(report: dict, path: str, greedy_path: str | None = None) -> None:
    """PassRatio, Pass@N-style first-sample accuracy and greedy accuracy per number of steps."""
    buckets = report.get("accuracy_by_steps", {}).get("buckets", [])
    if not buckets:
        return
    labels = [str(b["steps"]) for b in buckets]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot(labels, [b.get("pass_ratio", b["accuracy"]) for b in buckets], "o-", label="PassRatio@N")
    if "first_sample" in buckets[0]:
        ax.plot(labels, [b["first_sample"] for b in buckets], "s--", label="first sample")
    if greedy_path and os.path.exists(greedy_path):
        greedy = _greedy_by_steps(greedy_path)
        ax.plot(labels, [greedy.get(lbl, float("nan")) for lbl in labels], "^:", label="greedy")
    ax.set_xlabel("reasoning steps of the question")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("Accuracy vs reasoning steps")
    _save(fig, path)


def plot_scaling(rows: list[dict], path: str) -> None:
    """Greedy Pass@1, PassRatio@N and Pass@N against SFT data size (the paper's first table)."""
    rows = sorted(rows, key=lambda r: r["num_examples"])
    sizes = [r["num_examples"] for r in rows]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    n = rows[0]["n"] if rows else 0
    ax.plot(sizes, [r["pass_at_n"] for r in rows], "o-", label=f"Pass@{n}")
    ax.plot(sizes, [r["pass_ratio"] for r in rows], "s-", label=f"PassRatio@{n}")
    ax.plot(sizes, [r["greedy_accuracy"] for r in rows], "^-", label="greedy (Pass@1)")
    # The question-blind guesser, dashed: the floor that the model's lines must clear.
    for key, name, marker, color in (("control_pass_at_n", f"Pass@{n}", "x", "black"),
                                     ("control_pass_ratio", f"PassRatio@{n}", "+", "gray")):
        if any(r.get(key) is not None for r in rows):
            ax.plot(sizes, [_nan(r.get(key)) for r in rows], marker=marker, color=color, linestyle="--",
                    label=f"control: {name}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("SFT examples")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title("More SFT data lifts PassRatio toward Pass@N")
    _save(fig, path)


def _nan(x: float | None) -> float:
    return float("nan") if x is None else x


def plot_steps_by_size(rows: list[dict], path: str, train_max_steps: int) -> None:
    """Measured accuracy vs reasoning steps per SFT size (markers) and the fitted ``Acc_step ** s`` (lines).

    ``rows`` carry ``steps_fit`` (see ``scaling.summarise_rows``): the curve is
    fitted on steps up to ``train_max_steps`` and extended beyond them, so the
    gap at the last steps is the fit's out-of-range error.
    """
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    top = train_max_steps + 1
    for i, r in enumerate(sorted(rows, key=lambda r: r["num_examples"])):
        sf = r.get("steps_fit") or {}
        acc = sf.get("accuracy") or {}
        if not acc:
            continue
        color = f"C{i}"
        steps = sorted(acc)
        top = max(top, steps[-1])
        ax.plot(steps, [acc[s] for s in steps], "o", color=color, label=f"{r['num_examples']} examples")
        fit = sf.get("fit")
        if fit:
            xs = [1 + j * (top - 1) / 50 for j in range(51)]
            ax.plot(xs, [fit["acc_step"] ** x for x in xs], "-", color=color, alpha=0.7,
                    label=f"  fit: {fit['acc_step']:.3f}^s")
    ax.axvline(train_max_steps + 0.5, color="gray", linestyle=":", label="beyond training →")
    ax.set_xticks(range(1, top + 1))  # steps are whole numbers
    ax.set_xlabel("reasoning steps of the question")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small")
    ax.set_title("Accuracy vs steps, fitted Acc_step ** s")
    _save(fig, path)


def plot_first_wrong_by_size(rows: list[dict], path: str) -> None:
    """Histogram of the first wrong equation's normalised position, one bar group per bin, a bar per size."""
    rows = [r for r in sorted(rows, key=lambda r: r["num_examples"])
            if (r.get("first_wrong_equation") or {}).get("samples")]  # no wrong equation: nothing to draw
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    if rows:
        bins = rows[0]["first_wrong_equation"]["bins"]
        width = 0.8 / len(rows)
        for i, r in enumerate(rows):
            fw = r["first_wrong_equation"]
            xs = [j + (i - (len(rows) - 1) / 2) * width for j in range(len(bins))]
            ax.bar(xs, [b["share"] for b in fw["bins"]], width=width,
                   label=f"{r['num_examples']} examples ({fw['samples']} samples)")
        ax.set_xticks(range(len(bins)))
        ax.set_xticklabels([f"[{b['from']:.1f}, {b['to']:.1f})" for b in bins], fontsize="small")
        ax.legend(fontsize="x-small")
    ax.set_xlabel("position of the first wrong equation (share of the way through)")
    ax.set_ylabel("share of samples with a wrong equation")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3, axis="y")
    ax.set_title("Where the first wrong equation sits")
    _save(fig, path)
