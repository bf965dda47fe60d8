"""What one decode step sends, read from the compiled loop on 8 CPU devices.

Per step, only what the sharding needs: on `tensor` meshes the per-layer
reductions of the attention output and the MLP (attention stays on each
device's own heads, the KV cache is never gathered); on `data` meshes
nothing but the loop's stopping test (cache writes, the output buffer and
per-slot bookkeeping stay local).
"""

import pytest

from mathjax.model.config import get_preset
from mathjax.sample.fit_check import sample_fit_check

LAYERS = 2


def _decode(mesh: str):
    config = get_preset("llama2_7b", num_layers=LAYERS, hidden_size=512, intermediate_size=1024, num_heads=8,
                        num_kv_heads=8, vocab_size=1024, dtype="float32", param_dtype="float32")
    _, decode = sample_fit_check(config, mesh, batch_size=32, num_samples=4, prompt_len=64, max_new_tokens=64,
                                 rows_per_prompt=4)
    kv_bytes_per_device = decode.memory["KV cache"]
    return decode.collectives, kv_bytes_per_device


@pytest.mark.parametrize("mesh", ["tensor:8", "data:2,tensor:4"])
def test_tensor_parallel_decode_keeps_attention_local(mesh):
    stats, kv = _decode(mesh)
    print(mesh, stats.lines())
    assert stats.dynamic_loops == 1  # the decode loop, counted as one step
    # Before: q, K, V and the scores of every head gathered on every layer (megabytes here).
    assert stats.bytes["all-gather"] <= 2048  # at most the top-p/top-k bookkeeping over the split vocabulary
    assert stats.counts["all-to-all"] == 0 and stats.bytes["collective-permute"] <= 1024
    # Attention output and MLP down projection: one reduction each per layer, plus the head/sampling ones.
    assert 2 * LAYERS <= stats.counts["all-reduce"] <= 2 * LAYERS + 8
    assert stats.total_bytes < kv / 4


def test_data_parallel_decode_is_local():
    stats, _ = _decode("data:8")
    print(stats.lines())
    # Before: ~4 all-gathers per layer per step (cache scatter rows and indices), plus the output buffer
    # and prefix lengths.
    assert stats.counts["all-gather"] == 0 and stats.counts["all-to-all"] == 0
    assert stats.counts["collective-permute"] == 0
    assert stats.bytes["all-reduce"] <= 64  # the loop's "any row still active?" test


def test_slots_split_over_the_data_axis_or_a_warning_says_why(caplog):
    """batch_size=96 on data:8: rows per prompt are chosen so the slots divide over 8 devices."""
    from mathjax.parallel.mesh import make_mesh
    from mathjax.sample.sampler import Sampler

    probe = Sampler.__new__(Sampler)
    probe.mesh, probe.rows_per_prompt = make_mesh("data:8"), None
    probe.batch_size = 96
    r = probe._rows_for(256)
    assert 96 % r == 0 and (96 // r) % 8 == 0
    probe.batch_size = 100  # no split over 8 exists: the batch is replicated, and the log says so
    with caplog.at_level("WARNING"):
        probe._rows_for(256)
    assert "do not split over the 8 data-parallel devices" in caplog.text
