"""The sampler's default batch: rows that fit the memory left after the weights, per data shard."""

import pytest

from mathjax.model.config import get_preset
from mathjax.sample.batch_size import GiB, auto_batch_size

LLAMA2_7B = get_preset("llama2_7b")


def test_rows_fill_the_memory_left_after_the_weights():
    # data:2,tensor:4: 32 KV heads -> 8 per device; bf16 K+V over 32 layers = 2*32*8*128*2 = 131072 B/token.
    # A row: 512 new tokens + its share of two 128-token prompt buffers over 4 rows (64) = 576 tokens
    # = 75,497,472 B, plus 3 float32 vocab vectors (384,000 B) = 75,881,472 B.
    # Budget: 24 GiB * 0.9 - 1 GiB headroom - 2 GiB weights = 18.6 GiB -> 263 rows -> 256 (power of two).
    choice = auto_batch_size(LLAMA2_7B, {"data": 2, "fsdp": 1, "tensor": 4}, weight_bytes=2 * GiB,
                             memory=24 * GiB, max_new_tokens=512, prompt_len=129, num_samples=256,
                             kv_dtype="bfloat16")
    assert choice.batch_size == 512  # 256 rows on each of the 2 data shards
    assert "256 rows per data shard x 2" in choice.reason


def test_more_memory_more_rows_up_to_the_cap_and_cpu_default():
    small = auto_batch_size(LLAMA2_7B, {"tensor": 8}, 2 * GiB, 24 * GiB, 512, 129, 256, "bfloat16")
    big = auto_batch_size(LLAMA2_7B, {"tensor": 8}, 2 * GiB, 141 * GiB, 512, 129, 256, "bfloat16")
    assert small.batch_size < big.batch_size == 1024
    cpu = auto_batch_size(LLAMA2_7B, {"data": 8}, 2 * GiB, None, 512, 129, 256, "float32")
    assert cpu.batch_size == 8 * 256


def test_weights_that_fill_the_device_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="shard the model over more devices"):
        auto_batch_size(LLAMA2_7B, {"data": 1}, weight_bytes=15 * GiB, memory=16 * GiB, max_new_tokens=512,
                        prompt_len=100, num_samples=256, kv_dtype="bfloat16")
