"""Logits parity against transformers (PyTorch, CPU, float32) for every architecture variant."""

import numpy as np
import pytest

import mathjax
from hf_fixtures import VARIANTS, hf_logits, make_hf_model

TOL = 1e-4


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_logits_match_transformers(variant, tmp_path, rng):
    hf_model = make_hf_model(variant)
    hf_model.save_pretrained(tmp_path)
    tokens = rng.integers(0, hf_model.config.vocab_size, size=(2, 40))
    ours = mathjax.load(str(tmp_path)).logits(tokens)
    ref = hf_logits(hf_model, tokens)
    assert ours.dtype == np.float32 and ours.shape == ref.shape
    assert np.abs(ours - ref).max() < TOL


def test_config_fields_imported(tmp_path):
    hf_model = make_hf_model("llama3_scaled")
    hf_model.save_pretrained(tmp_path)
    config = mathjax.load(str(tmp_path)).config
    assert config.rope_theta == 1e6
    assert config.rope_scaling["rope_type"] == "llama3" and config.rope_scaling["factor"] == 8.0
    assert config.num_kv_heads == 2 and config.num_heads == 4


def test_qwen2_bias_and_tied(tmp_path):
    hf_model = make_hf_model("qwen2")
    hf_model.save_pretrained(tmp_path)
    model = mathjax.load(str(tmp_path))
    assert model.config.attention_bias and model.config.tie_word_embeddings
    assert "lm_head" not in model.params["head"]
    assert "q_bias" in model.params["layers"]["attn"]
