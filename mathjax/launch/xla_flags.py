"""Compiler flags worth setting for sharded training, with what each one does.

Only flags checked to exist: the GPU ones parse with jaxlib 0.10.2 (an unknown
name in ``XLA_FLAGS`` aborts at start-up, so a removed flag fails loudly), the
TPU ones are present in libtpu 0.0.52 and are the set MaxText ships for
FSDP-style training. Their benefit depends on the model and the slice: measure
(tokens/s in the training log) with and without.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Flag:
    name: str
    value: str
    what: str

    def __str__(self) -> str:
        return f"--{self.name}={self.value}"


# LIBTPU_INIT_ARGS: read by libtpu when JAX initialises the TPU backend.
TPU_COLLECTIVE_OVERLAP = (
    Flag("xla_tpu_enable_async_collective_fusion", "true",
         "run collectives asynchronously, fused with independent compute, so they overlap matmuls"),
    Flag("xla_tpu_enable_async_collective_fusion_fuse_all_gather", "true",
         "include all-gathers (FSDP's per-layer weight gathers) in those async fusions"),
    Flag("xla_tpu_enable_async_collective_fusion_multiple_steps", "true",
         "let one async collective overlap several compute steps, not only the next one"),
    Flag("xla_tpu_overlap_compute_collective_tc", "true",
         "overlap compute and communication on the TensorCore"),
    Flag("xla_enable_async_all_gather", "true",
         "schedule all-gathers as async start/done pairs so the scheduler can hide them"),
)
TPU_DATA_PARALLEL = (
    Flag("xla_tpu_enable_data_parallel_all_reduce_opt", "true",
         "optimise the gradient all-reduce over the data axis (matters when data > 1)"),
    Flag("xla_tpu_data_parallel_opt_different_sized_ops", "true",
         "apply that optimisation to gradients of different sizes too"),
)

# XLA_FLAGS on GPU.
GPU_DEFAULT = (
    Flag("xla_gpu_enable_latency_hiding_scheduler", "true",
         "schedule collectives early and overlap them with compute (NVIDIA's JAX containers set it)"),
)
GPU_OPTIONAL = (
    Flag("xla_gpu_enable_triton_gemm", "false",
         "use cuBLAS/cuBLASLt for matmuls instead of Triton-generated kernels; try both"),
    Flag("xla_gpu_enable_pipelined_all_gather", "true",
         "in the scanned layer loop, issue the next layer's FSDP all-gather during this layer"),
    Flag("xla_gpu_enable_pipelined_reduce_scatter", "true",
         "same for the gradient reduce-scatters of the backward loop"),
    Flag("xla_gpu_enable_while_loop_double_buffering", "true",
         "double-buffer loop-carried values so pipelined collectives have room to overlap"),
    Flag("xla_gpu_all_gather_combine_threshold_bytes", "134217728",
         "combine small all-gathers up to 128 MiB into one NCCL call"),
    Flag("xla_gpu_reduce_scatter_combine_threshold_bytes", "134217728",
         "combine small reduce-scatters up to 128 MiB into one NCCL call"),
)


def join(flags) -> str:
    """``--a=1 --b=2``: the value for ``LIBTPU_INIT_ARGS`` or ``XLA_FLAGS``."""
    return " ".join(str(flag) for flag in flags)
