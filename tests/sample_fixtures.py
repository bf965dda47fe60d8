"""A tiny random HF model dir with its own SentencePiece tokenizer (nothing downloaded), for sampler tests."""

from __future__ import annotations

import pathlib

EXTRA_TEXTS = ["The answer is: 42.", "USER: ASSISTANT: step by step 0123456789 + - * / ="]


def tiny_model_dir(root: pathlib.Path, texts: list[str], seed: int = 3, **overrides) -> str:
    """Trains a 400-piece tokenizer on ``texts`` (+ a few fixed lines), saves a random tiny model; returns its dir.

    ``overrides`` change the model's shape (defaults: 2 layers, width 64, 4 heads, 2 KV heads).
    """
    import mathjax
    from mathjax.data.tokenizer import train_tokenizer
    from mathjax.model.config import get_preset

    tok = train_tokenizer((list(texts) + EXTRA_TEXTS) * 20, root / "tok", vocab_size=400)
    shape = dict(vocab_size=416, hidden_size=64, intermediate_size=96, num_layers=2, num_heads=4, num_kv_heads=2,
                 initializer_range=0.2)
    config = get_preset("tiny", **{**shape, **overrides}, eos_token_id=tok.eos_id, bos_token_id=tok.bos_id)
    model = mathjax.from_random(config, seed=seed)
    model.tokenizer_path = str(root / "tok")
    model.save_hf(str(root / "model"))
    return str(root / "model")
