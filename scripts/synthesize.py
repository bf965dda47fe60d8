"""Synthetic SFT data from seed questions (Xwin-Math style): new question -> verify/revise -> k answers -> filter.

  # a local mathjax / HF model (batched, sharded sampler):
  python scripts/synthesize.py --seeds=gsm8k_train.jsonl --output=synth/ --model=DIR \
      --num_answers=4 --agreement=0.5 --decontaminate=gsm8k_test.jsonl,math_test.jsonl

  # any OpenAI-compatible server (vLLM, SGLang, OpenAI, ...):
  OPENAI_API_KEY=... python scripts/synthesize.py --dataset=math --output=synth_math/ \
      --endpoint=http://localhost:8000/v1 --model_name=Qwen2.5-72B-Instruct --concurrency=64

  python scripts/synthesize.py --seeds=... --output=synth/ --finalize   # after all processes finish

Writes synth/synthetic.jsonl (the SFT trainer's input: question, answer, id,
provenance), synth/dropped.jsonl and synth/stats.json. A killed run restarts
where it stopped. See mathjax/synth/.
"""

import sys

from absl import app, flags, logging

_SEEDS = flags.DEFINE_string("seeds", None, "Seed JSONL (GSM8K, MATH, procedural or question/answer fields).")
_DATASET = flags.DEFINE_enum("dataset", None, ["gsm8k", "math"], "Seed from this data set's train split (hub).")
_STYLE = flags.DEFINE_enum("style", "auto", ["gsm8k", "math", "auto"], "Prompt set; auto picks per seed.")
_PROMPTS = flags.DEFINE_string("prompts", None, "JSON file overriding prompt templates (see mathjax/synth/prompts.py).")
_OUTPUT = flags.DEFINE_string("output", None, "Run directory.", required=True)
_LIMIT = flags.DEFINE_integer("limit", None, "Only the first N seeds.")
_SEED = flags.DEFINE_integer("seed", 0, "Run seed.")
# Generator: local model...
_MODEL = flags.DEFINE_string("model", None, "Local model: HF dir, mathjax checkpoint or training workdir.")
_TOKENIZER = flags.DEFINE_string("tokenizer", None, "Tokenizer for --model (default: the model's).")
_TEMPLATE = flags.DEFINE_enum("template", "xwin_math", ["xwin_math", "alpaca", "plain", "none"],
                              "Chat template wrapping prompts for --model.")
_MESH = flags.DEFINE_string("mesh", "data:-1", "Mesh over this process's devices, for --model.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "Rows decoded together, for --model.")
_DTYPE = flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16", "float16"], "Weights dtype, for --model.")
# ... or an OpenAI-compatible endpoint.
_ENDPOINT = flags.DEFINE_string("endpoint", None, "OpenAI-compatible base URL, e.g. http://localhost:8000/v1.")
_MODEL_NAME = flags.DEFINE_string("model_name", None, "Model name sent to --endpoint.")
_API_KEY_ENV = flags.DEFINE_string("api_key_env", "OPENAI_API_KEY", "Environment variable holding the API key.")
_CONCURRENCY = flags.DEFINE_integer("concurrency", 16, "Requests in flight, for --endpoint.")
_MAX_RETRIES = flags.DEFINE_integer("max_retries", 8, "Retries per request before stopping, for --endpoint.")
_TIMEOUT = flags.DEFINE_float("timeout", 300.0, "Seconds per HTTP request.")
# Sampling.
_TEMPERATURE = flags.DEFINE_float("temperature", 0.7, "Sampling temperature of every stage.")
_TOP_P = flags.DEFINE_float("top_p", 1.0, "Nucleus sampling mass.")
_MAX_NEW_TOKENS = flags.DEFINE_integer("max_new_tokens", 1024, "Tokens per generation at most.")
# Filters.
_NUM_ANSWERS = flags.DEFINE_integer("num_answers", 4, "k answers per new question for the agreement vote.")
_AGREEMENT = flags.DEFINE_float("agreement", 0.5, "Keep when the majority answer has at least this share of k.")
_STRICT_VERIFY = flags.DEFINE_bool("strict_verification", False, "Drop questions whose verification is unparsable.")
_DEDUP = flags.DEFINE_float("dedup_threshold", 0.8, "Shingle Jaccard for near-duplicates; 0 = no dedup.")
_DECONTAMINATE = flags.DEFINE_list("decontaminate", [], "Test sets: JSONL files/dirs, or gsm8k / math (hub).")
_NGRAM = flags.DEFINE_integer("ngram", 13, "n of the n-gram leakage check.")
_ENFORCE = flags.DEFINE_bool("enforce_decontamination", False, "Drop examples overlapping a test set.")
# Processes.
_PROCESS_INDEX = flags.DEFINE_integer("process_index", None, "This process's share (default: JAX's, or 0).")
_PROCESS_COUNT = flags.DEFINE_integer("process_count", None, "Number of shares (default: JAX's, or 1).")
_FINALIZE = flags.DEFINE_bool("finalize", False, "Only filter the finished stages of all processes and write output.")
_PROGRESS = flags.DEFINE_bool("progress", True, "Progress bars.")


def _options():
    from mathjax import synth

    sets = synth.load_prompt_sets(_PROMPTS.value) if _PROMPTS.value else None
    return synth.SynthOptions(
        style=_STYLE.value, num_answers=_NUM_ANSWERS.value, seed=_SEED.value,
        strict_verification=_STRICT_VERIFY.value, filters=synth.FilterOptions(agreement=_AGREEMENT.value),
        dedup=synth.DedupOptions(threshold=_DEDUP.value) if _DEDUP.value > 0 else None,
        decontaminate=tuple(_DECONTAMINATE.value), ngram=_NGRAM.value,
        enforce_decontamination=_ENFORCE.value, prompt_sets=sets,
    )


def _local_generator():
    import jax

    import mathjax
    from mathjax.train.checkpoint import load_tokenizer_from as load_tokenizer  # local paths and gs:// alike
    from mathjax.parallel.mesh import initialize_distributed, make_mesh
    from mathjax.sample import SamplingRules
    from mathjax.synth import LocalGenerator

    initialize_distributed()
    # Each process samples its own seeds on its own devices: no collectives.
    mesh = make_mesh(_MESH.value, devices=jax.local_devices())
    model = mathjax.load(_MODEL.value, dtype=_DTYPE.value, mesh=mesh)
    tokenizer = load_tokenizer(_TOKENIZER.value) if _TOKENIZER.value else model.tokenizer()
    rules = SamplingRules(temperature=_TEMPERATURE.value, top_p=_TOP_P.value)
    gen = LocalGenerator(model, tokenizer, rules, template=_TEMPLATE.value, max_new_tokens=_MAX_NEW_TOKENS.value,
                         batch_size=_BATCH_SIZE.value)
    return gen, jax.process_index(), jax.process_count()


def main(argv):
    del argv
    from mathjax import synth

    if bool(_SEEDS.value) == bool(_DATASET.value):
        raise app.UsageError("give --seeds=FILE.jsonl or --dataset=gsm8k|math (one of them)")
    seeds = synth.load_seeds(_SEEDS.value or _DATASET.value, limit=_LIMIT.value)
    options = _options()
    if _FINALIZE.value:
        stats = synth.finalize(seeds, _OUTPUT.value, options, process_count=_PROCESS_COUNT.value or 1)
        logging.info("kept %d of %d seeds", stats["kept"], stats["seeds"])
        return
    if bool(_MODEL.value) == bool(_ENDPOINT.value):
        raise app.UsageError("give --model=DIR (local) or --endpoint=URL --model_name=NAME (HTTP), one of them")
    if _ENDPOINT.value:
        gen = synth.HTTPGenerator(
            _ENDPOINT.value, _MODEL_NAME.value, api_key_env=_API_KEY_ENV.value, temperature=_TEMPERATURE.value,
            top_p=_TOP_P.value, max_new_tokens=_MAX_NEW_TOKENS.value, concurrency=_CONCURRENCY.value,
            max_retries=_MAX_RETRIES.value, timeout=_TIMEOUT.value)
        index, count, distributed = 0, 1, False
    else:
        gen, index, count = _local_generator()
        distributed = count > 1
    index = index if _PROCESS_INDEX.value is None else _PROCESS_INDEX.value
    count = count if _PROCESS_COUNT.value is None else _PROCESS_COUNT.value
    own_finalize = count == 1 or (distributed and _PROCESS_COUNT.value is None)
    try:
        summary = synth.run(seeds, gen, _OUTPUT.value, options, process_index=index, process_count=count,
                            progress=_PROGRESS.value, finalize_output=count == 1)
    except synth.GeneratorError as e:
        # The server is down or misconfigured: everything finished so far is kept; rerun to resume.
        logging.error("%s", e)
        sys.exit(f"error: {e}\n(finished work is kept; rerun the same command to resume)")
    logging.info("stages: generated %s in %s s", summary.generated, summary.seconds)
    if count > 1 and own_finalize:
        # One jax.distributed job: wait for every process, then process 0 writes the output.
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("mathjax.synth stages done")
        if index == 0:
            summary.stats = synth.finalize(seeds, _OUTPUT.value, options, process_count=count, generator=gen.name)
    elif count > 1:
        logging.info("process %d of %d done; when all are, run again with --finalize --process_count=%d",
                     index, count, count)
    if summary.stats:
        s = summary.stats
        logging.info("kept %d of %d seeds; dropped %s; leakage flagged %d", s["kept"], s["seeds"],
                     {k: v for k, v in s["dropped"].items() if v}, s["decontamination"]["flagged"])
        print(f"kept {s['kept']} of {s['seeds']} seeds -> {s['output']}")


if __name__ == "__main__":
    app.run(main)
