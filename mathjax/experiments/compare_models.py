"""Several models on the same held-out questions, each read against a control by paired differences.

``scripts/compare_models.py`` and ``scripts/demo.py --rl`` use it: every model
gets a greedy answer and ``k`` samples per question (``mathjax.rl.evaluate``);
the first model is the control (the SFT model RL started from), and each other
model's gain in greedy accuracy, PassRatio@k and Pass@k comes with the paired
standard error over questions. DeepSeekMath's pattern is greedy and PassRatio
(and maj@k) rising while Pass@k stays put; maj@k also bounds what sharpening
alone can give PassRatio.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

# maj@k is the ceiling of sharpening: a policy that put all its mass on its own most frequent answer
# would score maj@k on every sample, so PassRatio can rise toward it without learning anything new.
METRICS = (("greedy", "greedy"), ("pass_ratio", "PassRatio@{k}"), ("majority", "maj@{k}"), ("pass_at_k", "Pass@{k}"))


def compare_models(models: Mapping[str, str], records: Sequence[dict], *, num_samples: int, temperature: float,
                   template: str, max_new_tokens: int, seed: int = 0, batch_size: int = 256,
                   log=print) -> dict:
    """Evaluates each ``label -> model dir`` (the first is the control) on ``records`` (``id``, ``question``, ``gold``).

    Returns ``{"questions", "k", "control", "models": {label: {metric: value, "slip_share"}},
    "vs_control": {label: {metric: [difference, standard error]}}}``, metrics as fractions.
    """
    import mathjax
    from mathjax.rl.evaluate import paired_difference, question_results
    from mathjax.sample import SamplingRules

    if len(models) < 2:
        raise ValueError("compare_models needs a control and at least one other model")
    if not records:
        raise ValueError("compare_models needs at least one question")
    per_question, out_models = {}, {}
    for label, path in models.items():
        model = mathjax.load(path).for_sampling()
        res = question_results(model, model.tokenizer(), records, template, max_new_tokens, num_samples,
                               SamplingRules(temperature=temperature), seed, batch_size, slips=True,
                               votes=True)
        per_question[label] = {"greedy": res.greedy.astype(float), "pass_ratio": res.pass_ratio,
                               "majority": res.majority, "pass_at_k": res.solved.astype(float)}
        out_models[label] = {name: float(v.mean()) for name, v in per_question[label].items()}
        out_models[label]["slip_share"] = res.wrong_with_slip / res.wrong if res.wrong else 0.0
        log(f"[compare] {label}: greedy {out_models[label]['greedy']:.1%} | PassRatio@{num_samples} "
            f"{out_models[label]['pass_ratio']:.1%} | maj@{num_samples} {out_models[label]['majority']:.1%} | "
            f"Pass@{num_samples} {out_models[label]['pass_at_k']:.1%}")
    control = next(iter(models))
    vs = {label: {name: list(paired_difference(per_question[label][name], per_question[control][name]))
                  for name, _ in METRICS}
          for label in models if label != control}
    return {"questions": len(records), "k": num_samples, "temperature": temperature, "control": control,
            "models": out_models, "vs_control": vs}


def markdown(result: dict) -> str:
    """The comparison as a table: each metric, and each model's paired difference to the control."""
    k = result["k"]
    heads = [h.format(k=k) for _, h in METRICS]
    lines = [f"{result['questions']} held-out questions, {k} samples each at temperature {result['temperature']} "
             f"and a greedy answer; differences are to `{result['control']}` on the same questions "
             "(paired standard error).", "",
             "| model | " + " | ".join(heads) + " | wrong samples with an arithmetic slip |",
             "|---|" + "---:|" * (len(heads) + 1)]
    for label, m in result["models"].items():
        cells = []
        for name, _ in METRICS:
            cell = f"{100 * m[name]:.1f}%"
            if label in result["vs_control"]:
                d, se = result["vs_control"][label][name]
                cell += f" ({100 * d:+.1f} ± {100 * se:.1f})"
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {100 * m['slip_share']:.0f}% |")
    return "\n".join(lines) + "\n"


def write(result: dict, out_dir: str) -> dict[str, str]:
    """``compare.json`` and ``compare.md`` in ``out_dir`` (local or gs://), each written whole."""
    from mathjax.io import paths

    paths.makedirs(out_dir)
    files = {"json": paths.join(out_dir, "compare.json"), "markdown": paths.join(out_dir, "compare.md")}
    paths.write_text(files["json"], json.dumps(result, indent=2))
    paths.write_text(files["markdown"], markdown(result))
    return files
