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


@pytest.mark.parametrize("variant", ["qwen3", "qwen3_untied_bias"])
def test_qwen3_qk_norm_head_dim_and_tying(variant, tmp_path):
    from mathjax.model import llama

    hf_model = make_hf_model(variant)
    hf_model.save_pretrained(tmp_path)
    model = mathjax.load(str(tmp_path))
    cfg, hf_cfg = model.config, hf_model.config
    assert cfg.model_type == "qwen3" and cfg.qk_norm and cfg.sliding_window is None
    assert cfg.resolved_head_dim == hf_cfg.head_dim
    assert cfg.head_dim == (None if hf_cfg.head_dim * hf_cfg.num_attention_heads == hf_cfg.hidden_size else hf_cfg.head_dim)
    assert cfg.tie_word_embeddings == hf_cfg.tie_word_embeddings
    assert ("lm_head" in model.params["head"]) != cfg.tie_word_embeddings
    attn = model.params["layers"]["attn"]
    assert ("q_bias" in attn) == ("o_bias" in attn) == hf_cfg.attention_bias
    for name in ("q_norm", "k_norm"):
        assert attn[name]["scale"].shape == (cfg.num_layers, cfg.resolved_head_dim)
        # Norm scales: replicated vectors, like every other norm, and never weight-decayed.
        assert llama.logical_axes(cfg)["layers"]["attn"][name]["scale"] == ("layers", "norm")
    np.testing.assert_array_equal(
        np.asarray(attn["q_norm"]["scale"][1]), hf_model.model.layers[1].self_attn.q_norm.weight.detach().numpy())


def test_qwen3_qk_norm_matters(tmp_path):
    """The q/k norms change the logits: a model that skipped them would not pass parity by luck."""
    import torch

    hf_model = make_hf_model("qwen3")
    hf_model.save_pretrained(tmp_path)
    model = mathjax.load(str(tmp_path))
    tokens = np.random.default_rng(2).integers(0, 97, size=(1, 16))
    assert np.abs(model.logits(tokens) - hf_logits(hf_model, tokens)).max() < TOL
    with torch.no_grad():
        for layer in hf_model.model.layers:
            layer.self_attn.q_norm.weight.mul_(2.0)
    assert np.abs(model.logits(tokens) - hf_logits(hf_model, tokens)).max() > 1e-3


@pytest.mark.parametrize("name, billions", [("qwen3_0_6b", 0.6), ("qwen3_1_7b", 1.7), ("qwen3_4b", 4.0), ("qwen3_8b", 8.2)])
def test_qwen3_presets_match_transformers(name, billions):
    """Presets: config.json round trip, and parameter counts equal to transformers' (the model cards' sizes)."""
    import torch
    import transformers

    from mathjax.model.config import ModelConfig, get_preset

    preset = get_preset(name)
    hf_dict = preset.to_hf_dict()
    assert ModelConfig.from_hf_dict(hf_dict) == preset  # config.json round trip
    assert hf_dict["head_dim"] == 128 and hf_dict["rope_theta"] == 1e6 and hf_dict["max_position_embeddings"] == 40960
    hf_config = transformers.Qwen3Config(**{k: v for k, v in hf_dict.items() if k not in ("architectures", "model_type")})
    with torch.device("meta"):
        hf_model = transformers.Qwen3ForCausalLM(hf_config)
    assert preset.num_params() == sum(p.numel() for p in hf_model.parameters())
    assert round(preset.num_params() / 1e9, 1) == billions
