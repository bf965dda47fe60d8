"""Models on the same held-out questions, each against a control, with paired standard errors.

  python scripts/compare_models.py --models=SFT=DIR1,GRPO=DIR2[,...] --eval_files=test.jsonl \
      --output_dir=OUT [--num_samples=16] [--temperature=0.7] [--max_questions=200]

The first model is the control (e.g. the SFT model RL started from). Each model
gets a greedy answer and N samples per question, graded; OUT/compare.md tables
greedy accuracy, PassRatio@N and Pass@N with each model's difference to the
control and its paired standard error, OUT/compare.json the same numbers.
Eval records are the SFT trainer's (``question``, ``answer`` with a final answer).
"""

from absl import app, flags

_MODELS = flags.DEFINE_list("models", None, "LABEL=MODEL_DIR pairs; the first is the control.", required=True)
_EVAL = flags.DEFINE_string("eval_files", None, "Comma-separated JSONL of held-out questions.", required=True)
_OUT = flags.DEFINE_string("output_dir", None, "Where compare.json and compare.md go.", required=True)
_N = flags.DEFINE_integer("num_samples", 16, "Samples per question.")
_TEMP = flags.DEFINE_float("temperature", 0.7, "Sampling temperature.")
_MAX_Q = flags.DEFINE_integer("max_questions", 0, "Use only the first this many questions (0: all).")
_MAX_NEW = flags.DEFINE_integer("max_new_tokens", 512, "Longest answer in tokens.")
_TEMPLATE = flags.DEFINE_string("template", "plain", "Prompt template the models were trained with.")
_SEED = flags.DEFINE_integer("seed", 0, "Sampling seed (the same for every model).")
_BATCH = flags.DEFINE_integer("batch_size", 256, "Sampler rows per batch.")


def main(argv):
    del argv
    from mathjax.experiments import compare_models as cm
    from mathjax.rl.data import read_records

    models = {}
    for item in _MODELS.value:
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            raise app.UsageError(f"--models: {item!r} is not LABEL=MODEL_DIR")
        if label in models:
            raise app.UsageError(f"--models: label {label!r} given twice")
        models[label] = path
    records = read_records(_EVAL.value)
    if _MAX_Q.value:
        records = records[: _MAX_Q.value]
    result = cm.compare_models(models, records, num_samples=_N.value, temperature=_TEMP.value,
                               template=_TEMPLATE.value, max_new_tokens=_MAX_NEW.value, seed=_SEED.value,
                               batch_size=_BATCH.value)
    files = cm.write(result, _OUT.value)
    print(cm.markdown(result))
    print(f"written: {files['markdown']}, {files['json']}")


if __name__ == "__main__":
    app.run(main)
