"""Small data, tokenizer and configs for the SFT data and trainer tests (no downloads, no reference data sets)."""

from __future__ import annotations

import io
import json
import os
import random

import ml_collections

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def arithmetic_records(n: int, seed: int = 0, start_id: int = 0) -> list[dict]:
    """``{"id", "question", "answer", "final_answer"}`` records: two-step additions and products."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b, c = rng.randint(1, 20), rng.randint(1, 20), rng.randint(1, 9)
        s = a + b
        extra = ("", " He is happy.", " Then he rests for a day.")[i % 3]
        out.append({
            "id": f"arith-{start_id + i}",
            "question": f"Tom has {a} apples and gets {b} more.{extra} He has {c} bags of each. How many?",
            "answer": f"{a} + {b} = {s}.\n{s} * {c} = {s * c}.\nThe answer is: {s * c}.",
            "final_answer": str(s * c),
        })
    return out


def write_jsonl(path: str, records, raw_lines: dict[int, str] | None = None) -> str:
    """Writes records; ``raw_lines`` replaces given (0-based) lines by raw text (for bad-input tests)."""
    with open(path, "w", encoding="utf-8") as f:
        for i, rec in enumerate(records):
            f.write((raw_lines or {}).get(i, json.dumps(rec)) + "\n")
    return str(path)


def make_tokenizer(directory: str, vocab_size: int = 400) -> str:
    """A LLaMA-style SentencePiece model (unk 0, bos 1, eos 2, pad 3) trained on arithmetic text."""
    import sentencepiece as spm

    from mathjax.data.templates import get_template

    lines = []
    for rec in arithmetic_records(300, seed=123):
        lines.append(get_template("plain").format_prompt(rec["question"]))
        lines.extend(rec["answer"].split("\n"))
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, model_type="bpe", vocab_size=vocab_size,
        hard_vocab_limit=False, character_coverage=1.0, byte_fallback=True, split_digits=True,
        add_dummy_prefix=False, remove_extra_whitespaces=False, normalization_rule_name="identity",
        unk_id=0, bos_id=1, eos_id=2, pad_id=3, minloglevel=2, num_threads=1)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "tok.model")
    with open(path, "wb") as f:
        f.write(model.getvalue())
    return path


# A model small enough to compile and step in well under a second on 2 cores.
TINY_MODEL = {"hidden_size": 64, "intermediate_size": 128, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2}


def tiny_config(train_files: str, tokenizer: str, **overrides) -> ml_collections.ConfigDict:
    """configs/tiny.py shrunk for tests; ``overrides`` use dotted keys (``optimizer.lr``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("tiny_config", os.path.join(REPO, "configs", "tiny.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    c = module.get_config()
    for key, value in TINY_MODEL.items():
        c.model_overrides[key] = value
    c.data.train_files = train_files
    c.tokenizer = tokenizer
    c.seq_len = 128
    c.batch_size = 8
    c.steps = 6
    c.checkpoint_every = 3
    c.optimizer.lr = 3e-3
    c.tensorboard = False
    c.mesh = "data:2,fsdp:2,tensor:2"
    for key, value in overrides.items():
        set_key(c, key, value)
    return c


def set_key(config, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    node = config
    for p in parents:
        node = node[p]
    node[leaf] = value


def read_metrics(workdir: str) -> list[dict]:
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def save_copy_task_models(root: str, seeds: dict[str, int], answer_line: str, env: dict) -> None:
    """Tiny random models (2 layers, width 64) saved as HF dirs ``root/NAME`` for ``{NAME: seed}``, sharing
    a tokenizer (``root/tok``) trained on "copy the number" lines plus ``answer_line`` (20 times), so the
    RL tests' answers tokenize to a few ids. Built in a subprocess with ``env`` (its own JAX devices)."""
    import subprocess
    import sys

    script = f"""
import os
import mathjax
from mathjax.data.tokenizer import train_tokenizer
from mathjax.model.config import get_preset
root = {root!r}
texts = [f"Question: Copy the number {{i}}.\\nAnswer: {{i % 10}}" for i in range(200)] + [{answer_line!r}] * 20
tok = train_tokenizer(texts, os.path.join(root, "tok"), vocab_size=300)
config = get_preset("tiny", vocab_size=320, hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4,
                    num_kv_heads=2, eos_token_id=tok.eos_id, bos_token_id=tok.bos_id, max_position_embeddings=128)
for name, seed in {dict(seeds)!r}.items():
    model = mathjax.from_random(config, seed=seed)
    model.tokenizer_path = os.path.join(root, "tok")
    model.save_hf(os.path.join(root, name))
"""
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
