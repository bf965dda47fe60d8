"""The whole Xwin-Math loop on a laptop CPU, in minutes, with no downloads.

    python scripts/demo.py [--workdir=demo_out] [--scales=1000,2000,4000] [--rl]

Stages: procedural data -> SFT (configs/tiny.py) of the shipped miniature base
model (assets/demo_base, rebuilt by scripts/pretrain_base.py; --base_model='' trains
from scratch with its own tokenizer) -> 256 samples per held-out question + a greedy
pass -> graded report with the question-blind control, apart for the questions
within and one step beyond the training steps (report.md, pass_at_k.png,
accuracy_vs_steps.png) -> HF export checked against transformers. Re-running
reuses finished stages. --rl continues the SFT model
with GRPO and, beside it, with RFT, and reports both like the SFT model.
"""

import os

from absl import app, flags

from mathjax.experiments.demo import DemoOptions, run_demo

_D = DemoOptions()
WORKDIR = flags.DEFINE_string("workdir", _D.workdir, "Where everything goes.")
SEED = flags.DEFINE_integer("seed", _D.seed, "Seed for data, training and sampling.")
NUM_TRAIN = flags.DEFINE_integer("num_train", _D.num_train, "Procedural SFT examples.")
NUM_TEST = flags.DEFINE_integer("num_test", _D.num_test, "Held-out questions.")
TRAIN_STEPS = flags.DEFINE_integer("train_steps", _D.train_steps, "SFT optimizer steps.")
NUM_SAMPLES = flags.DEFINE_integer("num_samples", _D.num_samples, "Samples per question (N).")
TEMPERATURE = flags.DEFINE_float("temperature", _D.temperature, "Sampling temperature.")
MAX_NEW = flags.DEFINE_integer("max_new_tokens", _D.max_new_tokens, "Longest answer in tokens.")
SCALES = flags.DEFINE_list("scales", [], "SFT data sizes for the data-scaling experiment (e.g. 500,1500,4500).")
SCALE_SAMPLES = flags.DEFINE_integer("scale_num_samples", _D.scale_num_samples, "Samples per question in scaling runs.")
CHECK_EXPORT = flags.DEFINE_bool("check_export", _D.check_export, "Export to HF and compare greedy outputs with transformers.")
WORKERS = flags.DEFINE_integer("workers", None, "Grader worker processes (default: all cores).")
PROGRESS = flags.DEFINE_bool("progress", True, "Progress bars.")
BASE_MODEL = flags.DEFINE_string("base_model", _D.base_model,
                                  "Model SFT starts from (HF dir with tokenizer); '' = the tiny preset from scratch.")
MAX_NUMBER = flags.DEFINE_integer("max_number", _D.max_number, "Largest number a question states freely.")
LR = flags.DEFINE_float("learning_rate", _D.learning_rate, "SFT peak learning rate.")
CONTROL = flags.DEFINE_bool("control", _D.control, "Question-blind control (training answers) in every report.")
RL = flags.DEFINE_bool("rl", _D.rl, "Also GRPO and RFT from the SFT model, each sampled and reported.")
RL_STEPS = flags.DEFINE_integer("rl_steps", _D.rl_steps, "GRPO steps (--rl_prompts prompts x 8 samples each).")
RL_PROMPTS = flags.DEFINE_integer("rl_prompts", _D.rl_prompts, "GRPO prompts per step.")
RL_LR = flags.DEFINE_float("rl_learning_rate", _D.rl_learning_rate, "GRPO learning rate (constant).")
RL_TEMPERATURE = flags.DEFINE_float("rl_temperature", _D.rl_temperature,
                                    "GRPO rollout temperature (default: the evaluation's, --temperature's default).")
RL_PROCESS = flags.DEFINE_float("rl_process_coef", _D.rl_process_coef,
                                "GRPO process supervision: weight of the grader-checked step credit per token (0: off).")
RFT_QUESTIONS = flags.DEFINE_integer("rft_questions", _D.rft_questions, "Training questions RFT samples.")
RL_COMPARE = flags.DEFINE_integer("rl_compare_questions", _D.rl_compare_questions,
                                  "With --rl: SFT, GRPO and RFT on this many other held-out problems, paired (0: skip).")


def main(argv):
    del argv
    opts = DemoOptions(
        workdir=WORKDIR.value, seed=SEED.value, num_train=NUM_TRAIN.value, num_test=NUM_TEST.value,
        train_steps=TRAIN_STEPS.value, num_samples=NUM_SAMPLES.value, temperature=TEMPERATURE.value,
        max_new_tokens=MAX_NEW.value, scales=tuple(int(s) for s in SCALES.value),
        scale_num_samples=SCALE_SAMPLES.value, check_export=CHECK_EXPORT.value, workers=WORKERS.value,
        progress=PROGRESS.value, control=CONTROL.value, rl=RL.value, rl_steps=RL_STEPS.value,
        rl_prompts=RL_PROMPTS.value, rl_learning_rate=RL_LR.value, rl_temperature=RL_TEMPERATURE.value,
        rl_process_coef=RL_PROCESS.value, rft_questions=RFT_QUESTIONS.value,
        rl_compare_questions=RL_COMPARE.value, base_model=BASE_MODEL.value,
        max_number=MAX_NUMBER.value,
        learning_rate=LR.value,
    )
    summary = run_demo(opts)
    r = summary["report"]
    report_dir = r["report_dir"]
    print()
    print(f"all {r['questions']} held-out questions: greedy {r['greedy_accuracy']:.1%} | "
          f"PassRatio@{r['n']} {r['pass_ratio']:.1%} | Pass@{r['n']} {r['pass_at_n']:.1%}")
    for name, label in (("within_training", "steps seen in training"), ("beyond_training", "one step beyond")):
        part = r.get(name)
        if part:
            ctl = (f" | control Pass@{part['n']} {part['control_pass_at_n']:.1%}"
                   if part.get("control_pass_at_n") is not None else "")
            print(f"  {label} ({part['questions']} questions): greedy {part['greedy_accuracy']:.1%} | PassRatio@"
                  f"{part['n']} {part['pass_ratio']:.1%} | Pass@{part['n']} {part['pass_at_n']:.1%}{ctl}")
    print(f"report: {os.path.join(report_dir, 'report.md')}")
    print(f"plots:  {os.path.join(report_dir, 'pass_at_k.png')}, {os.path.join(report_dir, 'accuracy_vs_steps.png')}")
    why = r.get("correct_reasons")
    if why and why["correct_samples"]:
        print(f"correct samples: {why['all_equations_right_share']:.1%} with every equation right, "
              f"{why['wrong_equation_share']:.1%} right by luck (a wrong equation)")
    if r.get("control_pass_at_n") is not None:
        print(f"question-blind control: PassRatio {r['control_pass_ratio']:.1%} | "
              f"Pass@{r['n']} {r['control_pass_at_n']:.1%}")
    for name, run in summary.get("rl", {}).items():  # grpo, rft, gold_sft (RFT's control)
        if isinstance(run, dict) and "report" in run:
            g = run["report"]
            print(f"{name}: greedy {g['greedy_accuracy']:.1%} | PassRatio {g['pass_ratio']:.1%} | "
                  f"Pass@{g['n']} {g['pass_at_n']:.1%}")
    if "rl" in summary:
        print(f"SFT vs RFT vs GRPO: {summary['rl']['plot']}")
        compare = summary["rl"].get("compare")
        if compare:
            from mathjax.experiments.compare_models import markdown

            print(markdown(compare), end="")
            print(f"paired comparison: {compare['files']['markdown']}")
    if "scaling" in summary:
        print(f"data scaling: {summary['scaling']['markdown']} ({', '.join(summary['scaling']['plots'].values())})")


if __name__ == "__main__":
    app.run(main)
