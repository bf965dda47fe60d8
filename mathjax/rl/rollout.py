"""Rollouts: G samples per prompt from the current policy, rewarded by the grader, as a train batch.

The policy's float32 stacked params are cast to the compute dtype and split
per layer inside one jitted function on the training mesh (the layout the
sampler decodes with; no host transfer, freed after the rollout). Samples come
from the project's ``Sampler``: each prompt's KV is stored once and read by
its G rows (exactly GRPO's groups), and its compiled functions are shared
across steps. Each question's group is graded as soon as it completes, while
the device decodes the others (the sampler yields between decode calls).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from mathjax.api import Model
from mathjax.data.templates import get_template
from mathjax.data.tokenize import encode_prompt
from mathjax.model import llama
from mathjax.model.config import ModelConfig
from mathjax.model.partition import layer_param_shardings, param_shardings
from mathjax.rl import grpo, process
from mathjax.rl.rewards import combined_reward
from mathjax.sample import Sampler, SamplingRules


@dataclasses.dataclass
class Rollout:
    """One step's samples as a fixed-shape train batch ([N, T] unless noted; N = prompts x G)."""

    tokens: np.ndarray  # int32: prompt + response, right-padded
    targets: np.ndarray  # int32: tokens shifted left (next token)
    mask: np.ndarray  # float32: 1 where the target is a response token
    sampler_logp: np.ndarray  # float32: the sampler's log-prob of each target (0 off the mask)
    advantages: np.ndarray  # [N] float32, or [N, T] per token with process supervision
    weight: np.ndarray  # [N] float32: 0 for samples of dropped groups
    rewards: np.ndarray  # [N] float32
    correct: np.ndarray  # [N] float32: the `correct` reward alone (1/0)
    lengths: np.ndarray  # [N] int32 response tokens
    truncated: np.ndarray  # [N] bool: hit max_new_tokens
    seq_lengths: np.ndarray  # [N] int32 prompt + response tokens (the row's unpadded width)
    step_accuracy: float = float("nan")  # share of checked equations that are right (process supervision only)
    seconds: float = 0.0
    generated_tokens: int = 0

    def trimmed(self, min_width: int = 64) -> "Rollout":
        """The batch cut to the narrowest bucket that holds every row (see :func:`padded_width`)."""
        width = padded_width(int(self.seq_lengths.max(initial=0)), self.tokens.shape[1], min_width)
        if width == self.tokens.shape[1]:
            return self
        keys = ["tokens", "targets", "mask", "sampler_logp"] + (["advantages"] if self.advantages.ndim == 2 else [])
        cut = {k: getattr(self, k)[:, :width] for k in keys}
        return dataclasses.replace(self, **cut)

    def metrics(self, group_size: int) -> dict[str, float]:
        groups = self.correct.reshape(-1, group_size)
        return {
            "reward_mean": float(self.rewards.mean()),
            "reward_std": float(self.rewards.std()),
            "pass_rate": float(self.correct.mean()),
            "group_pass_at_g": float((groups.max(axis=1) > 0).mean()),
            "groups_all_equal": float(grpo.equal_reward_groups(self.rewards, group_size).mean()),
            "response_length": float(self.lengths.mean()),
            "truncated_fraction": float(self.truncated.mean()),
            "rollout_seconds": self.seconds,
            "rollout_tokens_per_sec": self.generated_tokens / max(self.seconds, 1e-9),
            **({} if np.isnan(self.step_accuracy) else {"step_accuracy": self.step_accuracy}),
        }


def padded_width(used: int, seq_len: int, min_width: int = 64, buckets: int = 8) -> int:
    """Columns a batch whose longest row has ``used`` tokens is trained at: ``used`` rounded up to a
    multiple of ``max(min_width, seq_len / buckets)``, at most ``seq_len``.

    Rows are right-padded to ``seq_len``, yet rollouts are often far shorter
    (the tiny demo's fill 60-70% of its 256): the update and the old/ref
    log-prob passes would pay for the padding. A fixed grid of at most
    ``buckets`` widths bounds the compiled shapes (a recompile per new width),
    and every process derives the same width from the same full batch.
    """
    if min_width < 1 or buckets < 1:
        raise ValueError(f"min_width and buckets must be positive, got {min_width} and {buckets}")
    step = max(min_width, -(-seq_len // buckets))
    return min(max(step, -(-used // step) * step), seq_len)


def make_reference(config: ModelConfig, mesh: Mesh):
    """jit(params) -> the frozen KL reference: stacked params in the compute dtype, sharded as the trainer's.

    The trainer's log-prob pass takes stacked params (one ``scan`` over layers),
    unlike the sampler's per-layer view; casting halves the copy's memory in bf16.
    """
    return jax.jit(lambda params: _compute_dtype(params, config), out_shardings=param_shardings(config, mesh))


def make_policy_view(config: ModelConfig, mesh: Mesh):
    """jit(params) -> per-layer params in the compute dtype, sharded as the sampler wants."""
    return jax.jit(lambda params: _compute_dtype(llama.unstack_layers(params), config),
                   out_shardings=layer_param_shardings(config, mesh))


def _compute_dtype(params, config: ModelConfig):
    """Weight matrices cast to the compute dtype; vectors (norm scales) keep theirs."""
    dtype = jnp.dtype(config.dtype)
    return jax.tree_util.tree_map(lambda a: a.astype(dtype) if a.ndim >= 2 else a, params)


def collect(
    policy: Model, tokenizer, records: Sequence[dict], *, group_size: int, rules: SamplingRules,
    max_new_tokens: int, seq_len: int, template: str, seed: int, batch_size: int, reward_weights: dict[str, float],
    advantage: str = "grpo", drop_equal_groups: bool = False, overlong_buffer: int = 0,
    overlong_factor: float = 1.0, question_prefix: str = "", process_coef: float = 0.0,
) -> Rollout:
    """Samples ``group_size`` answers per record and builds the train batch.

    ``records`` have ``question`` and ``gold`` (the final answer); question ids
    are ``question_prefix + id`` so each step draws fresh RNG streams.
    ``process_coef > 0`` adds the grader-checked step credit of
    :mod:`mathjax.rl.process` to each response token's advantage ([N, T] then).
    """
    t0 = time.perf_counter()
    tmpl = get_template(template)
    prompts = [encode_prompt(tokenizer, tmpl.format_prompt(r["question"])) for r in records]
    for r, p in zip(records, prompts):
        if len(p) + max_new_tokens > seq_len:
            raise ValueError(f"question {r['id']!r}: prompt of {len(p)} tokens + max_new_tokens={max_new_tokens} "
                             f"exceeds seq_len={seq_len}; raise config.seq_len or shorten the prompt")
    sampler = Sampler(policy, tokenizer, rules, batch_size=batch_size, max_new_tokens=max_new_tokens,
                      stop=tmpl.stop, logprobs=True)
    n, g = len(records), group_size
    rewards = np.zeros(n * g, np.float32)
    correct = np.zeros(n * g, np.float32)
    samples: list = [None] * n
    ids = [f"{question_prefix}{r['id']}" for r in records]
    # Graded as each question's group completes, while the device decodes the rest.
    for i, group in sampler.generate(prompts, g, seed, ids):
        samples[i] = group
        for j, s in enumerate(group):
            total, parts = combined_reward(s.text, records[i]["gold"], reward_weights)
            rewards[i * g + j] = total
            correct[i * g + j] = parts.get("correct", total)
    lengths = np.asarray([s.num_tokens for group in samples for s in group], np.int32)
    truncated = np.asarray([s.finish_reason == "length" for group in samples for s in group])
    rewards = rewards + grpo.overlong_penalty(lengths, max_new_tokens, overlong_buffer, overlong_factor)
    advantages = grpo.group_advantages(rewards, g, advantage)
    weight = np.ones(n * g, np.float32)
    if drop_equal_groups:
        weight = np.repeat(~grpo.equal_reward_groups(rewards, g), g).astype(np.float32)
    step_accuracy = float("nan")
    if process_coef:
        steps = [process.sample_steps(s.text, s.token_ids, tokenizer.decode) for group in samples for s in group]
        checked = [ok for sample in steps for _, ok in sample]
        step_accuracy = float(np.mean(checked)) if checked else float("nan")
        proc = process.process_advantages(steps, lengths, g)
        advantages = np.repeat(advantages[:, None], seq_len, axis=1)
    tokens = np.zeros((n * g, seq_len), np.int32)
    targets = np.zeros((n * g, seq_len), np.int32)
    mask = np.zeros((n * g, seq_len), np.float32)
    sampler_logp = np.zeros((n * g, seq_len), np.float32)
    seq_lengths = np.zeros(n * g, np.int32)
    for i, group in enumerate(samples):
        p = prompts[i]
        for j, s in enumerate(group):
            row = i * g + j
            seq = p + list(s.token_ids)
            tokens[row, : len(seq)] = seq
            seq_lengths[row] = len(seq)
            targets[row, : len(seq) - 1] = seq[1:]
            # Position t predicts seq[t + 1]: response targets start at t = len(prompt) - 1.
            mask[row, len(p) - 1 : len(seq) - 1] = 1.0
            sampler_logp[row, len(p) - 1 : len(seq) - 1] = s.logprobs or 0.0
            if process_coef:
                advantages[row, len(p) - 1 : len(seq) - 1] += process_coef * proc[row]
    st = sampler.stats
    return Rollout(tokens=tokens, targets=targets, mask=mask, sampler_logp=sampler_logp, advantages=advantages,
                   weight=weight, rewards=rewards, correct=correct, lengths=lengths, truncated=truncated,
                   seq_lengths=seq_lengths, step_accuracy=step_accuracy, seconds=time.perf_counter() - t0,
                   generated_tokens=st.generated_tokens)
