"""The batched sampler: parity with transformers and a plain-cache reference, determinism, refills, stops."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import mathjax
from hf_fixtures import make_hf_model
from mathjax.model import llama
from mathjax.model.attention import CacheContext
from mathjax.model.config import get_preset
from mathjax.parallel.mesh import make_mesh
from mathjax.sample import Sampler, SamplingRules
from mathjax.sample.compiled import total_compile_counts
from mathjax.sample.decode import row_keys
from mathjax.sample.sampler import question_hash
from mathjax.sample.sampling import sample_tokens

CONFIG = get_preset("tiny", vocab_size=96, hidden_size=64, intermediate_size=96, num_layers=2,
                    num_heads=4, num_kv_heads=2, eos_token_id=2)
RNG = np.random.default_rng(0)
PROMPTS = [list(RNG.integers(3, 96, size=n)) for n in (6, 13, 1, 9, 21)]


@pytest.fixture(scope="module")
def model():
    # Larger weights than the default init: peaked logits, so EOS ends samples at varied lengths.
    return mathjax.from_random(CONFIG.replace(initializer_range=0.3), seed=1)


def _tokens(results):
    return [[s.token_ids for s in per_q] for per_q in results]


@pytest.mark.parametrize("variant", ["llama_gqa", "qwen2", "mistral", "qwen3"])
def test_greedy_matches_transformers_generate(variant, tmp_path):
    hf = make_hf_model(variant)
    hf.save_pretrained(tmp_path)
    ours = mathjax.load(str(tmp_path))
    prompts = [list(RNG.integers(3, 97, size=n)) for n in (5, 12)]
    sampler = Sampler(ours, None, SamplingRules(temperature=0.0), batch_size=2, max_new_tokens=16)
    results = sampler.sample(prompts, num_samples=1)
    eos = hf.generation_config.eos_token_id
    for prompt, (result,) in zip(prompts, results):
        ref = hf.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=16, pad_token_id=0)
        ref = ref[0, len(prompt):].tolist()
        assert result.token_ids == ref
        assert result.finish_reason == ("eos" if ref[-1] == eos else "length")


def _reference_samples(model, prompt, qid, num_samples, rules, seed, max_new, eos=2):
    """One sample at a time through the plain per-row KV cache (CacheContext), same RNG streams."""
    cfg, params = model.config, model.params
    step = jax.jit(lambda p, tok, pos, lengths, caches: llama.forward(cfg, p, tok, pos, CacheContext(lengths), caches))
    out = []
    for s in range(num_samples):
        caches = llama.init_kv_caches(cfg, 1, len(prompt) + max_new)
        tokens = jnp.asarray([prompt], jnp.int32)
        logits, caches = llama.forward(cfg, params, tokens, None, CacheContext(jnp.zeros(1, jnp.int32)), caches)
        last, n, ids = logits[:, -1], len(prompt), []
        for t in range(max_new):
            key = row_keys(jax.random.key(seed), jnp.asarray([question_hash(qid)], jnp.uint32),
                           jnp.asarray([s], jnp.int32), jnp.asarray([t], jnp.int32))
            tok = int(sample_tokens(last, key, rules)[0])
            ids.append(tok)
            if tok == eos:
                break
            logits, caches = step(params, jnp.asarray([[tok]]), jnp.asarray([[n]]), jnp.asarray([n]), caches)
            last, n = logits[:, -1], n + 1
        out.append(ids)
    return out


def test_samples_equal_plain_cache_reference(model):
    rules = SamplingRules(temperature=0.8, top_k=40)
    sampler = Sampler(model, None, rules, batch_size=4, max_new_tokens=12, rows_per_prompt=2)
    results = sampler.sample(PROMPTS[:2], num_samples=3, seed=7, question_ids=["a", "b"])
    for prompt, qid, per_q in zip(PROMPTS[:2], ["a", "b"], results):
        assert [s.token_ids for s in per_q] == _reference_samples(model, prompt, qid, 3, rules, 7, 12)


def test_shared_prefix_and_batch_size_do_not_change_samples(model):
    """Prompt stored once per slot (R rows) == unshared (R=1), for several batch sizes and refill orders."""
    rules = SamplingRules(temperature=1.0, top_p=0.9)
    runs = {}
    for batch, rows in [(6, 3), (4, 1), (16, None), (5, 5)]:
        sampler = Sampler(model, None, rules, batch_size=batch, max_new_tokens=24, rows_per_prompt=rows)
        runs[(batch, rows)] = _tokens(sampler.sample(PROMPTS, num_samples=5, seed=3))
        if rows == 1:
            assert sampler.stats.kv_bytes_shared == sampler.stats.kv_bytes_unshared
        elif rows:
            assert sampler.stats.kv_bytes_shared < sampler.stats.kv_bytes_unshared
    first = runs[(6, 3)]
    for key, got in runs.items():
        assert got == first, key
    lengths = {len(ids) for per_q in first for ids in per_q}
    assert len(lengths) > 3  # EOS at varied lengths: rows were refilled mid-flight


def test_one_and_eight_devices_agree(model):
    rules = SamplingRules(temperature=0.7)
    one = Sampler(model, None, rules, batch_size=16, max_new_tokens=20)
    mesh8 = make_mesh("data:8", jax.devices()[:8])
    params8 = jax.device_put(model.params, jax.sharding.NamedSharding(mesh8, jax.sharding.PartitionSpec()))
    model8 = mathjax.api.Model(config=model.config, params=params8, mesh=mesh8)
    eight = Sampler(model8, None, rules, batch_size=16, max_new_tokens=20)
    a = one.sample(PROMPTS, num_samples=4, seed=11)
    b = eight.sample(PROMPTS, num_samples=4, seed=11)
    assert eight.stats.groups % 8 == 0  # rows really split over the 8 devices
    assert _tokens(a) == _tokens(b)


def test_compiles_once_per_prompt_bucket(model):
    sampler = Sampler(model, None, SamplingRules(temperature=0.5), batch_size=4, max_new_tokens=8,
                      rows_per_prompt=2)
    # Prefix lengths 5..14 share bucket 16; 20 is in bucket 32.
    sampler.sample([list(range(3, 9)), list(range(3, 18)), list(range(3, 24))], num_samples=2)
    first = sampler.compile_counts()
    assert first["prefill"] == 2
    sampler.sample([list(range(10, 23)), list(range(4, 30)), list(range(5, 12))], num_samples=2, seed=1)
    assert sampler.compile_counts() == first
    # A new Sampler (a new runner call, a synthesis stage) with shorter prompts compiles nothing:
    # the functions are shared, and the cache keeps the larger prompt capacity already compiled.
    before = total_compile_counts()
    again = Sampler(model, None, SamplingRules(temperature=0.5), batch_size=4, max_new_tokens=8, rows_per_prompt=2)
    again.sample([list(range(3, 9)), list(range(7, 12))], num_samples=2, seed=2)
    assert total_compile_counts() == before


def test_rows_move_to_the_next_question_without_waiting(model):
    """Two prompt buffers per slot: a finished row starts the slot's next question at once.

    Same samples as one buffer per slot (where a row waits until its whole slot is done), and
    more row-steps spent generating.
    """
    rules = SamplingRules(temperature=1.0)
    prompts = PROMPTS * 2
    waiting = Sampler(model, None, rules, batch_size=8, max_new_tokens=40, rows_per_prompt=4, prefix_buffers=1)
    moving = Sampler(model, None, rules, batch_size=8, max_new_tokens=40, rows_per_prompt=4, prefix_buffers=2)
    a = _tokens(waiting.sample(prompts, num_samples=6, seed=9))
    b = _tokens(moving.sample(prompts, num_samples=6, seed=9))
    assert a == b
    lengths = [len(ids) for per_q in a for ids in per_q]
    assert min(lengths) < 10 and max(lengths) == 40  # EOS early for some samples, none for others
    assert moving.stats.slot_utilisation > waiting.stats.slot_utilisation + 0.05
    assert moving.stats.decode_steps < waiting.stats.decode_steps


def test_one_copy_of_the_weights(model):
    """for_sampling() converts in place: the Sampler decodes the model's own arrays, nothing is copied."""
    own = mathjax.from_random(CONFIG, seed=2)
    ref = Sampler(own, None, SamplingRules(temperature=0.0), batch_size=2, max_new_tokens=6).sample(PROMPTS[:2])
    stacked = own.params
    weights = sum(x.nbytes for x in jax.tree_util.tree_leaves(stacked))
    live = sum(x.nbytes for x in jax.live_arrays())
    per_layer = own.for_sampling()
    assert all(x.is_deleted() for x in jax.tree_util.tree_leaves(stacked["layers"]))
    # Converted, not duplicated (a copy would add the layers' bytes; a few scalars come and go).
    assert abs(sum(x.nbytes for x in jax.live_arrays()) - live) < 1024 < weights // 100
    sampler = Sampler(per_layer, None, SamplingRules(temperature=0.0), batch_size=2, max_new_tokens=6)
    assert sampler.params is per_layer.params
    assert sum(x.nbytes for x in jax.tree_util.tree_leaves(sampler.params)) == weights
    assert _tokens(sampler.sample(PROMPTS[:2])) == _tokens(ref)


def test_stats_and_finish_reasons(model):
    sampler = Sampler(model, None, SamplingRules(temperature=1.0), batch_size=8, max_new_tokens=16)
    results = sampler.sample(PROMPTS, num_samples=6)
    st = sampler.stats
    assert st.questions == 5 and st.samples == 30
    assert st.generated_tokens == sum(s.num_tokens for per_q in results for s in per_q)
    assert 0.3 < st.slot_utilisation <= 1.0
    for per_q in results:
        assert len(per_q) == 6
        for s in per_q:
            assert s.finish_reason in ("eos", "length")
            assert (s.finish_reason == "eos") == (s.token_ids[-1] == 2)
            assert s.finish_reason == "eos" or s.num_tokens == 16
    ignored = Sampler(model, None, SamplingRules(temperature=1.0), batch_size=8, max_new_tokens=16, ignore_eos=True)
    assert all(s.num_tokens == 16 for per_q in ignored.sample(PROMPTS[:2], num_samples=3) for s in per_q)


class _CharTokenizer:
    """Ids 3.. map to characters; enough to test stop strings on text."""

    eos_id, bos_id, pad_id, vocab_size = 2, 1, 0, 96
    chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 :.,;!?-+*/=()[]{}<>'\"#$%&@^_~|\\\n\t`"

    def encode(self, text, add_bos=False):
        return ([1] if add_bos else []) + [self.chars.index(c) + 3 for c in text]

    def decode(self, ids):
        return "".join(self.chars[i - 3] for i in ids if 3 <= i < 3 + len(self.chars))


def test_stop_strings_cut_text_and_free_the_row(model):
    tok = _CharTokenizer()
    rules = SamplingRules(temperature=1.0)
    free = Sampler(model, tok, rules, batch_size=4, max_new_tokens=40, ignore_eos=True)
    base = free.sample(["hello there", "x"], num_samples=3, seed=5)
    text = base[0][1].text
    stop = text[10:12]  # a string that occurs in that sample
    stopped = Sampler(model, tok, rules, batch_size=4, max_new_tokens=40, ignore_eos=True, stop=[stop],
                      stop_check_interval=4)
    got = stopped.sample(["hello there", "x"], num_samples=3, seed=5)
    n_stopped = 0
    for per_base, per_got in zip(base, got):
        for b, g in zip(per_base, per_got):
            pos = b.text.find(stop)
            if pos < 0:
                assert (g.text, g.finish_reason) == (b.text, "length")
                continue
            n_stopped += 1
            assert g.finish_reason == "stop" and g.text == b.text[:pos]
            assert stop in tok.decode(g.token_ids) and stop not in tok.decode(g.token_ids[:-1])
            assert g.token_ids == b.token_ids[: g.num_tokens]
    assert n_stopped >= 1
    assert stopped.stats.generated_tokens < free.stats.generated_tokens
