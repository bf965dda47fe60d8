"""Sampling rules draw from the right distribution (chi-square on fixed logits)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mathjax.sample.sampling import SamplingRules, greedy_tokens, sample_tokens, token_probabilities

LOGITS = np.array([2.0, 1.5, 1.5, 0.3, 0.0, -0.5, -1.0, -3.0, -30.0, 0.9, 1.1, -2.0], np.float32)
DRAWS = 40000


def _expected(logits: np.ndarray, temperature: float, top_p: float, top_k: int) -> np.ndarray:
    """Reference distribution in float64 numpy: temperature, then top-k, then top-p (transformers' order)."""
    z = logits.astype(np.float64) / temperature
    # transformers drops from an ascending stable sort: from the top, ties run by descending id.
    order = np.lexsort((-np.arange(z.shape[0]), -z))
    keep = np.ones_like(z, bool)
    if top_k:
        keep = z >= z[order[top_k - 1]]  # ties with the k-th value are kept
    p = np.where(keep, np.exp(z - z.max()), 0.0)
    p /= p.sum()
    if top_p < 1.0:
        sorted_p = p[order]
        before = np.cumsum(sorted_p) - sorted_p
        drop = order[before >= top_p]
        p[drop] = 0.0
        p /= p.sum()
    return p


def _draw(rules: SamplingRules, logits=LOGITS, n=DRAWS) -> np.ndarray:
    batch = jnp.broadcast_to(jnp.asarray(logits), (n, logits.shape[0]))
    keys = jax.random.split(jax.random.key(123), n)
    tokens = jax.jit(sample_tokens, static_argnums=2)(batch, keys, rules)
    return np.bincount(np.asarray(tokens), minlength=logits.shape[0])


@pytest.mark.parametrize(
    "temperature,top_p,top_k",
    [(1.0, 1.0, 0), (0.7, 1.0, 0), (1.0, 1.0, 4), (1.0, 0.8, 0), (0.5, 0.9, 5), (1.3, 0.6, 3)],
)
def test_sampled_frequencies_match_distribution(temperature, top_p, top_k):
    rules = SamplingRules(temperature=temperature, top_p=top_p, top_k=top_k)
    counts = _draw(rules)
    expected = _expected(LOGITS, temperature, top_p, top_k)
    np.testing.assert_allclose(np.asarray(token_probabilities(jnp.asarray(LOGITS)[None], rules))[0], expected,
                               atol=1e-6)
    # Tokens outside the kept set are never drawn.
    assert counts[expected == 0].sum() == 0
    # Pearson chi-square over kept tokens; the 1e-4 quantile bound keeps the test
    # deterministic in practice (fixed keys) yet sensitive to a wrong distribution.
    kept = expected > 0
    e = expected[kept] * DRAWS
    chi2 = float(((counts[kept] - e) ** 2 / e).sum())
    dof = int(kept.sum()) - 1
    bound = dof + 8.0 * np.sqrt(2.0 * dof) + 10.0 if dof else 0.0
    assert chi2 <= bound, (chi2, bound, counts, expected)


def test_large_vocab_uses_all_blocks():
    """A 1000-token vocabulary (several 128-blocks, ragged last block): frequencies of block masses."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=1000).astype(np.float32) * 2
    counts = _draw(SamplingRules(temperature=1.0), logits, 20000)
    expected = _expected(logits, 1.0, 1.0, 0)
    blocks = np.arange(1000) // 100  # compare masses of 10 bins (per-token counts are too small)
    obs = np.bincount(blocks, weights=counts)
    exp = np.bincount(blocks, weights=expected) * 20000
    chi2 = float(((obs - exp) ** 2 / exp).sum())
    assert chi2 < 9 + 8 * np.sqrt(18) + 10


def test_greedy_is_argmax_with_lowest_index_on_ties():
    logits = jnp.asarray([[0.0, 3.0, 3.0, 1.0], [5.0, -1.0, 2.0, 5.0]])
    assert greedy_tokens(logits).tolist() == [1, 0]
    keys = jax.random.split(jax.random.key(0), 2)
    assert sample_tokens(logits, keys, SamplingRules(temperature=0.0)).tolist() == [1, 0]


def test_per_row_keys_make_rows_independent_of_batch():
    rules = SamplingRules(temperature=0.9, top_k=6)
    keys = jax.random.split(jax.random.key(5), 8)
    logits = jnp.asarray(np.random.default_rng(1).normal(size=(8, 12)), jnp.float32)
    full = np.asarray(sample_tokens(logits, keys, rules))
    part = np.asarray(sample_tokens(logits[3:5], keys[3:5], rules))
    assert full[3:5].tolist() == part.tolist()


def test_rules_validation():
    with pytest.raises(ValueError):
        SamplingRules(temperature=-1)
    with pytest.raises(ValueError):
        SamplingRules(top_p=0.0)
    with pytest.raises(ValueError):
        SamplingRules(top_k=-2)
    assert SamplingRules(temperature=0).greedy


def _hf_kept(logits: np.ndarray, top_k: int, top_p: float) -> np.ndarray:
    """The tokens transformers' TopK/TopP warpers leave finite (the reference for ties)."""
    torch = pytest.importorskip("torch")
    from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper

    scores = torch.tensor(logits)
    if top_k:
        scores = TopKLogitsWarper(top_k)(None, scores)
    if top_p < 1.0:
        scores = TopPLogitsWarper(top_p)(None, scores)
    return np.isfinite(scores.numpy())


@pytest.mark.parametrize("top_k,top_p", [(2, 1.0), (3, 1.0), (0, 0.5), (0, 0.6), (2, 0.5), (4, 0.7)])
def test_ties_at_the_boundary_follow_transformers(top_k, top_p):
    # Ties straddling the k-th place and the top-p boundary: [3, 2, 2, 2, 1, 1, 0, 0] in scrambled order.
    base = np.asarray([[0.0, 2.0, 1.0, 3.0, 2.0, 0.0, 2.0, 1.0]], np.float32)
    logits = np.concatenate([base, base[:, ::-1]], axis=0)
    rules = SamplingRules(temperature=1.0, top_k=top_k, top_p=top_p)
    ours = np.asarray(token_probabilities(jnp.asarray(logits), rules)) > 0
    np.testing.assert_array_equal(ours, _hf_kept(logits, top_k, top_p))
    # And the sampler draws only from that set.
    keys = jax.random.split(jax.random.key(0), 4000)
    draws = np.asarray(sample_tokens(jnp.asarray(np.repeat(logits, 2000, axis=0)), keys, rules)).reshape(2, 2000)
    for row in range(2):
        assert set(draws[row].tolist()) == set(np.nonzero(ours[row])[0].tolist())


def test_prompt_past_the_context_is_refused():
    from mathjax.api import from_random
    from mathjax.model.config import get_preset
    from mathjax.sample import Sampler

    from mathjax.parallel.mesh import make_mesh

    mesh = make_mesh("data:1", devices=jax.devices()[:1])
    model = from_random(get_preset("tiny", vocab_size=64, max_position_embeddings=32), mesh=mesh, seed=0)
    sampler = Sampler(model, None, SamplingRules(temperature=0.0), batch_size=4, max_new_tokens=4)
    with pytest.raises(ValueError, match=r"context of 32 positions; the first, question .q-long., has 40 tokens"):
        list(sampler.generate([[1] * 5, [1] * 40], num_samples=1, question_ids=["q-ok", "q-long"]))
