"""Plots of the demo: accuracy vs reasoning steps, and metrics vs SFT data size."""

from __future__ import annotations

import json
import os
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402


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
    fig.tight_layout()
    tmp = f"{path}.tmp.png"
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def plot_scaling(rows: list[dict], path: str) -> None:
    """Greedy Pass@1, PassRatio@N and Pass@N against SFT data size (the paper's first table)."""
    rows = sorted(rows, key=lambda r: r["num_examples"])
    sizes = [r["num_examples"] for r in rows]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    n = rows[0]["n"] if rows else 0
    ax.plot(sizes, [r["pass_at_n"] for r in rows], "o-", label=f"Pass@{n}")
    ax.plot(sizes, [r["pass_ratio"] for r in rows], "s-", label=f"PassRatio@{n}")
    ax.plot(sizes, [r["greedy_accuracy"] for r in rows], "^-", label="greedy (Pass@1)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("SFT examples")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("More SFT data lifts PassRatio toward Pass@N")
    fig.tight_layout()
    tmp = f"{path}.tmp.png"
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)
