"""Rejection-sampling fine-tuning data: sample K answers per training question, keep the correct, distinct ones.

  python scripts/rft.py --model=DIR --input=train.jsonl --output=OUT_DIR --num_samples=K [--rounds=R]
      [--temperature=0.7 --max_new_tokens=512 --seed=0 --batch_size=64 --mesh=data:-1 --template=xwin_math]
      [--budget=difficulty --min_correct=4 --max_samples=4K] [--norequire_correct_arithmetic] [--noinclude_gold]
      [--sft_config=configs/tiny.py --sft_config.steps=300]       # fine-tuned between ReST-EM rounds

  # independent jobs: --process_index=i --process_count=n each, then once all have finished
  python scripts/rft.py --model=DIR --input=train.jsonl --output=OUT_DIR --num_samples=K --process_count=n --merge_only

Writes OUT_DIR/rft.jsonl (the SFT trainer's input as is: question, answer) and
OUT_DIR/stats.json (per-question pass rates and counts); OUT_DIR/round_r/ holds
each round's samples, data and (between rounds) SFT workdir. Rerunning the
same command resumes. See mathjax/rl/rft.py.
"""

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_MODEL = flags.DEFINE_string("model", None, "Base model: HF dir, mathjax checkpoint or training workdir.")
_INPUT = flags.DEFINE_string("input", None, "Training JSONL: question, answer (ending in a final answer line).",
                             required=True)
_OUTPUT = flags.DEFINE_string("output", None, "Run directory.", required=True)
_TOKENIZER = flags.DEFINE_string("tokenizer", None, "Tokenizer (default: the model's).")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 4, "K: samples per question (first pass).")
_ROUNDS = flags.DEFINE_integer("rounds", 1, "ReST-EM rounds; the base model is fine-tuned between them.")
_TEMPERATURE = flags.DEFINE_float("temperature", 0.7, "Sampling temperature.")
_TOP_P = flags.DEFINE_float("top_p", 1.0, "Nucleus sampling mass.")
_TEMPLATE = flags.DEFINE_enum("template", "xwin_math", ["xwin_math", "alpaca", "plain", "none"],
                              "Prompt template, as in training (also the template fine-tuned with between rounds).")
_MAX_NEW_TOKENS = flags.DEFINE_integer("max_new_tokens", 512, "Tokens per sample at most.")
_SEED = flags.DEFINE_integer("seed", 0, "Run seed.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "Rows decoded together.")
_MESH = flags.DEFINE_string("mesh", "data:-1", "Sampling mesh over this process's devices.")
_DTYPE = flags.DEFINE_enum("dtype", "auto", ["auto", "float32", "bfloat16", "float16"],
                           "Sampling weights dtype; auto: bfloat16 on GPU/TPU, float32 on CPU.")
_BUDGET = flags.DEFINE_enum("budget", "uniform", ["uniform", "difficulty"],
                            "uniform: K per question; difficulty: extra passes for low pass rates (DART-Math).")
_MIN_CORRECT = flags.DEFINE_integer("min_correct", 4, "difficulty: distinct correct paths wanted per question.")
_MAX_SAMPLES = flags.DEFINE_integer("max_samples", 0, "difficulty: samples per question at most (0: 4 x K).")
_REQUIRE_ARITH = flags.DEFINE_bool("require_correct_arithmetic", True, "Drop paths with a wrong a op b = c.")
_INCLUDE_GOLD = flags.DEFINE_bool("include_gold", True, "Add each question's own solution (and dedup against it).")
_GRADE_WORKERS = flags.DEFINE_integer("grade_workers", None, "Grader processes (default: all cores; 0: inline).")
_SFT_CONFIG = config_flags.DEFINE_config_file("sft_config", os.path.join(ROOT, "configs", "tiny.py"),
                                              "SFT config fine-tuned between rounds (--sft_config.key=value).")
_PROCESS_INDEX = flags.DEFINE_integer("process_index", None, "This process's share (default: JAX's).")
_PROCESS_COUNT = flags.DEFINE_integer("process_count", None, "Number of shares (default: JAX's).")
_MERGE_ONLY = flags.DEFINE_bool("merge_only", False, "Only merge, grade and filter the finished samples of all "
                                "processes (after independent --process_index jobs).")
_PROGRESS = flags.DEFINE_bool("progress", True, "Progress bars.")


def main(argv):
    del argv
    import jax

    from mathjax.parallel.mesh import initialize_distributed
    from mathjax.rl import rft

    if not _MODEL.value:
        raise app.UsageError("--model is required")
    initialize_distributed()
    index = jax.process_index() if _PROCESS_INDEX.value is None else _PROCESS_INDEX.value
    count = jax.process_count() if _PROCESS_COUNT.value is None else _PROCESS_COUNT.value
    # One jax.distributed job synchronises itself; explicit shares are independent jobs.
    synchronized = jax.process_count() > 1 and _PROCESS_COUNT.value is None
    dtype = _DTYPE.value
    if dtype == "auto":
        dtype = "float32" if jax.default_backend() == "cpu" else "bfloat16"
    options = rft.RFTOptions(
        num_samples=_NUM_SAMPLES.value, temperature=_TEMPERATURE.value, top_p=_TOP_P.value,
        template=_TEMPLATE.value, max_new_tokens=_MAX_NEW_TOKENS.value, seed=_SEED.value,
        batch_size=_BATCH_SIZE.value, budget=_BUDGET.value, min_correct=_MIN_CORRECT.value,
        max_samples=_MAX_SAMPLES.value, require_correct_arithmetic=_REQUIRE_ARITH.value,
        include_gold=_INCLUDE_GOLD.value, rounds=_ROUNDS.value, grade_workers=_GRADE_WORKERS.value)
    result = rft.run_rft(
        _MODEL.value, _INPUT.value, _OUTPUT.value, options, sft_config=_SFT_CONFIG.value,
        loader=rft.default_loader(_MESH.value, dtype, _TOKENIZER.value), tokenizer=_TOKENIZER.value,
        process_index=index, process_count=count, synchronized=synchronized, merge_only=_MERGE_ONLY.value,
        progress=_PROGRESS.value)
    if result.preempted:
        logging.warning("preempted while fine-tuning; rerun the same command to resume")
        sys.exit(143)
    for summary in result.rounds:
        s = summary.get("stats")
        if s:
            print(f"round {s['round']}: {s['questions']} questions, {s['samples']} samples, pass rate "
                  f"{s['pass_rate']}, {s['kept_paths']} distinct correct paths, {s['examples']} examples")
    if result.rounds and result.rounds[-1].get("stats"):
        print(f"-> {os.path.join(_OUTPUT.value, 'rft.jsonl')}")


if __name__ == "__main__":
    app.run(main)
