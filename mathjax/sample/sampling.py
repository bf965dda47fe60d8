"""Sampling rules (greedy, temperature, top-k, top-p) applied to float32 logits.

Each row draws its token with its own key, so a sample's randomness never
depends on which other rows share the batch. The draw is one uniform number per
row fed through the inverse CDF, which picks token ``i`` with probability
``p_i`` exactly as ``categorical`` does, but needs one random number instead of
one Gumbel per vocabulary entry (on CPU, ``jax.random.categorical`` over 256 x
32000 logits costs more than the whole model step).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jax import lax

_BLOCK = 128  # vocabulary block for the two-level inverse CDF


@dataclasses.dataclass(frozen=True)
class SamplingRules:
    """How to turn logits into a token (static: one compiled decode loop per rule set).

    Attributes:
      temperature: divides the logits; 0 means greedy (argmax, lowest id on ties).
      top_p: keep the smallest set of most likely tokens whose probability
        reaches ``top_p`` (nucleus sampling); 1.0 disables it.
      top_k: keep only the ``top_k`` most likely tokens (and any tied with the
        k-th, as transformers and vLLM do); 0 disables it.

    Order as in ``transformers``: temperature, then top-k, then top-p.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0

    def __post_init__(self):
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


def greedy_tokens(logits: jax.Array) -> jax.Array:
    """Argmax over the last axis (lowest index on ties).

    Written as max + min-index: XLA:CPU's variadic argmax reduction is ~5x
    slower than two plain reductions at 256 x 32000.
    """
    v = logits.shape[-1]
    best = jnp.max(logits, axis=-1, keepdims=True)
    index = jnp.where(logits == best, jnp.arange(v, dtype=jnp.int32), v)
    return jnp.minimum(jnp.min(index, axis=-1), v - 1).astype(jnp.int32)


def _two_level_draw(block_sums: jax.Array, block_weights, u: jax.Array) -> jax.Array:
    """Index ``i`` with probability ``w_i / sum(w)`` for u ~ U[0, 1), weights in blocks of 128.

    block_sums [B, nb] are the blocks' total weights; ``block_weights(blk)``
    returns the weights [B, 128] of block ``blk`` [B]. First the block, then
    the token within it: O(V) with cheap reductions (a flat cumsum over 32000
    entries is ~8x slower on CPU).
    """
    nb = block_sums.shape[-1]
    block_cdf = jnp.cumsum(block_sums, axis=-1)
    target = u * block_cdf[:, -1]
    # First block whose cumulative weight exceeds the target; empty blocks are skipped.
    last_nonempty = jnp.max(jnp.where(block_sums > 0, jnp.arange(nb), -1), axis=-1)
    blk = jnp.minimum(jnp.sum(block_cdf <= target[:, None], axis=-1), last_nonempty)
    before = jnp.where(blk > 0, jnp.take_along_axis(block_cdf, jnp.maximum(blk - 1, 0)[:, None], 1)[:, 0], 0.0)
    row = block_weights(blk)
    cdf = before[:, None] + jnp.cumsum(row, axis=-1)
    # Rounding can leave the target past the block's own running sum: clamp to
    # its last token with positive weight (never a zero-probability token).
    last_pos = jnp.max(jnp.where(row > 0, jnp.arange(_BLOCK), -1), axis=-1)
    within = jnp.minimum(jnp.sum(cdf <= target[:, None], axis=-1), last_pos)
    return (blk * _BLOCK + within).astype(jnp.int32)


def _blocks(x: jax.Array, fill: float) -> jax.Array:
    """[B, V] -> [B, ceil(V / 128), 128], padded with ``fill``."""
    b, v = x.shape
    nb = -(-v // _BLOCK)
    return jnp.pad(x, ((0, 0), (0, nb * _BLOCK - v)), constant_values=fill).reshape(b, nb, _BLOCK)


def _inverse_cdf(weights: jax.Array, u: jax.Array) -> jax.Array:
    """Draw from unnormalised weights [B, V] >= 0."""
    w = _blocks(weights, 0.0)
    return _two_level_draw(jnp.sum(w, axis=-1), lambda blk: jnp.take_along_axis(w, blk[:, None, None], 1)[:, 0], u)


def _sample_full(logits: jax.Array, u: jax.Array, temperature: float) -> jax.Array:
    """Draw from softmax(logits / temperature) over the whole vocabulary.

    The weights are never written out: block sums are one fused exp-reduce
    over the logits and only the chosen block's weights are recomputed, so
    the draw reads the [B, V] logits twice (max, then exp-sum). On CPU this is
    the sampler's largest cost after the matmuls.
    """
    blocks = _blocks(logits, -jnp.inf)
    inv_t = jnp.float32(1.0 / temperature)
    top = jnp.max(logits, axis=-1)[:, None, None]  # max(l / T) = max(l) / T: no scaled copy of the logits

    def weights(blk):
        return jnp.exp((jnp.take_along_axis(blocks, blk[:, None, None], 1) - top) * inv_t)[:, 0]

    return _two_level_draw(jnp.sum(jnp.exp((blocks - top) * inv_t), axis=-1), weights, u)


def row_uniforms(keys: jax.Array) -> jax.Array:
    """One U[0, 1) float32 per row key [B]."""
    return jax.vmap(lambda k: jax.random.uniform(k, (), jnp.float32))(keys)


def log_probs_at(logits: jax.Array, tokens: jax.Array, temperature: float = 1.0) -> tuple[jax.Array, jax.Array]:
    """``[..., V]`` logits, ``[...]`` tokens -> (float32 log-probs of the tokens, all log-probs ``[..., V]``).

    Under softmax(logits / temperature), the distribution drawn from before
    top-k/top-p (what an RL trainer recomputes). The token is picked with an
    iota mask, not a gather: the vocabulary may be split over ``tensor``.
    """
    scaled = logits.astype(jnp.float32) / temperature
    log_probs = scaled - jax.nn.logsumexp(scaled, axis=-1, keepdims=True)
    picked = jnp.sum(jnp.where(jnp.arange(scaled.shape[-1]) == tokens[..., None], log_probs, 0.0), axis=-1)
    return picked, log_probs


def sample_tokens(logits: jax.Array, keys: jax.Array, rules: SamplingRules) -> jax.Array:
    """Draws one token per row: logits [B, V] (float32), keys [B] -> int32 [B]."""
    logits = logits.astype(jnp.float32)
    if rules.greedy:
        return greedy_tokens(logits)
    u = row_uniforms(keys)
    if rules.top_k == 0 and rules.top_p >= 1.0:
        return _sample_full(logits, u, rules.temperature)
    logits = logits / jnp.float32(rules.temperature)
    v = logits.shape[-1]
    if rules.top_k > 0 and rules.top_k < v:
        # As transformers/vLLM: keep every token tied with the k-th largest (lax.top_k alone keeps exactly k).
        kth = lax.top_k(logits, rules.top_k)[0][:, -1:]
        logits = jnp.where(logits >= kth, logits, -jnp.inf)
    if rules.top_p >= 1.0:
        return _sample_full(logits, u, 1.0)
    values, ids = _sorted_descending(logits)
    weights = jnp.exp(values - values[:, :1])
    probs = weights / jnp.sum(weights, axis=-1, keepdims=True)
    mass_before = jnp.cumsum(probs, axis=-1) - probs
    # The most likely token is always kept (mass_before == 0 < top_p).
    weights = jnp.where(mass_before < rules.top_p, weights, 0.0)
    choice = _inverse_cdf(weights, u)
    return jnp.take_along_axis(ids, choice[:, None], axis=-1)[:, 0].astype(jnp.int32)


def _sorted_descending(logits: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(values, ids)`` by descending logit; ties by descending id.

    transformers and vLLM apply top-p on an ascending (stable) sort and drop
    from the bottom, so among tokens tied at the boundary the lower ids go
    first; the same order read from the top is "ties by descending id". The
    id is a second sort key, so the order never depends on sort stability.
    """
    v = logits.shape[-1]
    ids = jnp.broadcast_to(jnp.arange(v, dtype=jnp.int32), logits.shape)
    neg, _, ids = lax.sort((-logits, (v - 1) - ids, ids), dimension=-1, num_keys=2)
    return -neg, ids


def token_probabilities(logits: jax.Array, rules: SamplingRules) -> jax.Array:
    """The distribution ``sample_tokens`` draws from, [B, V] (for tests and diagnostics)."""
    logits = logits.astype(jnp.float32)
    v = logits.shape[-1]
    if rules.greedy:
        return jax.nn.one_hot(greedy_tokens(logits), v, dtype=jnp.float32)
    logits = logits / jnp.float32(rules.temperature)
    if rules.top_k > 0 and rules.top_k < v:
        kth = jnp.sort(logits, axis=-1)[:, v - rules.top_k][:, None]
        logits = jnp.where(logits >= kth, logits, -jnp.inf)  # ties with the k-th value stay
    values, order = _sorted_descending(logits)
    weights = jnp.exp(values - values[:, :1])
    if rules.top_p < 1.0:
        probs = weights / jnp.sum(weights, axis=-1, keepdims=True)
        weights = jnp.where(jnp.cumsum(probs, axis=-1) - probs < rules.top_p, weights, 0.0)
    probs_sorted = weights / jnp.sum(weights, axis=-1, keepdims=True)
    rows = jnp.arange(logits.shape[0])[:, None]
    return jnp.zeros_like(probs_sorted).at[rows, order].set(probs_sorted)
