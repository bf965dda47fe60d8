"""SFT data start-up time: tokenizing every record vs. reading the token cache.

Writes ``--records`` procedural GSM8K-style records (``mathjax.data.procedural``)
to a temporary JSONL file, trains a tokenizer on them the way the tests do
(``train_tokenizer``: no downloads), and times ``sft.build_batches`` on a
1-device mesh:

* ``previous``: one record at a time, prompt and response encoded apart (the
  tokenization before joint encoding; different ids, same amount of work);
* ``per-record``: joint encoding, one record per encode call;
* ``cold``: joint encoding in batches (what a start without cache does);
* ``cold+write``: the same plus writing the cache (the first start);
* ``warm``: a cache hit (every restart after that).

Both wrappers are timed: ``SentencePieceTokenizer`` (the ``.model`` file) and
``HFTokenizer`` (the saved directory, as the trainer loads an HF model's
tokenizer). The warm batches are checked against the cold ones.

    python benchmarks/data_startup.py [--records 100000] [--seq-len 512] [--tokenizer sp|hf|both]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

from mathjax.data import procedural, sft  # noqa: E402
from mathjax.data import tokenize as tz  # noqa: E402
from mathjax.data.tokenizer import load_tokenizer, train_tokenizer  # noqa: E402


def _separate(tokenizer, template, pairs, add_bos=True):
    """The previous tokenization: prompt and response encoded apart, one record at a time."""
    out = []
    for question, response in pairs:
        prompt = tokenizer.encode(template.format_prompt(question), add_bos=add_bos)
        answer = tokenizer.encode(template.format_response(response)) + [tokenizer.eos_id]
        out.append((np.asarray(prompt + answer, np.int32), len(prompt), True))
    return out


def _timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def bench_tokenizer(name: str, tokenizer, data: str, layout, options, cache: str) -> dict:
    build = lambda **kw: sft.build_batches(data, tokenizer, layout, options, seed=0, **kw)  # noqa: E731
    times = {}
    real_batch, real_size = tz.tokenize_batch, tz.ENCODE_BATCH
    try:
        tz.tokenize_batch, tz.ENCODE_BATCH = _separate, 1
        times["previous"], _ = _timed(build)
        tz.tokenize_batch = real_batch
        times["per-record"], one = _timed(build)
    finally:
        tz.tokenize_batch, tz.ENCODE_BATCH = real_batch, real_size
    times["cold"], cold = _timed(build)
    shutil.rmtree(cache, ignore_errors=True)
    times["cold+write"], _ = _timed(lambda: build(cache_dir=cache))
    times["warm"], warm = _timed(lambda: build(cache_dir=cache))
    for step in (0, 1, 1000):
        for key in sft.BATCH_KEYS:
            np.testing.assert_array_equal(cold.batch(step)[key], warm.batch(step)[key])
            np.testing.assert_array_equal(cold.batch(step)[key], one.batch(step)[key])
    size = sum(os.path.getsize(os.path.join(cache, f)) for f in os.listdir(cache))
    return {"tokenizer": name, "seconds": times, "examples": cold.stats.examples, "tokens": cold.stats.tokens,
            "cache_bytes": size, "boundary_in_token": cold.stats.boundary_in_token}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--template", default="xwin_math")
    ap.add_argument("--vocab-size", type=int, default=2000)
    ap.add_argument("--tokenizer", choices=("sp", "hf", "both"), default="both")
    ap.add_argument("--json", default="", help="also write the results here")
    args = ap.parse_args()

    import jax

    from mathjax.parallel.mesh import make_mesh

    work = tempfile.mkdtemp(prefix="data_startup-")
    try:
        t, records = _timed(lambda: procedural.generate(args.records, seed=0, max_steps=6))
        data = os.path.join(work, "train.jsonl")
        procedural.write_jsonl(records, data)
        print(f"{len(records)} records, {os.path.getsize(data) / 1e6:.1f} MB ({t:.1f}s to generate)")
        t, _ = _timed(lambda: train_tokenizer(data, os.path.join(work, "tok"), vocab_size=args.vocab_size,
                                              template=args.template, max_lines=50_000))
        print(f"tokenizer trained in {t:.1f}s")
        mesh = make_mesh("data:1,fsdp:1,tensor:1", devices=jax.devices()[:1])
        layout = sft.BatchLayout(mesh, batch_size=8, micro_batches=1, seq_len=args.seq_len)
        options = sft.SFTDataOptions(seq_len=args.seq_len, template=args.template)
        wrappers = {"sp": os.path.join(work, "tok", "tokenizer.model"), "hf": os.path.join(work, "tok")}
        results = []
        for name in (("sp", "hf") if args.tokenizer == "both" else (args.tokenizer,)):
            tok = load_tokenizer(wrappers[name])
            r = bench_tokenizer(f"{name} ({type(tok).__name__})", tok, data, layout, options,
                                os.path.join(work, f"cache-{name}"))
            results.append(r)
            s = r["seconds"]
            print(f"\n{r['tokenizer']}: {r['examples']} examples, {r['tokens'] / 1e6:.1f}M tokens, "
                  f"cache {r['cache_bytes'] / 1e6:.1f} MB, {r['boundary_in_token']} boundaries inside a token")
            for key, value in s.items():
                print(f"  {key:<11} {value:7.2f}s")
            print(f"  batched vs previous: {s['previous'] / s['cold']:.2f}x;  batched vs per-record: "
                  f"{s['per-record'] / s['cold']:.2f}x;  warm vs cold: {s['cold'] / s['warm']:.1f}x;  "
                  f"warm vs previous: {s['previous'] / s['warm']:.1f}x")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"records": len(records), "seq_len": args.seq_len, "results": results}, f, indent=2)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
