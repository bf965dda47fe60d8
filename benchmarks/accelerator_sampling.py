"""Decode throughput on an accelerator: mathjax's ``Sampler`` or ``transformers.generate``, one side per process.

  python benchmarks/accelerator_sampling.py --side=mathjax --preset=llama2_7b --prompt_len=128 \
      --num_samples=256 --max_new_tokens=512 --json_out=mathjax.json
  python benchmarks/accelerator_sampling.py --side=transformers --preset=llama2_7b --prompt_len=128 \
      --num_samples=256 --max_new_tokens=512 --json_out=hf.json
  python benchmarks/accelerator_sampling.py --compare=mathjax.json,hf.json   # the ratio

Random weights (bf16 on GPU/TPU, float32 on CPU), one prompt, ``num_samples`` samples of exactly
``max_new_tokens`` new tokens (EOS ignored), temperature 0.7. The two sides need not share
weights: with EOS ignored and the same shapes, the work per token is the same. Each side
reports tokens/s, the first (compiling) run's time and the memory roofline: one decode step
reads every weight once plus the KV cache it attends to (mathjax stores the prompt's KV once
for all rows, ``transformers`` once per row), so at ``--hbm_bandwidth`` bytes/s the best
tokens/s is rows / (bytes per step / bandwidth), with the KV at its mean length over the run.
Shares the flags of benchmarks/sample_throughput.py (``--preset --prompt_len --num_samples
--max_new_tokens --batch_size --temperature --repeats``) and its ``decode_flops``.
"""

import json
import os
import sys
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sample_throughput as st  # noqa: E402  (its flags and decode_flops)

_SIDE = flags.DEFINE_enum("side", "mathjax", ["mathjax", "transformers"], "Which implementation to time.")
_DTYPE = flags.DEFINE_string("dtype", "auto", "auto: bfloat16 on GPU/TPU, float32 on CPU.")
_BANDWIDTH = flags.DEFINE_float("hbm_bandwidth", 4.8e12, "Device memory bytes/s for the roofline (H200).")
_JSON_OUT = flags.DEFINE_string("json_out", None, "Write the result as JSON.")
_COMPARE = flags.DEFINE_list("compare", None, "mathjax.json,transformers.json: print their ratio and exit.")
_HF_FALLBACK = flags.DEFINE_integer("hf_fallback_samples", 128, "transformers: rows to retry with after an OOM.")


def roofline(config, dtype_bytes: int, rows: int, prompt_len: int, new_tokens: int, shared_prompt: bool) -> dict:
    """Bytes one decode step reads (mean over the run) and the tokens/s that bandwidth allows."""
    weight_bytes = config.num_params() * dtype_bytes
    kv_per_token = config.num_layers * 2 * config.num_kv_heads * config.resolved_head_dim * dtype_bytes
    mean_new = (new_tokens - 1) / 2
    kv_tokens = (prompt_len + rows * mean_new) if shared_prompt else rows * (prompt_len + mean_new)
    step_bytes = weight_bytes + kv_tokens * kv_per_token
    return {"weight_gb": weight_bytes / 1e9, "kv_gb_per_step_mean": kv_tokens * kv_per_token / 1e9,
            "step_gb": step_bytes / 1e9, "roofline_tokens_per_s": rows / (step_bytes / _BANDWIDTH.value),
            "bandwidth": _BANDWIDTH.value}


def _config(backend: str):
    from mathjax.model.config import get_preset

    dtype = _DTYPE.value if _DTYPE.value != "auto" else ("float32" if backend == "cpu" else "bfloat16")
    return get_preset(st._PRESET.value, dtype=dtype, param_dtype=dtype), dtype


def run_mathjax() -> dict:
    import jax
    import numpy as np

    import mathjax
    from mathjax.sample import Sampler, SamplingRules

    config, dtype = _config(jax.default_backend())
    n, new, plen = st._NUM_SAMPLES.value, st._MAX_NEW.value, st._PROMPT_LEN.value
    t = time.perf_counter()
    model = mathjax.from_random(config, seed=0).for_sampling()  # one copy of the weights
    jax.block_until_ready(model.params)
    init_s = time.perf_counter() - t
    prompt = [config.bos_token_id] + np.random.default_rng(0).integers(3, config.vocab_size, size=plen - 1).tolist()
    sampler = Sampler(model, None, SamplingRules(temperature=st._TEMPERATURE.value, top_p=1.0, top_k=0),
                      batch_size=min(st._BATCH.value, n), max_new_tokens=new, ignore_eos=True)
    t = time.perf_counter()
    sampler.sample([prompt], num_samples=n, seed=1)
    first = time.perf_counter() - t
    print(f"mathjax first run (compiles): {first:.1f}s", flush=True)
    best = float("inf")
    for i in range(st._REPEATS.value):
        sampler.stats = type(sampler.stats)()
        t = time.perf_counter()
        results = sampler.sample([prompt], num_samples=n, seed=2 + i)
        best = min(best, time.perf_counter() - t)
    assert sum(s.num_tokens for s in results[0]) == n * new
    stats = sampler.stats
    return {"side": "mathjax", "device": jax.devices()[0].device_kind, "dtype": dtype, "rows": stats.batch,
            "init_s": init_s, "first_run_s": first, "compile_s_est": first - best, "seconds": best,
            "compiled_variants": str(sampler.compile_counts()), "slot_utilisation": stats.slot_utilisation,
            "kv_mib_shared": stats.kv_bytes_shared / 2**20, "kv_mib_unshared": stats.kv_bytes_unshared / 2**20,
            **_figures(config, dtype, stats.batch, best, shared_prompt=True)}


def _figures(config, dtype: str, rows: int, seconds: float, shared_prompt: bool) -> dict:
    n, new, plen = st._NUM_SAMPLES.value, st._MAX_NEW.value, st._PROMPT_LEN.value
    roof = roofline(config, 2 if dtype in ("bfloat16", "float16") else 4, rows, plen, new, shared_prompt)
    tps = n * new / seconds
    return {"preset": st._PRESET.value, "params": config.num_params(), "prompt_len": plen, "samples": n,
            "new_tokens": new, "tokens": n * new, "tokens_per_s": tps,
            "tflops_achieved": st.decode_flops(config, plen, new) * n / seconds / 1e12,
            **roof, "roofline_fraction": tps / roof["roofline_tokens_per_s"]}


def _hf_model(config, dtype: str, device: str):
    """The same shapes as a ``transformers`` model, initialised directly on ``device`` (fast on a GPU)."""
    import torch
    import transformers

    hf_config = transformers.AutoConfig.for_model(**config.to_hf_dict())
    torch.manual_seed(0)
    want = getattr(torch, dtype)
    with torch.device(device):
        try:
            model = transformers.AutoModelForCausalLM.from_config(hf_config, dtype=want)
        except TypeError:  # transformers < 4.56 names it torch_dtype
            model = transformers.AutoModelForCausalLM.from_config(hf_config, torch_dtype=want)
    if next(model.parameters()).dtype != want:
        model = model.to(want)
    return model.eval()


def run_transformers() -> dict:
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    config, dtype = _config("cpu" if device == "cpu" else "gpu")
    n, new, plen = st._NUM_SAMPLES.value, st._MAX_NEW.value, st._PROMPT_LEN.value
    t = time.perf_counter()
    model = _hf_model(config, dtype, device)
    init_s = time.perf_counter() - t
    import numpy as np

    prompt = [config.bos_token_id] + np.random.default_rng(0).integers(3, config.vocab_size, size=plen - 1).tolist()
    ids = torch.tensor([prompt], device=device)
    kwargs = dict(do_sample=True, temperature=st._TEMPERATURE.value, top_p=1.0, top_k=0, pad_token_id=0,
                  eos_token_id=None)

    def generate(rows: int, tokens: int):
        out = model.generate(ids, max_new_tokens=tokens, min_new_tokens=tokens, num_return_sequences=rows, **kwargs)
        assert out.shape == (rows, plen + tokens), out.shape
        if device == "cuda":
            torch.cuda.synchronize()

    rows = n
    with torch.no_grad():
        t = time.perf_counter()
        generate(1, 4)  # warm-up (kernels, cuBLAS handles)
        first = time.perf_counter() - t
        while True:
            try:
                torch.manual_seed(0)
                t = time.perf_counter()
                generate(rows, new)
                seconds = time.perf_counter() - t
                break
            except getattr(torch, "OutOfMemoryError", getattr(torch.cuda, "OutOfMemoryError", MemoryError)) as e:
                if rows <= _HF_FALLBACK.value:
                    raise
                print(f"transformers OOM at {rows} rows ({str(e)[:120]}); retrying at {_HF_FALLBACK.value}", flush=True)
                rows = _HF_FALLBACK.value
                torch.cuda.empty_cache()
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    # Per-token rate at `rows` rows, scaled as if all n samples ran that way (n / rows batches).
    seconds_all = seconds * n / rows
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    return {"side": "transformers", "device": name, "dtype": dtype, "rows": rows, "init_s": init_s,
            "first_run_s": first, "seconds": seconds_all, "seconds_measured": seconds, "peak_mem_gib": peak,
            **_figures(config, dtype, rows, seconds_all, shared_prompt=False)}


def compare(paths: list[str]) -> None:
    a, b = (json.load(open(p)) for p in paths)
    print(f"ratio: mathjax {a['tokens_per_s']:,.0f} tok/s / transformers {b['tokens_per_s']:,.0f} tok/s = "
          f"{a['tokens_per_s'] / b['tokens_per_s']:.2f}x ({a['preset']}, {a['samples']} x {a['new_tokens']} new "
          f"tokens; transformers at {b['rows']} rows; random weights, not shared between the sides: with EOS "
          "ignored and equal shapes the work per token is the same)")


def main(argv):
    del argv
    if _COMPARE.value:
        return compare(_COMPARE.value)
    result = run_mathjax() if _SIDE.value == "mathjax" else run_transformers()
    print(f"{result['side']}: {result['tokens_per_s']:,.0f} tokens/s ({result['samples']} x {result['new_tokens']} "
          f"new tokens in {result['seconds']:.2f}s at {result['rows']} rows; first run {result['first_run_s']:.1f}s, "
          f"model init {result['init_s']:.1f}s); "
          f"roofline {result['roofline_tokens_per_s']:,.0f} tokens/s ({result['step_gb']:.1f} GB/step at "
          f"{result['bandwidth'] / 1e12:.1f} TB/s) -> {result['roofline_fraction']:.1%}; "
          f"{result['tflops_achieved']:.1f} TFLOP/s", flush=True)
    if _JSON_OUT.value:
        with open(_JSON_OUT.value, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    app.run(main)
