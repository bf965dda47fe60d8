"""The whole Xwin-Math loop on a laptop CPU, in minutes, with no downloads.

    python scripts/demo.py [--workdir=demo_out] [--scales=1000,2000,4000]

Stages: procedural data -> SentencePiece tokenizer -> SFT (configs/tiny.py) ->
256 samples per held-out question + a greedy pass -> graded report
(report.md, pass_at_k.png, accuracy_vs_steps.png) -> HF export checked against
transformers. Re-running reuses finished stages.
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


def main(argv):
    del argv
    opts = DemoOptions(
        workdir=WORKDIR.value, seed=SEED.value, num_train=NUM_TRAIN.value, num_test=NUM_TEST.value,
        train_steps=TRAIN_STEPS.value, num_samples=NUM_SAMPLES.value, temperature=TEMPERATURE.value,
        max_new_tokens=MAX_NEW.value, scales=tuple(int(s) for s in SCALES.value),
        scale_num_samples=SCALE_SAMPLES.value, check_export=CHECK_EXPORT.value, workers=WORKERS.value,
        progress=PROGRESS.value,
    )
    summary = run_demo(opts)
    r = summary["report"]
    report_dir = r["report_dir"]
    print()
    print(f"greedy accuracy {r['greedy_accuracy']:.1%} | PassRatio@{r['n']} {r['pass_ratio']:.1%} | "
          f"Pass@{r['n']} {r['pass_at_n']:.1%}")
    print(f"report: {os.path.join(report_dir, 'report.md')}")
    print(f"plots:  {os.path.join(report_dir, 'pass_at_k.png')}, {os.path.join(report_dir, 'accuracy_vs_steps.png')}")
    if "scaling" in summary:
        print(f"data scaling: {summary['scaling']['plot']}")


if __name__ == "__main__":
    app.run(main)
