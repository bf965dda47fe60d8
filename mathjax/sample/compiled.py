"""The sampler's compiled functions, shared across Samplers and runs in one process.

A sampling job often makes several runs with the same model: the synthesis
stages, RFT rounds, a runner restarted in the same process. Each builds a new
``Sampler``; keyed here by model config, mesh, cache layout, sampling rules and
stopping settings, they all reuse the same jitted prefill/decode/cache-init
functions, so only the first run compiles. The prompt capacity of the cache
is also kept per shape: a later run with shorter prompts uses the larger
layout already compiled instead of compiling a smaller one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from jax.sharding import Mesh

from mathjax.model.config import ModelConfig
from mathjax.sample.cache import CacheLayout, make_init_cache_fn
from mathjax.sample.decode import make_decode_fn
from mathjax.sample.prefill import make_prefill_fn
from mathjax.sample.sampling import SamplingRules


@dataclasses.dataclass(eq=False)
class CompiledFunctions:
    """The jitted functions of one (model, mesh, layout, rules) combination."""

    init_cache: Any
    prefill: Any
    decode: Any

    def compile_counts(self) -> dict[str, int]:
        """Executables compiled so far: prefill (per prompt bucket), decode (per tail window)."""
        return {"prefill": self.prefill._cache_size(), "decode": self.decode._cache_size()}


_FUNCTIONS: dict[tuple, CompiledFunctions] = {}
_CAPACITY: dict[tuple, int] = {}


def _config_key(config: ModelConfig) -> str:
    # ModelConfig is frozen but may hold lists (eos_token_id), so it is not
    # hashable; its repr names every field.
    return repr(config)


def prefix_capacity(config: ModelConfig, mesh: Mesh, layout: CacheLayout) -> CacheLayout:
    """``layout`` with the largest prompt capacity used so far for its other shapes."""
    key = (_config_key(config), mesh, dataclasses.replace(layout, prefix_len=0))
    size = max(_CAPACITY.get(key, 0), layout.prefix_len)
    _CAPACITY[key] = size
    return dataclasses.replace(layout, prefix_len=size)


def compiled_functions(config: ModelConfig, mesh: Mesh, layout: CacheLayout, rules: SamplingRules,
                       eos_ids: tuple[int, ...], ignore_eos: bool, steps: int,
                       logprobs: bool = False) -> CompiledFunctions:
    """The shared functions for these settings (built on first use)."""
    key = (_config_key(config), mesh, layout, rules, tuple(eos_ids), ignore_eos, steps, logprobs)
    if key not in _FUNCTIONS:
        _FUNCTIONS[key] = CompiledFunctions(
            init_cache=make_init_cache_fn(mesh, layout),
            prefill=make_prefill_fn(config, mesh, layout),
            decode=make_decode_fn(config, mesh, layout, rules, eos_ids, ignore_eos, steps, logprobs),
        )
    return _FUNCTIONS[key]


def total_compile_counts() -> dict[str, int]:
    """Executables compiled by every sampler in this process so far."""
    counts = {"prefill": 0, "decode": 0}
    for fns in _FUNCTIONS.values():
        for name, n in fns.compile_counts().items():
            counts[name] += n
    return counts
