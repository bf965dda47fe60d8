"""GRPO-family advantages and the PPO-clipped policy loss (pure functions, jit-able).

Advantages (one scalar per sample, shared by all its tokens), over each
prompt's group of G samples:

* ``grpo`` (DeepSeekMath): ``(r - mean(group)) / (std(group) + eps)``;
* ``drgrpo`` (Dr. GRPO, Liu et al. 2025): ``r - mean(group)``, no std
  (the std rescales easy and hard questions differently).

Policy loss per response token, with ``ratio = exp(logp - old_logp)``::

    pg = -min(ratio * A, clip(ratio, 1 - clip_low, 1 + clip_high) * A)

``clip_high > clip_low`` is DAPO's clip-higher. An optional KL penalty to a
frozen reference uses the k3 estimator ``exp(ref - logp) - (ref - logp) - 1``
(unbiased, always >= 0). The token losses are aggregated by:

* ``sequence`` (GRPO): mean over each sample's tokens, then over samples;
* ``token`` (DAPO): sum over all tokens / number of tokens (long samples weigh more);
* ``constant`` (Dr. GRPO): sum over all tokens / (samples x max_new_tokens),
  so no length normalisation biases toward long wrong answers.

Samples with ``weight == 0`` (padding, groups dropped by DAPO's dynamic
sampling) contribute nothing and are not counted.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from mathjax.sample.sampling import log_probs_at

ADVANTAGES = ("grpo", "drgrpo")
AGGREGATIONS = ("sequence", "token", "constant")


def group_advantages(rewards: np.ndarray, group_size: int, kind: str = "grpo", eps: float = 1e-6) -> np.ndarray:
    """[N] rewards (groups of ``group_size`` consecutive samples) -> [N] float32 advantages."""
    if kind not in ADVANTAGES:
        raise ValueError(f"unknown advantage {kind!r}; known: {ADVANTAGES}")
    r = np.asarray(rewards, np.float64)
    if r.size % group_size:
        raise ValueError(f"{r.size} rewards do not split into groups of {group_size}")
    groups = r.reshape(-1, group_size)
    centred = groups - groups.mean(axis=1, keepdims=True)
    if kind == "grpo":
        # Sample std over the group (ddof=1, as DeepSeekMath/TRL use torch.std); a group of
        # equal rewards has zero advantage, not 0/0.
        std = groups.std(axis=1, ddof=1, keepdims=True) if group_size > 1 else np.zeros_like(centred[:, :1])
        centred = centred / (std + eps)
    return centred.reshape(-1).astype(np.float32)


def equal_reward_groups(rewards: np.ndarray, group_size: int) -> np.ndarray:
    """[N / group_size] bool: groups whose rewards are all equal (no learning signal; DAPO drops them)."""
    groups = np.asarray(rewards).reshape(-1, group_size)
    return np.all(groups == groups[:, :1], axis=1)


def overlong_penalty(lengths: np.ndarray, max_new_tokens: int, buffer: int, factor: float = 1.0) -> np.ndarray:
    """DAPO's soft overlong punishment: 0 up to ``max_new - buffer`` tokens, then falling linearly to -factor."""
    lengths = np.asarray(lengths, np.float64)
    if buffer <= 0:
        return np.zeros_like(lengths, np.float32)
    start = max_new_tokens - buffer
    return (-factor * np.clip((lengths - start) / buffer, 0.0, 1.0)).astype(np.float32)


def policy_loss(
    logp: jax.Array, old_logp: jax.Array, advantages: jax.Array, mask: jax.Array, weight: jax.Array,
    clip_low: float = 0.2, clip_high: float = 0.2, aggregation: str = "sequence", max_new_tokens: int = 1,
    ref_logp: jax.Array | None = None, kl_coef: float = 0.0,
    num_samples: jax.Array | None = None, num_tokens: jax.Array | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The clipped surrogate (+ KL) loss and its diagnostics.

    Args:
      logp, old_logp, ref_logp: [N, T] log-probs of the sampled tokens (policy being
        trained, policy that sampled, frozen reference).
      advantages: [N] (one per sample) or [N, T] (per token); mask: [N, T] 1 on response tokens;
        weight: [N] 1 for real samples.
      aggregation: ``sequence`` | ``token`` | ``constant`` (module docstring).
      num_samples, num_tokens: the aggregation's denominators (weighted samples;
        weighted response tokens) when the rows given are a subset of the batch the
        loss is defined on (``mathjax.rl.compact`` leaves out rows with no
        gradient); counted from ``weight`` and ``mask`` when None.
    Returns:
      ``(loss, metrics)``; metrics: ``clip_fraction``, ``kl`` (k3 to the reference,
      0 without one), ``ratio_mean``, ``pg_loss``.
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}; known: {AGGREGATIONS}")
    mask = mask.astype(jnp.float32) * weight.astype(jnp.float32)[:, None]
    adv = advantages.astype(jnp.float32)
    adv = adv[:, None] if adv.ndim == 1 else adv  # one per sample, or per token (process supervision)
    ratio = jnp.exp(logp - old_logp)
    clipped = jnp.clip(ratio, 1.0 - clip_low, 1.0 + clip_high)
    pg = -jnp.minimum(ratio * adv, clipped * adv)
    per_token = pg
    kl = jnp.zeros_like(pg)
    if ref_logp is not None and kl_coef:
        d = ref_logp - logp
        kl = jnp.exp(d) - d - 1.0
        per_token = pg + kl_coef * kl

    total_tokens = jnp.sum(mask) if num_tokens is None else jnp.asarray(num_tokens, jnp.float32)
    total_samples = jnp.sum(weight.astype(jnp.float32)) if num_samples is None else jnp.asarray(num_samples,
                                                                                                   jnp.float32)

    def aggregate(x):
        if aggregation == "token":
            return jnp.sum(x * mask) / jnp.maximum(total_tokens, 1.0)
        samples = jnp.maximum(total_samples, 1.0)
        if aggregation == "constant":
            return jnp.sum(x * mask) / (samples * max_new_tokens)
        per_sample = jnp.sum(x * mask, axis=1) / jnp.maximum(jnp.sum(mask, axis=1), 1.0)
        return jnp.sum(per_sample) / samples

    tokens = jnp.maximum(jnp.sum(mask), 1.0)
    # A token is clipped when the clipped branch is the smaller (active) one.
    was_clipped = (clipped * adv < ratio * adv).astype(jnp.float32)
    metrics = {
        "clip_fraction": jnp.sum(was_clipped * mask) / tokens,
        "kl": jnp.sum(kl * mask) / tokens,
        "ratio_mean": jnp.sum(ratio * mask) / tokens,
        "pg_loss": aggregate(pg),
    }
    return aggregate(per_token), metrics


def token_logprobs(logits: jax.Array, targets: jax.Array, temperature: float = 1.0) -> tuple[jax.Array, jax.Array]:
    """[N, T, V] logits, [N, T] targets -> ([N, T] log-probs of targets, [N, T] entropies), float32.

    Both under softmax(logits / temperature): the distribution the sampler drew
    from (before top-k/top-p). The target is picked with an iota mask: the
    vocabulary may be split over ``tensor``.
    """
    picked, logp_all = log_probs_at(logits, targets, temperature)
    entropy = -jnp.sum(jnp.exp(logp_all) * logp_all, axis=-1)
    return picked, entropy
