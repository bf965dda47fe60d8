"""``scripts/demo.py --rl``: the demo's SFT model continued by GRPO and, beside it, by RFT.

Both start from the demo's SFT workdir and learn from the model's own samples
on the procedural *training* questions, rewarded by the grader; both are then
evaluated exactly as the SFT model was (N samples + a greedy pass on the same
held-out questions, the same report). DeepSeekMath's observation is that RL
raises greedy accuracy and PassRatio toward Pass@N while Pass@N moves little;
the Pass@k plot puts the three models and the question-blind control side by side.

* GRPO: ``configs/tiny_grpo.py`` (group of 8, one update per rollout) for
  ``rl_steps`` steps of ``rl_prompts`` prompts, rollouts at ``rl_temperature``.
* RFT: ``rft_samples`` samples for ``rft_questions`` training questions, correct
  and distinct paths kept (``mathjax.rl.rft``), then ``rft_sft_steps`` SFT steps
  from the SFT model on that data.
* RFT's control (``gold_sft``): the same SFT steps on the same questions' gold
  solutions alone, so a gain of RFT over it is its samples' doing.
* Then all of them and the SFT model on ``rl_compare_questions`` other held-out
  problems, each paired with the SFT model question by question
  (``mathjax.experiments.compare_models``): ``report_compare/compare.md``.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

from mathjax.experiments.demo import ROOT, grade, load_config_file, sample_model


def _grpo(opts, train_file: str, sft_dir: str, workdir: str) -> dict:
    from mathjax.rl.trainer import train_rl

    c = load_config_file(os.path.join(ROOT, "configs", "tiny_grpo.py"))
    c.init_from = sft_dir
    c.data.train_files = train_file
    c.data.template = opts.template
    c.seed = opts.seed
    c.steps = opts.rl_steps
    c.seq_len = opts.seq_len
    c.rl.prompts_per_step = opts.rl_prompts
    c.rl.max_new_tokens = opts.max_new_tokens
    c.rl.temperature = opts.rl_temperature
    c.optimizer.lr = opts.rl_learning_rate
    c.rl.process_coef = opts.rl_process_coef
    c.checkpoint_every = max(5, opts.rl_steps // 2)
    result = train_rl(c, workdir)
    if result.preempted:
        raise SystemExit("GRPO stopped by SIGTERM; re-run the demo to resume it")
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    k = max(1, len(rows) // 4)
    return {"workdir": workdir, "steps": len(rows),
            "reward_first_quarter": sum(r["reward_mean"] for r in rows[:k]) / k,
            "reward_last_quarter": sum(r["reward_mean"] for r in rows[-k:]) / k,
            "step_seconds": sum(r["step_seconds"] for r in rows[1:]) / max(1, len(rows) - 1),
            "rollout_tokens_per_sec": rows[-1]["rollout_tokens_per_sec"]}


def _first_questions(train_file: str, out_dir: str, count: int) -> str:
    subset = os.path.join(out_dir, "questions.jsonl")
    os.makedirs(out_dir, exist_ok=True)
    with open(train_file) as f, open(subset, "w") as g:
        for i, line in enumerate(f):
            if i >= count:
                break
            g.write(line)
    return subset


def _sft_from(opts, sft_dir: str, tok_dir: str, train_file: str, workdir: str) -> None:
    """``rft_sft_steps`` SFT steps from the SFT model on ``train_file`` (RFT's data, or its control's)."""
    from mathjax.train import trainer

    c = load_config_file(os.path.join(ROOT, "configs", "tiny.py"))
    c.init_from = sft_dir
    c.tokenizer = tok_dir
    c.data.train_files = train_file
    c.data.template = opts.template
    c.seed = opts.seed
    c.steps = opts.rft_sft_steps
    c.batch_size = opts.batch_size
    c.seq_len = opts.seq_len
    c.optimizer.lr = opts.rft_learning_rate
    c.checkpoint_every = opts.rft_sft_steps
    c.log_every = 10
    result = trainer.train(c, workdir, progress=False)
    if result.preempted:
        raise SystemExit("fine-tuning stopped by SIGTERM; re-run the demo to resume it")


def _gold_only(opts, train_file: str, sft_dir: str, out_dir: str, tok_dir: str) -> dict:
    """RFT's control: the same SFT steps on the same questions' gold solutions, no sampled paths."""
    subset = _first_questions(train_file, out_dir, opts.rft_questions)
    train_dir = os.path.join(out_dir, "train")
    _sft_from(opts, sft_dir, tok_dir, subset, train_dir)
    return {"workdir": train_dir, "questions": opts.rft_questions}


def _rft(opts, train_file: str, sft_dir: str, out_dir: str, tok_dir: str) -> dict:
    from mathjax.rl.rft import RFTOptions, run_rft

    subset = _first_questions(train_file, out_dir, opts.rft_questions)
    data_dir = os.path.join(out_dir, "data")
    run_rft(sft_dir, subset, data_dir, RFTOptions(
        num_samples=opts.rft_samples, temperature=opts.temperature, template=opts.template,
        max_new_tokens=opts.max_new_tokens, seed=opts.seed, batch_size=opts.sample_batch_size,
        grade_workers=opts.workers), progress=opts.progress)
    with open(os.path.join(data_dir, "stats.json")) as f:
        stats = json.load(f)
    train_dir = os.path.join(out_dir, "train")
    _sft_from(opts, sft_dir, tok_dir, os.path.join(data_dir, "rft.jsonl"), train_dir)
    with open(os.path.join(data_dir, "rft.jsonl")) as f:
        kept = sum(1 for _ in f)
    return {"workdir": train_dir, "kept_paths": kept, "questions": opts.rft_questions,
            "stats": {k: v for k, v in stats.items() if not isinstance(v, (list, dict))}}


def plot_models(reports: dict[str, str], path: str) -> None:
    """Pass@k and maj@k of each model's report.json (and its question-blind control if there) on one plot."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    control = None
    for name, report_dir in reports.items():
        with open(os.path.join(report_dir, "report.json")) as f:
            r = json.load(f)
        ks = sorted(int(k) for k in r["pass_at_k"])
        line, = ax.plot(ks, [100 * r["pass_at_k"][str(k)] for k in ks], marker="o", label=f"{name}: Pass@k")
        ax.axhline(100 * r.get("greedy_accuracy", 0.0), color=line.get_color(), linestyle=":", linewidth=1,
                   label=f"{name}: greedy")
        control = control or r.get("control")
    if control:
        ks = sorted(int(k) for k in control["pass_at_k"])
        ax.plot(ks, [100 * control["pass_at_k"][str(k)] for k in ks], color="gray", linestyle="--",
                label="question-blind control: Pass@k")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k (samples)")
    ax.set_ylabel("% of held-out questions")
    ax.set_title("SFT vs RFT (and its control) vs GRPO")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


_LABELS = {"grpo": "GRPO", "rft": "RFT", "gold_sft": "RFT control (SFT on gold only)"}


def run_rl_demo(opts, stages, data: dict, tok_dir: str, sft_dir: str, records: list[dict], sample_inputs: dict,
                log: Callable[[str], None] = print) -> dict[str, Any]:
    """GRPO and RFT from the SFT model, each sampled, graded and reported like it (see the module docstring)."""
    work = os.path.abspath(opts.workdir)
    out: dict[str, Any] = {}
    rl_inputs = {**sample_inputs, "rl_steps": opts.rl_steps, "rl_prompts": opts.rl_prompts,
                 "rl_lr": opts.rl_learning_rate, "rl_temperature": opts.rl_temperature,
                 **({"rl_process_coef": opts.rl_process_coef} if opts.rl_process_coef else {})}
    rft_inputs = {**sample_inputs, "rft_questions": opts.rft_questions, "rft_samples": opts.rft_samples,
                  "rft_sft_steps": opts.rft_sft_steps, "rft_lr": opts.rft_learning_rate}
    runs = {
        "grpo": (rl_inputs, lambda: _grpo(opts, data["train"], sft_dir, os.path.join(work, "grpo"))),
        "rft": (rft_inputs, lambda: _rft(opts, data["train"], sft_dir, os.path.join(work, "rft"), tok_dir)),
        # RFT's control: does the self-generated data add anything to more SFT on the same questions?
        "gold_sft": (rft_inputs, lambda: _gold_only(opts, data["train"], sft_dir, os.path.join(work, "gold_sft"),
                                                    tok_dir)),
    }
    reports = {"SFT": os.path.join(work, "report")}
    for name, (inputs, train) in runs.items():
        trained = stages.run(name, train, inputs, (os.path.join(work, name),))  # a changed run starts fresh
        model_dir = trained["workdir"]
        samples, greedy = os.path.join(work, f"{name}_samples.jsonl"), os.path.join(work, f"{name}_greedy.jsonl")
        stages.run(f"{name}_sample", lambda: sample_model(opts, model_dir, records, samples, opts.num_samples,
                                                          opts.temperature), inputs, (samples,))
        stages.run(f"{name}_greedy", lambda: sample_model(opts, model_dir, records, greedy, 1, 0.0), inputs, (greedy,))
        report_dir = os.path.join(work, f"report_{name}")
        control = data["train"] if opts.control else None
        graded = stages.run(f"{name}_grade", lambda: grade(opts, samples, greedy, report_dir, control), inputs)
        out[name] = {"train": trained, "report": graded}
        reports[_LABELS[name]] = report_dir
        log(f"[{name}] greedy {graded['greedy_accuracy']:.1%} | PassRatio {graded['pass_ratio']:.1%} | "
            f"Pass@{graded['n']} {graded['pass_at_n']:.1%}")
    out["plot"] = os.path.join(work, "sft_rft_grpo_pass_at_k.png")
    plot_models(reports, out["plot"])
    if opts.rl_compare_questions:
        models = {"SFT": sft_dir, **{_LABELS[name]: out[name]["train"]["workdir"] for name in runs}}
        inputs = {**rl_inputs, **rft_inputs, "compare_questions": opts.rl_compare_questions,
                  "compare_samples": opts.rl_compare_samples}
        out["compare"] = stages.run("compare", lambda: _compare(opts, records, models, work, log), inputs)
    return out


def _compare(opts, records: list[dict], models: dict[str, str], work: str, log) -> dict:
    """Every model on ``rl_compare_questions`` fresh held-out problems, paired with the SFT model.

    The report's 38-48 questions leave a standard error of several points; on a few
    hundred questions, paired with the SFT model question by question, a gain of a
    few points in PassRatio is told from noise. Same split, steps and numbers as the
    report's questions (the test split, up to ``train_max_steps`` steps), another seed,
    and none of the report's questions.
    """
    from mathjax.data import procedural
    from mathjax.experiments import compare_models as cm

    seen = {r["question"] for r in records}
    fresh = procedural.generate(opts.rl_compare_questions + len(seen), "test", seed=opts.seed + 1, min_steps=1,
                                max_steps=opts.train_max_steps, max_number=opts.max_number)
    fresh = [r for r in fresh if r["question"] not in seen][: opts.rl_compare_questions]
    out_dir = os.path.join(work, "report_compare")
    os.makedirs(out_dir, exist_ok=True)
    # The questions beside the table: `scripts/compare_models.py --eval_files=` repeats the comparison.
    procedural.write_jsonl(fresh, os.path.join(out_dir, "questions.jsonl"))
    eval_records = [{"id": r["id"], "question": r["question"], "gold": r["final_answer"]} for r in fresh]
    result = cm.compare_models(models, eval_records, num_samples=opts.rl_compare_samples,
                               temperature=opts.temperature, template=opts.template,
                               max_new_tokens=opts.max_new_tokens, seed=opts.seed,
                               batch_size=opts.sample_batch_size, log=log)
    files = {**cm.write(result, out_dir), "questions": os.path.join(out_dir, "questions.jsonl")}
    return {**result, "files": files}
