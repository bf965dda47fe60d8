"""Writes procedural GSM8K-style word problems as train/test JSONL.

  python scripts/make_procedural_data.py --output_dir=data/proc \
      --num_train=20000 --num_test=200 --max_steps=3 --step_weights=3,2,1

Records: id, question, answer (worked solution, the SFT target), final_answer,
steps, kind; see mathjax/data/procedural.py.
"""

import os

from absl import app, flags, logging

from mathjax.data import procedural

_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Directory for train.jsonl and test.jsonl.", required=True)
_NUM_TRAIN = flags.DEFINE_integer("num_train", 10000, "Train problems (0: no train file).")
_NUM_TEST = flags.DEFINE_integer("num_test", 500, "Test problems (0: no test file).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed; the output is a pure function of the flags.")
_MIN_STEPS = flags.DEFINE_integer("min_steps", 1, "Fewest reasoning steps per problem.")
_MAX_STEPS = flags.DEFINE_integer("max_steps", 6, "Most reasoning steps per problem.")
_STEP_WEIGHTS = flags.DEFINE_list(
    "step_weights", None, "Relative weights of min_steps..max_steps (default: uniform).")
_MAX_NUMBER = flags.DEFINE_integer("max_number", 20, "Largest number a question states.")
_MAX_VALUE = flags.DEFINE_integer("max_value", 1000, "Largest intermediate or final value.")
_KINDS = flags.DEFINE_list("kinds", None, f"Families to use (default all): {','.join(procedural.FAMILIES)}.")
_TEST_FRACTION = flags.DEFINE_float(
    "test_fraction", procedural.DEFAULT_TEST_FRACTION, "Share of equation chains reserved for test.")


def main(argv):
    del argv
    weights = [float(w) for w in _STEP_WEIGHTS.value] if _STEP_WEIGHTS.value else None
    for split, n in (("train", _NUM_TRAIN.value), ("test", _NUM_TEST.value)):
        if n <= 0:
            continue
        records = procedural.generate(
            n, split=split, seed=_SEED.value, min_steps=_MIN_STEPS.value, max_steps=_MAX_STEPS.value,
            step_weights=weights, max_number=_MAX_NUMBER.value, max_value=_MAX_VALUE.value,
            kinds=_KINDS.value, test_fraction=_TEST_FRACTION.value)
        path = os.path.join(_OUTPUT_DIR.value, f"{split}.jsonl")
        procedural.write_jsonl(records, path)
        logging.info("wrote %d %s problems to %s", n, split, path)


if __name__ == "__main__":
    app.run(main)
