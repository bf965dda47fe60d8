"""Draws N samples per question into a resumable JSONL (one line per question).

  python scripts/sample.py --model=DIR --input=questions.jsonl --output=samples.jsonl \
      --num_samples=256 --temperature=0.7 --top_p=1.0 --top_k=0 --max_new_tokens=512 \
      --template=xwin_math --seed=0 [--ignore_eos] [--mesh=data:8] [--batch_size=256]

  python scripts/sample.py --model=DIR --dataset=gsm8k --output=gsm8k.jsonl ...
  python scripts/sample.py --merge --output=samples.jsonl      # join per-process shards

  # Fit check: compile prefill and decode on abstract params and cache (nothing
  # allocated; --model may be a preset name), print per-device memory and FLOPs, exit.
  python scripts/sample.py --model=llama2_7b --dry_run --dry_run_devices=8 --mesh=data:8 \
      --dtype=bfloat16 --batch_size=256 --num_samples=256 --max_new_tokens=512 --dry_run_prompt_len=512

  # The same on a whole Cloud TPU slice (the mesh spans all its hosts), compiled by
  # the TPU compiler on this host (pip install libtpu): exit 0 fits, 1 does not.
  python scripts/sample.py --model=llama2_7b --dry_run --dry_run_topology=v4-32 --mesh=data:4,tensor:4 \
      --dtype=bfloat16 --batch_size=256 --num_samples=256 --max_new_tokens=512 --dry_run_prompt_len=512

A restarted run skips the questions already in --output. With several
processes (jax.distributed) the mesh spans all their devices and each process
writes the shard of the questions it owns; --per_host (or
--process_count/--process_index for independent jobs) gives each process its
own questions and devices instead. --merge joins the shards. See mathjax/sample/.
"""

import os
import sys

from absl import app, flags, logging

_MODEL = flags.DEFINE_string("model", None, "HF model dir, mathjax checkpoint or training workdir.")
_TOKENIZER = flags.DEFINE_string("tokenizer", None, "Tokenizer dir or .model file (default: the model's).")
_INPUT = flags.DEFINE_string("input", None, "JSONL with `question`, and `id`/`answer` (passed through).")
_DATASET = flags.DEFINE_string("dataset", None, "gsm8k | math | a file/dir load_eval_set accepts.")
_SPLIT = flags.DEFINE_string("split", "test", "Split for --dataset.")
_LIMIT = flags.DEFINE_integer("limit", None, "Only the first N questions.")
_OUTPUT = flags.DEFINE_string("output", None, "Output JSONL (required unless --dry_run).")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 256, "Samples per question.")
_TEMPERATURE = flags.DEFINE_float("temperature", 0.7, "Sampling temperature; 0 = greedy.")
_TOP_P = flags.DEFINE_float("top_p", 1.0, "Nucleus sampling mass; 1 = off.")
_TOP_K = flags.DEFINE_integer("top_k", 0, "Top-k; 0 = off.")
_MAX_NEW_TOKENS = flags.DEFINE_integer("max_new_tokens", 512, "Tokens generated per sample at most.")
_TEMPLATE = flags.DEFINE_enum("template", "xwin_math", ["xwin_math", "alpaca", "plain", "none"], "Prompt template.")
_STOP = flags.DEFINE_list("stop", None, "Stop strings (default: the template's, e.g. 'USER:').")
_SEED = flags.DEFINE_integer("seed", 0, "Run seed; a sample depends only on (seed, question id, sample index).")
_IGNORE_EOS = flags.DEFINE_bool("ignore_eos", False, "Always generate max_new_tokens (benchmarks).")
_MESH = flags.DEFINE_string("mesh", "data:-1", "Mesh over the devices of all processes (one model spanning a pod "
                            "slice's hosts), e.g. data:4,tensor:4 on a v4-32; with --per_host, over this "
                            "process's devices.")
_PER_HOST = flags.DEFINE_bool("per_host", False, "Each process samples its own share of the questions on its own "
                              "devices, independently (no collectives between hosts; the model must fit one host).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 0, "Rows decoded together; 0: as many as the devices' memory "
                                   "holds after the weights, a multiple of the data axis (256 per data shard on CPU; "
                                   "see mathjax/sample/batch_size.py).")
_ROWS_PER_PROMPT = flags.DEFINE_integer("rows_per_prompt", None, "Rows sharing one prompt's KV (default: auto).")
_DTYPE = flags.DEFINE_enum("dtype", "auto", ["auto", "float32", "bfloat16", "float16"],
                           "Weights/compute dtype; auto: bfloat16 on GPU/TPU (and for TPU dry runs), float32 on CPU.")
_KV_DTYPE = flags.DEFINE_string("kv_dtype", None, "KV cache dtype (default: --dtype).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-process GPU/CPU; "
                                   "Cloud TPU VMs find their peers themselves).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes (multi-process GPU/CPU).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index (multi-process GPU/CPU).")
_PROCESS_INDEX = flags.DEFINE_integer("process_index", None, "This process's share (default: jax.process_index()).")
_PROCESS_COUNT = flags.DEFINE_integer("process_count", None, "Number of shares (default: jax.process_count()).")
_MERGE = flags.DEFINE_bool("merge", False, "Join the shards of --output and exit.")
_PROGRESS = flags.DEFINE_bool("progress", True, "tqdm progress bar.")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Fit check: compile the sampler on abstract params, print memory "
                             "and FLOPs, exit. --model may then be a preset name (e.g. llama2_7b).")
_DRY_RUN_PROMPT_LEN = flags.DEFINE_integer("dry_run_prompt_len", 512, "With --dry_run: longest prompt, in tokens.")
_DRY_RUN_DEVICES = flags.DEFINE_integer("dry_run_devices", None, "With --dry_run on CPU: emulate this many devices.")
_DRY_RUN_TOPOLOGY = flags.DEFINE_string("dry_run_topology", None, "With --dry_run: a Cloud TPU accelerator type "
                                        "(v4-32, v5litepod-64, v5p-128, v6e-16, ...) whose devices the mesh spans.")
_DEVICE_MEMORY_GIB = flags.DEFINE_float("device_memory_gib", None, "With --dry_run: memory per device to compare "
                                        "against (default: what the backend reports; CPU reports none).")


def main(argv):
    del argv
    if _DRY_RUN.value:
        _dry_run()
        return
    import jax

    import mathjax
    from mathjax.train.checkpoint import load_tokenizer_from as load_tokenizer  # local paths and gs:// alike
    from mathjax.parallel.mesh import initialize_distributed, make_mesh
    from mathjax.sample import SamplingRules, runner

    if not _OUTPUT.value:
        raise app.UsageError("--output is required")
    records = None
    if _INPUT.value and _DATASET.value:
        raise app.UsageError("give --input or --dataset, not both")
    if _INPUT.value:
        records = runner.read_jsonl_records(_INPUT.value)
    elif _DATASET.value:
        from mathjax.data.sources import load_eval_set

        records = load_eval_set(_DATASET.value, _SPLIT.value)
    if records is not None and _LIMIT.value is not None:
        records = records[: _LIMIT.value]

    if _MERGE.value:
        n = runner.merge(_OUTPUT.value, order=[r["id"] for r in records] if records else None)
        logging.info("merged %d questions into %s", n, _OUTPUT.value)
        return
    if records is None:
        raise app.UsageError("give --input or --dataset")
    if not _MODEL.value:
        raise app.UsageError("--model is required")

    initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    # One mesh over every process's devices (a model too big for one host samples
    # on the whole slice; processes schedule in lockstep and each writes its own
    # questions), or, with --per_host, independent per-process meshes.
    mesh = make_mesh(_MESH.value, devices=jax.local_devices() if _PER_HOST.value else jax.devices())
    # Per-layer weights, one copy (the stacked load is converted in place).
    model = mathjax.load(_MODEL.value, dtype=_resolve_dtype(jax.default_backend()), mesh=mesh).for_sampling()
    tokenizer = load_tokenizer(_TOKENIZER.value) if _TOKENIZER.value else model.tokenizer()
    rules = SamplingRules(temperature=_TEMPERATURE.value, top_p=_TOP_P.value, top_k=_TOP_K.value)
    batch_size = _BATCH_SIZE.value or _auto_batch(model, tokenizer, records)
    options = {}
    if _ROWS_PER_PROMPT.value:
        options["rows_per_prompt"] = _ROWS_PER_PROMPT.value
    if _KV_DTYPE.value:
        options["kv_dtype"] = _KV_DTYPE.value
    result = runner.run(
        model, tokenizer, records, _OUTPUT.value, num_samples=_NUM_SAMPLES.value, rules=rules,
        template=_TEMPLATE.value, max_new_tokens=_MAX_NEW_TOKENS.value, seed=_SEED.value,
        batch_size=batch_size, ignore_eos=_IGNORE_EOS.value, stop=_STOP.value,
        process_index=_PROCESS_INDEX.value, process_count=_PROCESS_COUNT.value, progress=_PROGRESS.value,
        sampler_options=options,
    )
    logging.info("%s: %d questions written, %d skipped (already done). %s",
                 result.output_path, result.written, result.skipped, result.stats.summary())


def _auto_batch(model, tokenizer, records) -> int:
    """--batch_size=0: rows that fit the measured free memory per device (weights as loaded)."""
    from mathjax.data.templates import get_template
    from mathjax.data.tokenize import encode_prompt
    from mathjax.sample import batch_size as batch_lib

    template = get_template(_TEMPLATE.value)
    longest = max(len(encode_prompt(tokenizer, template.format_prompt(r["question"]))) for r in records)
    choice = batch_lib.auto_batch_size(
        model.config, dict(model.mesh.shape), batch_lib.resident_bytes(model.params),
        batch_lib.device_memory_bytes(), _MAX_NEW_TOKENS.value, longest, _NUM_SAMPLES.value,
        _KV_DTYPE.value or model.config.dtype)
    logging.info("batch size %d: %s", choice.batch_size, choice.reason)
    return choice.batch_size


def _resolve_dtype(platform: str) -> str:
    """``--dtype=auto``: bfloat16 weights and KV cache on accelerators, float32 on CPU."""
    if _DTYPE.value != "auto":
        return _DTYPE.value
    return "float32" if platform == "cpu" else "bfloat16"


def _dry_run():
    if not _MODEL.value:
        raise app.UsageError("--model is required (a model dir or a preset name such as llama2_7b)")
    if _DRY_RUN_TOPOLOGY.value:
        # The host's own backend is irrelevant; with libtpu installed on a non-TPU
        # host, probing for a local TPU only prints errors.
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax

    from mathjax.sample import SamplingRules
    from mathjax.sample import fit_check as sample_fit_check
    from mathjax.train import fit_check

    fit_check.emulate_devices(_DRY_RUN_DEVICES.value)  # before the first device query starts the backend
    memory = int(_DEVICE_MEMORY_GIB.value * fit_check.GiB) if _DEVICE_MEMORY_GIB.value else None
    try:
        reports = sample_fit_check.sample_fit_check(
            sample_fit_check.sample_model_config(_MODEL.value, _resolve_dtype(
                "tpu" if _DRY_RUN_TOPOLOGY.value else jax.default_backend())), _MESH.value,
            batch_size=_BATCH_SIZE.value, num_samples=_NUM_SAMPLES.value, prompt_len=_DRY_RUN_PROMPT_LEN.value,
            max_new_tokens=_MAX_NEW_TOKENS.value, rows_per_prompt=_ROWS_PER_PROMPT.value, kv_dtype=_KV_DTYPE.value,
            rules=SamplingRules(temperature=_TEMPERATURE.value, top_p=_TOP_P.value, top_k=_TOP_K.value),
            device_memory=memory, topology=_DRY_RUN_TOPOLOGY.value,
        )
    except (RuntimeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)
    fit_check.print_verdicts_and_exit(reports)


if __name__ == "__main__":
    app.run(main)
