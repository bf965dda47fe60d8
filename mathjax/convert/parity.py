"""Logits parity between a Hugging Face model (PyTorch) and its mathjax counterpart."""

from __future__ import annotations

import numpy as np


def max_logit_diff(hf_dir: str, checkpoint_dir: str | None = None, batch: int = 2, length: int = 32, seed: int = 0,
                   mesh=None) -> float:
    """Max |logit difference| on random tokens between transformers (float32, CPU) and mathjax.

    Compares the HF model in ``hf_dir`` with ``checkpoint_dir`` (a mathjax
    checkpoint) or, if not given, with mathjax's own import of ``hf_dir``.
    Needs torch.
    """
    try:
        import torch
        import transformers
    except ImportError as e:  # pragma: no cover
        raise RuntimeError("check_parity needs torch and transformers: pip install torch") from e
    import mathjax

    ours = mathjax.load(checkpoint_dir or hf_dir, dtype="float32", mesh=mesh)
    ref_model = transformers.AutoModelForCausalLM.from_pretrained(
        hf_dir, dtype=torch.float32, attn_implementation="eager"
    ).eval()
    vocab = min(ours.config.vocab_size, ref_model.config.vocab_size)
    tokens = np.random.default_rng(seed).integers(0, vocab, size=(batch, length))
    with torch.no_grad():
        ref = ref_model(torch.as_tensor(tokens)).logits.float().numpy()
    return float(np.abs(ours.logits(tokens) - ref).max())
