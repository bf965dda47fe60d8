"""End to end with a real (tiny, random) mathjax model through the local sampler runner: every stage
runs, every seed is accounted for in stats.json. (The script's HTTP path is run in test_synth_http.)"""

from __future__ import annotations

import json
import pytest

import mathjax
from mathjax import synth
from mathjax.data import procedural
from mathjax.data.tokenizer import train_tokenizer
from mathjax.model.config import get_preset
from mathjax.sample import SamplingRules
from mathjax.synth import pipeline, prompts
from test_synth_fakes import write_jsonl

N_SEEDS = 4


@pytest.fixture(scope="module")
def model_and_tokenizer(tmp_path_factory):
    """A tiny random model whose tokenizer knows the prompt wording (short prompts, fast prefill)."""
    root = tmp_path_factory.mktemp("synth_local")
    seeds = procedural.generate(40, split="train", seed=4)
    texts = [r["question"] for r in seeds] + [r["answer"] for r in seeds]
    for ps in prompts.PROMPT_SETS.values():
        texts += [ps.question, ps.verify, ps.answer]
    texts.append("A chat between a curious user and an artificial intelligence assistant. USER: ASSISTANT:")
    tok = train_tokenizer(texts * 2, root / "tok", vocab_size=600)
    config = get_preset("tiny", vocab_size=tok.vocab_size + 8, hidden_size=32, intermediate_size=64, num_layers=1,
                        num_heads=2, num_kv_heads=1, eos_token_id=tok.eos_id, bos_token_id=tok.bos_id,
                        initializer_range=0.2)
    model = mathjax.from_random(config, seed=5)  # one device: the sampler's mesh
    model.path = str(root / "random-model")  # names the generator in provenance
    return model, tok, seeds[:N_SEEDS]


def test_tiny_random_model_runs_every_stage(model_and_tokenizer, tmp_path):
    model, tok, seeds = model_and_tokenizer
    seeds = synth.load_seeds(write_jsonl(tmp_path / "seeds.jsonl", seeds))
    test_set = write_jsonl(tmp_path / "test.jsonl", [{"question": "Q?", "answer": "x\n#### 1"}])
    gen = synth.LocalGenerator(model, tok, SamplingRules(temperature=1.0), max_new_tokens=10, batch_size=4)
    out = tmp_path / "out"
    opts = synth.SynthOptions(num_answers=2, decontaminate=(test_set,))
    summary = synth.run(seeds, gen, str(out), opts, progress=False)
    assert summary.generated["1_questions"] == N_SEEDS
    for stage in pipeline.STAGES:
        rows = [json.loads(line) for line in open(pipeline.stage_path(str(out), stage))]
        assert rows, f"stage {stage} never ran"  # a random model's replies still pass the lenient parsers
        assert all(r["prompt"].startswith("A chat between") for r in rows)  # wrapped in the model's template
        assert len({r["id"] for r in rows}) == len(rows)
    answers = [json.loads(line) for line in open(pipeline.stage_path(str(out), "3_answers"))]
    assert all(len(r["samples"]) == 2 for r in answers)
    # Stage (c) gives the model its training prompt for the bare question.
    assert all("Give your solution in detail" in r["prompt"] and "Verdict" not in r["prompt"] for r in answers)
    stats = json.load(open(out / "stats.json"))
    assert stats == summary.stats and stats["seeds"] == N_SEEDS
    assert stats["kept"] + sum(stats["dropped"].values()) == N_SEEDS
    assert stats["generator"] == f"local:{model.path}" and stats["decontamination"]["test_sets"] == {"test.jsonl": 1}
    kept = [json.loads(line) for line in open(out / "synthetic.jsonl")]
    dropped = [json.loads(line) for line in open(out / "dropped.jsonl")]
    assert len(kept) + len(dropped) == N_SEEDS
    meta = json.load(open(pipeline.stage_path(str(out), "3_answers") + ".meta.json"))
    assert meta["num_samples"] == 2 and meta["max_new_tokens"] == 10  # written by the sampler runner
    # Rerun: the runner finds every stage done and nothing is sampled again.
    again = synth.run(seeds, gen, str(out), opts, progress=False)
    assert again.generated == {"1_questions": 0, "2_verified": 0, "3_answers": 0}
