"""Tiny random Hugging Face models (PyTorch, float32) for parity tests; nothing is downloaded."""

from __future__ import annotations

import torch

VARIANTS = {
    # name: (config class name, kwargs)
    "llama_mha": ("LlamaConfig", dict(num_attention_heads=4, num_key_value_heads=4)),
    "llama_gqa": ("LlamaConfig", dict(num_attention_heads=8, num_key_value_heads=2)),
    "llama_head_dim": ("LlamaConfig", dict(num_attention_heads=4, num_key_value_heads=2, head_dim=24)),
    "llama3_scaled": (
        "LlamaConfig",
        dict(
            num_attention_heads=4, num_key_value_heads=2, rope_theta=1e6, max_position_embeddings=256,
            rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                          "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
        ),
    ),
    "llama_bias_tied": ("LlamaConfig", dict(num_attention_heads=4, num_key_value_heads=1, attention_bias=True,
                                            tie_word_embeddings=True)),
    "qwen2": ("Qwen2Config", dict(num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)),
    "mistral": ("MistralConfig", dict(num_attention_heads=4, num_key_value_heads=2, sliding_window=8)),
    # Qwen3: q/k norms; like Qwen3-0.6B, head_dim (32) is not hidden/heads (16) and embeddings are tied.
    "qwen3": ("Qwen3Config", dict(num_attention_heads=4, num_key_value_heads=2, head_dim=32, rope_theta=1e6,
                                  tie_word_embeddings=True)),
    # Untied, head_dim = hidden/heads (Qwen3-8B's layout), plus HF's optional q/k/v/o bias.
    "qwen3_untied_bias": ("Qwen3Config", dict(num_attention_heads=4, num_key_value_heads=1, head_dim=16,
                                              attention_bias=True, tie_word_embeddings=False)),
}


def make_hf_model(variant: str, seed: int = 0, vocab_size: int = 97, hidden_size: int = 64, layers: int = 2):
    import transformers

    cls_name, kwargs = VARIANTS[variant]
    config_cls = getattr(transformers, cls_name)
    config = config_cls(
        vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=96, num_hidden_layers=layers,
        rms_norm_eps=1e-5, **{"max_position_embeddings": 128, **kwargs},
    )
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager").float().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            # Random norms and biases too, so a mapping mistake cannot hide behind ones/zeros.
            if "norm" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
    return model


def hf_logits(model, tokens) -> "np.ndarray":
    with torch.no_grad():
        return model(torch.as_tensor(tokens, dtype=torch.long)).logits.float().numpy()
