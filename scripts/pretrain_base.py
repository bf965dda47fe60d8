"""Rebuilds the demo's miniature base model (assets/demo_base) from the procedural corpus.

    python scripts/pretrain_base.py [--output=assets/demo_base] [--workdir=/tmp/demo_base_work] \
        [--num_docs=160000] [--steps=3000] [--seed=0]

Corpus (mathjax.data.base_corpus: stories and arithmetic facts, no Q/A format) -> 512-piece
tokenizer -> `tiny` preset pretrained with configs/demo_base.py -> HF dir in bfloat16.
Resumable: run it again after an interruption.
"""

from absl import app, flags

from mathjax.experiments.demo_base import DEFAULT_OUTPUT, build_base

OUTPUT = flags.DEFINE_string("output", DEFAULT_OUTPUT, "Where the HF model dir goes.")
WORKDIR = flags.DEFINE_string("workdir", "/tmp/demo_base_work", "Corpus, tokenizer and training checkpoints.")
NUM_DOCS = flags.DEFINE_integer("num_docs", 160_000, "Corpus documents.")
STEPS = flags.DEFINE_integer("steps", None, "Optimizer steps (default: configs/demo_base.py).")
SEED = flags.DEFINE_integer("seed", 0, "Corpus and training seed.")
MAX_NUMBER = flags.DEFINE_integer("max_number", 40, "Largest number a story states freely.")
PROGRESS = flags.DEFINE_bool("progress", True, "Progress bar.")


def main(argv):
    del argv
    build_base(OUTPUT.value, WORKDIR.value, num_docs=NUM_DOCS.value, steps=STEPS.value, seed=SEED.value,
               max_number=MAX_NUMBER.value, progress=PROGRESS.value)


if __name__ == "__main__":
    app.run(main)
