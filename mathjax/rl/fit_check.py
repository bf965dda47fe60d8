"""Fit check of the RL programs themselves: the GRPO update and the log-prob recomputation.

``scripts/train_rl.py --dry_run`` compiles what a step runs on abstract
params, optimizer state and batch (nothing is allocated), on this host's
devices, emulated CPU devices, or a whole Cloud TPU slice with the TPU compiler
(``topology``): the minibatch update (``mathjax.rl.step.make_rl_step``: policy
loss, entropy, optional KL, the optimizer) and the trainer's log-prob pass over
the whole rollout batch (``make_logprob_fn``), each with the per-device memory,
FLOPs and collectives the compiler reports. The update is compiled at the full
minibatch (the largest of ``mathjax.rl.compact``'s row buckets) and, as the
trainer calls it, with the loss denominators when zero-advantage rows are
skipped; each smaller bucket is the same program on fewer rows.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from mathjax.rl import compact
from mathjax.rl.step import BATCH_KEYS, is_on_policy, make_logprob_fn, make_rl_step, row_sharding
from mathjax.train.fit_check import (FitReport, _compile, _peak, collectives_of, cpu_caveats, device_memory_limit,
                                     fit_target, matmul_flops, mesh_platform, per_device_bytes, refused,
                                     train_model_config)
from mathjax.train.optimizer import make_optimizer
from mathjax.train.state import abstract_state, replicated

_INT_KEYS = ("tokens", "targets")


def _batch(mesh: Mesh, rows: int, seq_len: int, token_advantages: bool = False) -> dict[str, jax.ShapeDtypeStruct]:
    out = {}
    per_sample = ("weight",) if token_advantages else ("advantages", "weight")
    for key in BATCH_KEYS:
        shape = (rows,) if key in per_sample else (rows, seq_len)  # per sample / per token
        dtype = jnp.int32 if key in _INT_KEYS else jnp.float32
        out[key] = jax.ShapeDtypeStruct(shape, dtype, sharding=row_sharding(mesh, shape))
    return out


def rl_fit_check(config, mesh: Mesh | str | None = None, device_memory: int | None = None,
                 topology: str | None = None) -> list[FitReport]:
    """Compiles the RL update and log-prob programs of ``config`` (``configs/*_grpo.py``).

    Args:
      config: an RL config; data, tokenizer and ``init_from`` are not read
        (``init_from``'s ``config.json`` is, for the shapes, when it is a local model dir).
      mesh: a Mesh or spec; default ``config.mesh`` over all devices (of ``topology`` when given).
      device_memory: bytes per device to compare against (default: the backend's, or the chip's HBM).
      topology: a Cloud TPU accelerator type (``v4-32``, ``v5litepod-16``, ...): the TPU compiler via libtpu.

    Returns:
      Two reports: the minibatch update and the rollout batch's log-prob pass.
    """
    if isinstance(mesh, Mesh):
        device_memory = device_memory if device_memory is not None else device_memory_limit()
    else:
        mesh, device_memory = fit_target(config.mesh if mesh is None else mesh, topology, device_memory)
    rl = config.rl
    model = train_model_config(config)
    rows = int(rl.prompts_per_step) * int(rl.group_size)
    updates = int(rl.updates_per_rollout)
    if rows % updates:
        raise ValueError(f"prompts_per_step x group_size = {rows} does not split into {updates} minibatches")
    seq = int(config.seq_len)
    optimizer, schedule = make_optimizer(config.optimizer, model, max(1, int(config.steps)) * updates)
    state = abstract_state(model, mesh, optimizer)
    where = f" on {topology}" if topology else ""
    head = [f"model {config.model} ({model.num_params() / 1e9:.2f}B params), compute {model.dtype}, "
            f"remat {model.remat_policy}"] + cpu_caveats(model.dtype, None, mesh)
    reports = []

    minibatch = _batch(mesh, rows // updates, seq, bool(rl.get("process_coef", 0.0)))
    if compact.applies(rl):  # the trainer then hands the update the full minibatch's loss denominators
        minibatch.update({k: jax.ShapeDtypeStruct((), jnp.float32, sharding=replicated(mesh))
                          for k in compact.DENOMINATORS})
    step = make_rl_step(model, optimizer, schedule, mesh, rl, int(rl.max_new_tokens), on_policy=is_on_policy(rl))
    traced, compiled, lower_s, compile_s = _compile(step, state, minibatch)
    peak, temp = _peak(compiled)
    flops, _ = matmul_flops(traced.jaxpr)
    reports.append(FitReport(
        title=f"GRPO update {config.model}{where}", mesh=dict(mesh.shape), platform=mesh_platform(mesh),
        memory={f"params ({model.param_dtype})": per_device_bytes(state.params),
                "optimizer state": per_device_bytes(state.opt_state), "minibatch": per_device_bytes(minibatch),
                "activations + temporaries": temp},
        peak_bytes=peak, flops_per_step=flops, flops_per_device=flops / mesh.size,
        flops_note="per minibatch update (counted, incl. remat)", xla_flops_per_device=None,
        model_flops_per_step=model.flops_per_token(seq) * (rows // updates) * seq,
        lower_seconds=lower_s, compile_seconds=compile_s, device_memory=device_memory,
        details=head + [f"minibatch {rows // updates} of {rows} rollout rows x {seq} tokens "
                        f"({updates} updates per rollout), loss {rl.loss_aggregation}, kl_coef {rl.kl_coef}"],
        collectives=collectives_of(compiled), compiler_refused=refused(compiled)))

    tokens = jax.ShapeDtypeStruct((rows, seq), jnp.int32, sharding=row_sharding(mesh, (rows, seq)))
    logprob = make_logprob_fn(model, mesh, float(rl.temperature or 1.0))
    traced, compiled, lower_s, compile_s = _compile(logprob, state.params, tokens, tokens)
    peak, temp = _peak(compiled)
    flops, _ = matmul_flops(traced.jaxpr)
    reports.append(FitReport(
        title=f"GRPO log-probs {config.model}{where}", mesh=dict(mesh.shape), platform=mesh_platform(mesh),
        memory={f"params ({model.param_dtype})": per_device_bytes(state.params),
                "optimizer state (resident)": per_device_bytes(state.opt_state),
                "rollout batch": 2 * per_device_bytes(tokens), "activations + temporaries": temp},
        peak_bytes=peak + per_device_bytes(state.opt_state), flops_per_step=flops, flops_per_device=flops / mesh.size,
        flops_note="per rollout batch (old log-probs with several updates per rollout; reference with KL)", xla_flops_per_device=None,
        model_flops_per_step=None, lower_seconds=lower_s, compile_seconds=compile_s, device_memory=device_memory,
        details=head + [f"{rows} rows x {seq} tokens; the optimizer state stays resident meanwhile, so it is "
                        "counted in the peak"],
        collectives=collectives_of(compiled), compiler_refused=refused(compiled)))
    return reports
