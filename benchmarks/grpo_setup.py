"""Inputs for a GRPO throughput run without downloads: a local tokenizer, prompts, a random model dir.

  python benchmarks/grpo_setup.py --preset=qwen2_5_math_1_5b --out_dir=/tmp/grpo_inputs
  python scripts/train_rl.py --config=configs/qwen2_5_math_1_5b_grpo.py --workdir=/tmp/grpo_wd \
      --config.init_from=/tmp/grpo_inputs/model --config.data.train_files=/tmp/grpo_inputs/train.jsonl ...

``train_rl`` starts from ``config.init_from`` (it has no random-init path), so this writes:

* ``tok/``: a small SentencePiece tokenizer trained on the prompts (``train_tokenizer``, as the
  tests do); without the compiled ``sentencepiece`` package, a byte-level BPE built with
  ``tokenizers`` (a ``transformers`` dependency) instead.
* ``model/``: the preset's shapes with random weights (bf16 on GPU/TPU), saved as an HF dir with
  that tokenizer. The vocabulary stays the preset's (e.g. Qwen2.5's 151,936), not the
  tokenizer's few hundred ids, so the logits, the sampler's draw and the loss cost what they
  do for the real model; ids beyond the tokenizer decode to nothing (the tokenizers drop them),
  so responses grade as wrong, which costs the grader nothing. EOS is the tokenizer's; a random
  model draws it about once per vocabulary-size tokens, so samples run to ``max_new_tokens``.
* ``train.jsonl``: short arithmetic questions with ``#### answer`` golds (prompts of ~20 tokens).
"""

import json
import os
import time

from absl import app, flags

_PRESET = flags.DEFINE_string("preset", "qwen2_5_math_1_5b", "Model preset (shapes).")
_OUT = flags.DEFINE_string("out_dir", "/tmp/grpo_inputs", "Where tok/, model/ and train.jsonl go.")
_RECORDS = flags.DEFINE_integer("records", 512, "Training prompts.")
_VOCAB = flags.DEFINE_integer("tokenizer_vocab", 400, "Tokenizer size (upper bound).")
_TOKENIZERS = flags.DEFINE_bool("force_tokenizers_fallback", False, "Use the `tokenizers` BPE even if "
                                "sentencepiece is installed (tests the fallback).")


def _records(n: int) -> list[dict]:
    out = []
    for i in range(n):
        a, b = 3 + (7 * i) % 89, 2 + (13 * i) % 47
        out.append({"id": f"q{i}", "question": f"What is {a} + {b}?", "answer": f"{a} + {b} = {a + b}\n#### {a + b}"})
    return out


def _bpe_tokenizer(texts: list[str], directory: str, vocab_size: int):
    """A byte-level BPE with <unk>=0 <s>=1 </s>=2 <pad>=3, saved as an HF tokenizer dir."""
    import tokenizers
    import transformers
    from tokenizers import decoders, models, pre_tokenizers, trainers

    tok = tokenizers.Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>",
                                                eos_token="</s>", pad_token="<pad>")
    fast.save_pretrained(directory)


def main(argv):
    del argv
    import jax

    import mathjax
    from mathjax.data.tokenizer import load_tokenizer
    from mathjax.model.config import get_preset

    t0 = time.perf_counter()
    os.makedirs(_OUT.value, exist_ok=True)
    records = _records(_RECORDS.value)
    with open(os.path.join(_OUT.value, "train.jsonl"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    texts = [f"Question: {r['question']}\nAnswer: {r['answer']}" for r in records]
    tok_dir = os.path.join(_OUT.value, "tok")
    kind = "tokenizers BPE"
    try:
        if _TOKENIZERS.value:
            raise ImportError("forced")
        import sentencepiece  # noqa: F401

        from mathjax.data.tokenizer import train_tokenizer

        train_tokenizer(texts, tok_dir, vocab_size=_VOCAB.value)
        kind = "SentencePiece"
    except ImportError as e:
        print(f"sentencepiece unavailable ({e}); building a byte-level BPE with `tokenizers`", flush=True)
        _bpe_tokenizer(texts, tok_dir, _VOCAB.value)
    tok = load_tokenizer(tok_dir)
    backend = jax.default_backend()
    dtype = "float32" if backend == "cpu" else "bfloat16"
    base = get_preset(_PRESET.value)
    config = base.replace(vocab_size=max(base.vocab_size, tok.vocab_size), bos_token_id=tok.bos_id,
                          eos_token_id=tok.eos_id, pad_token_id=tok.pad_id, dtype=dtype, param_dtype=dtype)
    model = mathjax.from_random(config, seed=0)
    model.tokenizer_path = tok_dir
    model.save_hf(os.path.join(_OUT.value, "model"), dtype=dtype)
    prompt_lens = [len(tok.encode(f"Question: {r['question']}\nAnswer: ", add_bos=True)) for r in records]
    print(f"grpo inputs in {_OUT.value}: {kind} tokenizer ({tok.vocab_size} ids; the model keeps the preset's "
          f"vocabulary {config.vocab_size}), {len(records)} prompts of <= {max(prompt_lens)} tokens, "
          f"{_PRESET.value} ({config.num_params() / 1e9:.2f}B params, random, saved {dtype}) in "
          f"{time.perf_counter() - t0:.1f}s", flush=True)


if __name__ == "__main__":
    app.run(main)
