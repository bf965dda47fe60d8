"""Builds the demo's miniature "common base model": corpus -> tokenizer -> pretraining -> HF dir.

The demo (``scripts/demo.py``) starts its SFT from this model, shipped in the
repository under ``assets/demo_base`` (weights in bfloat16, about 6.5 MB), as its
stand-in for LLaMA-2. ``scripts/pretrain_base.py`` rebuilds it; the corpus is
:mod:`mathjax.data.base_corpus` (no question/answer format, no final-answer
lines, training-split problems only).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from typing import Callable

from mathjax.experiments.demo import ROOT, load_config_file

DEFAULT_OUTPUT = os.path.join(ROOT, "assets", "demo_base")
# The SFT format's fixed words, so the tokenizer has pieces for them although the corpus has none.
_FORMAT_LINES = ("Question: How many are there?", "Answer: ", "The answer is: 12.", "The answer is: 305.")


def build_base(output_dir: str = DEFAULT_OUTPUT, workdir: str = "/tmp/demo_base_work", *, num_docs: int = 160_000,
               steps: int | None = None, seed: int = 0, max_number: int = 40, vocab_size: int = 512,
               progress: bool = True, log: Callable[[str], None] = print) -> dict:
    """Pretrains the base model and writes it (HF dir, bfloat16, with tokenizer) to ``output_dir``.

    Resumable: the corpus and tokenizer are reused when present, and the
    trainer resumes from its last checkpoint in ``workdir``. Returns a summary
    (also written to ``output_dir/pretraining.json``).
    """
    import mathjax
    from mathjax.data import base_corpus, procedural
    from mathjax.data.tokenizer import train_tokenizer
    from mathjax.train import trainer

    os.makedirs(workdir, exist_ok=True)
    corpus = os.path.join(workdir, "corpus.jsonl")
    start = time.perf_counter()
    if not os.path.exists(corpus):
        procedural.write_jsonl(base_corpus.generate_corpus(num_docs, seed=seed, max_number=max_number), corpus)
    tok_dir = os.path.join(workdir, "tokenizer")
    if not os.path.exists(os.path.join(tok_dir, "tokenizer_config.json")):
        train_tokenizer([corpus, *_FORMAT_LINES], tok_dir, vocab_size=vocab_size, fields=("text",))
    log(f"corpus {num_docs} documents and tokenizer in {time.perf_counter() - start:.0f}s")

    config = load_config_file(os.path.join(ROOT, "configs", "demo_base.py"))
    config.data.train_files = corpus
    config.tokenizer = tok_dir
    config.seed = seed
    if steps:
        config.steps = steps
    train_dir = os.path.join(workdir, "train")
    t = time.perf_counter()
    result = trainer.train(config, train_dir, progress=progress)
    if result.preempted:
        raise SystemExit(f"pretraining stopped by SIGTERM at step {result.step}; run again to resume")
    train_seconds = time.perf_counter() - t

    model = mathjax.load(train_dir)
    tmp = f"{output_dir}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_hf(tmp, dtype="bfloat16")
    summary = {
        "num_docs": num_docs, "seed": seed, "max_number": max_number, "vocab_size": model.config.vocab_size,
        "params": model.config.num_params(), "steps": result.step, "batch": f"{config.batch_size}x{config.seq_len}",
        "final_loss": result.last_metrics.get("loss"), "train_seconds": round(train_seconds, 1),
        "host_cores": os.cpu_count(),
    }
    with open(os.path.join(tmp, "pretraining.json"), "w") as f:
        json.dump(summary, f, indent=2)
    if os.path.exists(output_dir):
        shutil.rmtree(output_dir)
    os.replace(tmp, output_dir)
    log(f"base model written to {output_dir}: {json.dumps(summary)}")
    return summary
