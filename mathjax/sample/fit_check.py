"""Fit check of the sampler (``scripts/sample.py --dry_run``): prefill and decode compiled on abstract inputs.

Params and the KV cache are ``jax.ShapeDtypeStruct`` with their target
shardings; nothing is allocated. The mesh is this host's devices (emulated CPU
devices with ``--dry_run_devices``) or a whole Cloud TPU slice
(``--dry_run_topology``, compiled by the TPU compiler), and each report lists
the decode step's collectives from the compiled HLO. Shared counting and the
report format live in :mod:`mathjax.train.fit_check`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mathjax.model import llama
from mathjax.model.config import ModelConfig, get_preset
from mathjax.model.partition import layer_param_shardings
from mathjax.parallel.hlo import format_bytes
from mathjax.parallel.mesh import make_mesh
from mathjax.train.fit_check import (
    FitReport, _compile, _peak, _xla_flops, collectives_of, cpu_caveats, device_memory_limit, fit_target,
    matmul_flops, mesh_platform, per_device_bytes, read_model_dir, refused,
)


def _with_shardings(shapes: Any, shardings: Any) -> Any:
    return jax.tree_util.tree_map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh), shapes, shardings)


def sample_model_config(model: str, dtype: str = "float32") -> ModelConfig:
    """A local model dir (HF, mathjax checkpoint, training workdir; config only) or a preset name."""
    base = read_model_dir(model) or get_preset(model)
    return base.replace(dtype=dtype, param_dtype=dtype)


def abstract_layer_params(config: ModelConfig, mesh: Mesh) -> llama.Params:
    """Per-layer sharded ShapeDtypeStructs, as ``llama.unstack_layers`` gives the sampler."""
    shapes = jax.eval_shape(llama.unstack_layers, llama.abstract_params(config))
    return _with_shardings(shapes, layer_param_shardings(config, mesh))


def sample_fit_check(
    config: ModelConfig, mesh: Mesh | str, batch_size: int = 256, num_samples: int = 256,
    prompt_len: int = 512, max_new_tokens: int = 512, rows_per_prompt: int | None = None,
    kv_dtype: str | None = None, rules: Any = None, prefill_batch: int = 4, first_segment: int = 64,
    device_memory: int | None = None, topology: str | None = None, prefix_buffers: int = 2,
    steps_per_call: int = 16,
) -> list[FitReport]:
    """Compiles the sampler's prefill and full-window decode loop on abstract params and cache.

    Shapes follow :class:`mathjax.sample.Sampler`: ``batch_size`` rows as
    prompt slots x rows per slot, prompts padded to their power-of-two bucket.
    ``mesh`` is a Mesh, or a spec over this process's devices, or over all
    devices of ``topology`` (a Cloud TPU accelerator type such as ``v4-32``:
    one model spanning the slice's hosts, compiled by the TPU compiler).
    Returns ``[prefill report, decode report]`` (decode FLOPs and collectives: one step).
    """
    from mathjax.sample import cache as cache_lib
    from mathjax.sample.decode import RowState, make_decode_fn, row_state_shardings
    from mathjax.sample.prefill import bucket_length, make_prefill_fn
    from mathjax.sample.sampler import Sampler
    from mathjax.sample.sampling import SamplingRules

    if topology and not isinstance(mesh, Mesh):
        mesh, device_memory = fit_target(mesh, topology, device_memory)
    else:
        mesh = mesh if isinstance(mesh, Mesh) else make_mesh(mesh, devices=jax.local_devices())
        device_memory = device_memory if device_memory is not None else device_memory_limit()
    rules = rules or SamplingRules(temperature=0.7)
    params = abstract_layer_params(config, mesh)
    batch_note = []
    if not batch_size:  # the sampler script's default: what the memory holds after the weights
        from mathjax.sample.batch_size import auto_batch_size

        choice = auto_batch_size(config, dict(mesh.shape), per_device_bytes(params), device_memory, max_new_tokens,
                                 prompt_len, num_samples, kv_dtype or config.dtype)
        batch_size, batch_note = choice.batch_size, [f"batch size (auto): {choice.reason}"]
    # Reuse the sampler's own choice of rows per prompt slot (it reads only these fields).
    probe = Sampler.__new__(Sampler)
    probe.batch_size, probe.rows_per_prompt, probe.mesh = batch_size, rows_per_prompt, mesh
    r = probe._rows_for(num_samples)
    layout = cache_lib.make_layout(config, batch_size // r, r, bucket_length(prompt_len - 1), max_new_tokens,
                                   kv_dtype, first_segment, prefix_buffers)
    cache_shapes = jax.eval_shape(lambda: cache_lib.init_cache(mesh, layout))  # traced, never run
    cache = _with_shardings(cache_shapes, cache_lib.cache_shardings(mesh, layout))
    platform = mesh_platform(mesh)
    common = [
        f"model {config.num_params() / 1e9:.2f}B params ({config.param_dtype}), KV cache {layout.dtype}",
        f"batch {layout.batch} rows = {layout.groups} prompt slots ({layout.buffers} prompt buffers each) x {r} rows; "
        f"prompt bucket {layout.prefix_len}, "
        f"{max_new_tokens} new tokens in segments {list(layout.segments)}",
    ] + batch_note + cpu_caveats(config.dtype, mesh=mesh)
    where = f" on {topology}" if topology else ""
    reports = []

    tokens = jax.ShapeDtypeStruct((prefill_batch, layout.prefix_len), jnp.int32)
    slots = jax.ShapeDtypeStruct((prefill_batch,), jnp.int32)
    traced, compiled, lower_s, compile_s = _compile(make_prefill_fn(config, mesh, layout), params, cache, tokens, slots)
    peak, temp = _peak(compiled)
    reports.append(FitReport(
        title=f"sample prefill{where} ({prefill_batch} prompts x {layout.prefix_len} tokens)", mesh=dict(mesh.shape),
        platform=platform,
        memory={f"params ({config.param_dtype})": per_device_bytes(params), "KV cache": per_device_bytes(cache),
                "activations + temporaries": temp},
        peak_bytes=peak, **_sampler_flops(traced, compiled, mesh), flops_note="per prefill call",
        model_flops_per_step=None, lower_seconds=lower_s,
        compile_seconds=compile_s, device_memory=device_memory, details=common,
        collectives=collectives_of(compiled), compiler_refused=refused(compiled),
    ))

    b = layout.batch
    sh = row_state_shardings(mesh, layout)
    state = RowState(
        tokens=jax.ShapeDtypeStruct((b,), jnp.int32, sharding=sh.tokens),
        lengths=jax.ShapeDtypeStruct((b,), jnp.int32, sharding=sh.lengths),
        active=jax.ShapeDtypeStruct((b,), jnp.bool_, sharding=sh.active),
        finish=jax.ShapeDtypeStruct((b,), jnp.int32, sharding=sh.finish),
        question_hash=jax.ShapeDtypeStruct((b,), jnp.uint32, sharding=sh.question_hash),
        sample_index=jax.ShapeDtypeStruct((b,), jnp.int32, sharding=sh.sample_index),
        row_buffer=jax.ShapeDtypeStruct((b,), jnp.int32, sharding=sh.row_buffer),
        prefix_lengths=jax.ShapeDtypeStruct((layout.groups, layout.buffers), jnp.int32, sharding=sh.prefix_lengths),
    )
    replicated = NamedSharding(mesh, PartitionSpec())
    seed_data = jax.ShapeDtypeStruct((2,), jnp.uint32, sharding=replicated)
    scalar = jax.ShapeDtypeStruct((), jnp.int32, sharding=replicated)
    eos = tuple(config.eos_token_id) if isinstance(config.eos_token_id, list) else (config.eos_token_id or 2,)
    decode = make_decode_fn(config, mesh, layout, rules, eos, ignore_eos=False, steps=steps_per_call)
    traced, compiled, lower_s, compile_s = _compile(decode, params, cache, state, seed_data, scalar,
                                                    num_segments=len(layout.segments))
    peak, temp = _peak(compiled)
    # Per step: the loop body. Once per call (every `steps_per_call` steps at most):
    # the replicated summary the host reads (row vectors and the new-token window).
    per_call = collectives_of(compiled)
    per_step = collectives_of(compiled, only_dynamic_loops=True)
    if per_call is not None and per_step is not None:
        outside = {k: (per_call.counts[k] - per_step.counts[k], per_call.bytes[k] - per_step.bytes[k])
                   for k in per_call.counts}
        common = common + [
            f"once per decode call (<= {steps_per_call} steps), outside the loop: " + ", ".join(
                f"{k} {n} ops {format_bytes(nb)}" for k, (n, nb) in outside.items() if n)]
    reports.append(FitReport(
        title=f"sample decode{where} ({b} rows, full {layout.tail_len}-token tail window)", mesh=dict(mesh.shape),
        platform=platform,
        memory={f"params ({config.param_dtype})": per_device_bytes(params), "KV cache": per_device_bytes(cache),
                "row state": per_device_bytes(state), "activations + temporaries": temp},
        peak_bytes=peak, **_sampler_flops(traced, compiled, mesh), flops_note="per decode step (one token per row)",
        model_flops_per_step=None, lower_seconds=lower_s,
        compile_seconds=compile_s, device_memory=device_memory, details=common,
        collectives=per_step, compiler_refused=refused(compiled),
    ))
    return reports


def _sampler_flops(traced, compiled, mesh: Mesh) -> dict[str, Any]:
    # The sampler has no scans: XLA's per-device count is right (a while body
    # once = one decode step) and, unlike total / devices, sees replicated work
    # (e.g. a prefill batch smaller than the data axis runs on every device).
    total = matmul_flops(traced.jaxpr)[0]
    xla = _xla_flops(compiled)
    return {"flops_per_step": total, "flops_per_device": xla if xla else total / mesh.size,
            "xla_flops_per_device": None}
