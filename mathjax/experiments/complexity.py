"""Reasoning complexity: the paper's per-step accuracy model ``Acc_final(s) ~ Acc_step ** s``.

If every reasoning step is right with probability ``Acc_step`` independently,
a problem of ``s`` steps is solved with probability ``Acc_step ** s``. Taking
logs, ``log Acc(s) = s * log Acc_step``: a line through the origin, fitted here
by weighted least squares (weights = questions or samples measured at ``s``).

Pure Python (no JAX, no numpy needed): it runs on report.json files anywhere.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping


def fit_step_accuracy(acc_by_steps: Mapping[int, float], weights: Mapping[int, int] | None = None) -> dict:
    """Fits ``Acc(s) = a ** s`` by weighted least squares on ``log Acc`` through the origin.

    ``log a = sum(w s log Acc(s)) / sum(w s^2)``, the closed-form minimiser of
    ``sum(w (log Acc(s) - s log a)^2)``.

    Zero accuracies cannot be logged. Rather than drop them (which would flatter
    the fit: the hardest steps vanish), an accuracy of 0 at step ``s`` is
    clipped to ``0.5 / n`` with ``n = weights[s]`` (half an observation out of
    the bucket's count, the usual continuity correction), and ``s`` is listed in
    ``clipped_steps``. Without ``weights`` there is no count to clip against, so
    a zero accuracy raises ``ValueError``. Steps with weight 0 carry no data and
    are left out.

    Args:
      acc_by_steps: ``{steps: accuracy}``, steps >= 1, accuracies in [0, 1].
      weights: ``{steps: count}`` (questions or samples in that bucket); ``None``
        weighs every step equally.

    Returns:
      ``{"acc_step": a, "points": [{"steps", "accuracy", "fitted_on", "weight",
      "predicted"}], "residual_rmse": r, "clipped_steps": [...]}``. ``fitted_on``
      is the (possibly clipped) accuracy that entered the log fit;
      ``residual_rmse`` is the weighted root mean square of ``predicted -
      accuracy`` on the accuracy scale, against the measured (unclipped) values.

    Raises:
      ValueError: on empty input, steps < 1, accuracies outside [0, 1], missing
        or negative weights, or a zero accuracy without weights.
    """
    if not acc_by_steps:
        raise ValueError("fit_step_accuracy: no (steps, accuracy) points to fit")
    points, clipped = [], []
    for s in sorted(acc_by_steps):
        acc = float(acc_by_steps[s])
        if int(s) != s or s < 1:
            raise ValueError(f"fit_step_accuracy: steps must be integers >= 1, got {s!r}")
        if not 0.0 <= acc <= 1.0:
            raise ValueError(f"fit_step_accuracy: accuracy at {s} steps is {acc}, not in [0, 1]")
        if weights is None:
            w = 1.0
        elif s not in weights:
            raise ValueError(f"fit_step_accuracy: no weight for {s} steps")
        else:
            w = float(weights[s])
            if w < 0:
                raise ValueError(f"fit_step_accuracy: negative weight {w} at {s} steps")
        if w == 0:
            continue
        used = acc
        if acc == 0.0:
            if weights is None:
                raise ValueError(f"fit_step_accuracy: accuracy 0 at {s} steps cannot be logged; pass weights "
                                 "(bucket counts) so it can be clipped at 0.5/count")
            used = 0.5 / w
            clipped.append(int(s))
        points.append({"steps": int(s), "accuracy": acc, "fitted_on": used, "weight": w})
    if not points:
        raise ValueError("fit_step_accuracy: every step has weight 0; nothing to fit")
    num = sum(p["weight"] * p["steps"] * math.log(p["fitted_on"]) for p in points)
    den = sum(p["weight"] * p["steps"] ** 2 for p in points)
    a = math.exp(num / den)
    for p in points:
        p["predicted"] = a ** p["steps"]
    total = sum(p["weight"] for p in points)
    rmse = math.sqrt(sum(p["weight"] * (p["predicted"] - p["accuracy"]) ** 2 for p in points) / total)
    return {"acc_step": a, "points": points, "residual_rmse": rmse, "clipped_steps": clipped}


def read_step_accuracy(report: Mapping | str | os.PathLike) -> dict:
    """Per-step accuracies and counts from a report's ``accuracy_by_steps`` buckets.

    ``report`` is a report dict, a ``report.json`` path or its directory. The
    pooled top bucket (``"12+"``, see ``grader.analysis.MAX_STEP_BUCKET``) is
    skipped, not read as its lower bound: it mixes step counts, and ``a ** s``
    for a single ``s`` would misstate it. Skipped labels are returned.

    Returns:
      ``{"source": "question" | "sample" | None, "accuracy": {steps: acc},
      "counts": {steps: n}, "skipped": [labels]}``; ``accuracy`` is the
      bucket's ``accuracy`` (for per-question buckets, its PassRatio: the mean
      share of right samples), ``counts`` its questions or samples.
    """
    if not isinstance(report, Mapping):
        path = os.fspath(report)
        if os.path.isdir(path):
            path = os.path.join(path, "report.json")
        with open(path) as f:
            report = json.load(f)
    steps = report.get("accuracy_by_steps") or {}
    out: dict = {"source": steps.get("source"), "accuracy": {}, "counts": {}, "skipped": []}
    for b in steps.get("buckets") or []:
        label = str(b["steps"])
        if not label.isdigit():
            out["skipped"].append(label)
            continue
        s = int(label)
        out["accuracy"][s] = float(b["accuracy"])
        out["counts"][s] = int(b.get("questions", b.get("samples", 0)))
    return out


def fit_within_and_beyond(steps: Mapping, train_max_steps: int) -> dict:
    """Fits ``Acc_step`` on steps seen in training; predicts the steps beyond it.

    Args:
      steps: :func:`read_step_accuracy`'s output.
      train_max_steps: the longest problems in the SFT data; only steps up to
        it enter the fit, so the steps beyond are a true out-of-range test.

    Returns:
      ``{"fit": fit_step_accuracy(...) or None, "error": message or None,
      "beyond": [{"steps", "count", "measured", "predicted"}]}``; ``predicted``
      is ``None`` when the fit failed (e.g. no bucket within training) or when
      every accuracy within training is 0 (all clipped: nothing left to fit).
    """
    acc, counts = steps.get("accuracy") or {}, steps.get("counts") or {}
    within = {s: a for s, a in acc.items() if s <= train_max_steps}
    fit, error = None, None
    try:
        fit = fit_step_accuracy(within, {s: counts.get(s, 0) for s in within})
    except ValueError as e:
        error = str(e)
    if fit and len(fit["clipped_steps"]) == len(fit["points"]):
        # Every point is a clipped 0: the "fit" would only echo the bucket sizes, not the model.
        fit, error = None, f"accuracy 0 at every step 1..{train_max_steps}: Acc_step cannot be estimated"
    beyond = [{"steps": s, "count": counts.get(s, 0), "measured": acc[s],
               "predicted": fit["acc_step"] ** s if fit else None}
              for s in sorted(acc) if s > train_max_steps]
    return {"fit": fit, "error": error, "beyond": beyond}
