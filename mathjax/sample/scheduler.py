"""Host-side scheduling of a sampling run: prefix slots, row refills, decode calls.

The batch is ``G`` prefix slots x ``R`` rows. A slot holds one question's
prompt KV (computed once by prefill); its rows decode that question's samples
against it. When a row finishes, it takes the next pending sample of its
slot's question; when a slot's question has nothing pending and all its rows
are done, the slot is refilled with the next question (or, at the end of a
run, with a copy of an unfinished question so that no slot idles). The jitted
decode loop runs until enough rows have finished, returns here for refills
and stop-string checks, and continues with the same donated cache.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from mathjax.sample import cache as cache_lib
from mathjax.sample.decode import EOS, LENGTH, RowState
from mathjax.sample.prefill import bucket_length
from mathjax.sample.results import SampleResult

if TYPE_CHECKING:
    from mathjax.sample.sampler import Sampler

_REASONS = {EOS: "eos", LENGTH: "length"}


def question_hash(question_id) -> int:
    """Stable 32-bit hash of a question id (its string form); seeds the question's RNG stream."""
    return int.from_bytes(hashlib.sha256(str(question_id).encode("utf-8")).digest()[:4], "little")


class Run:
    """Host-side scheduling of one ``Sampler.generate`` call (see the module docstring)."""

    def __init__(self, sampler: Sampler, prompts: list[list[int]], num_samples: int, seed: int,
                 question_ids: Sequence, progress):
        s = sampler
        self.s, self.prompts, self.n = s, prompts, num_samples
        self.progress = progress
        self.t0 = time.perf_counter()
        r = s._rows_for(num_samples)
        g = s.batch_size // r
        longest = max(len(x) for x in prompts)
        context = s.config.max_position_embeddings
        too_long = [i for i, x in enumerate(prompts) if len(x) >= context]
        if too_long:
            i = too_long[0]
            raise ValueError(
                f"{len(too_long)} prompt(s) do not fit the model's context of {context} positions; the first, "
                f"question {question_ids[i]!r}, has {len(prompts[i])} tokens (shorten it or drop it)")
        if longest + s.max_new_tokens > context:
            logging.warning("prompts of up to %d tokens + %d new exceed the model's %d positions",
                            longest, s.max_new_tokens, s.config.max_position_embeddings)
        p = bucket_length(longest - 1)
        self.layout = cache_lib.make_layout(s.config, g, r, p, s.max_new_tokens, s.kv_dtype, s.first_segment)
        self.prefill_fn, self.decode_fn = s._functions(self.layout)
        # A run abandoned inside a decode call leaves a donated (deleted) cache behind.
        stale = s._cache is not None and any(x.is_deleted() for x in jax.tree_util.tree_leaves(s._cache))
        if s._cache_layout != self.layout or stale:
            s._cache = None  # free the old cache before allocating the new one
            s._cache = cache_lib.init_cache(s.mesh, self.layout)
            s._cache_layout = self.layout
        self.seed_key = jax.random.key(seed)
        self.hashes = [question_hash(q) for q in question_ids]
        b = self.layout.batch
        self.tokens = np.zeros(b, np.int32)
        self.lengths = np.zeros(b, np.int32)
        self.active = np.zeros(b, bool)
        self.finish = np.zeros(b, np.int32)
        self.qhash = np.zeros(b, np.uint32)
        self.sidx = np.zeros(b, np.int32)
        self.prefix_lengths = np.zeros(g, np.int32)
        self.out = jax.device_put(
            np.zeros((b, self.layout.tail_len), np.int32), cache_lib.row_sharding(s.mesh, self.layout, 2)
        )
        self.slot_q = [-1] * g
        self.row_sample = [-1] * b
        self.checked = [0] * b
        self.next_sample = [0] * len(prompts)
        self.done_count = [0] * len(prompts)
        self.results: dict[int, list] = {}
        self.next_question = 0
        self.assigned = 0  # samples handed to rows so far
        st = s.stats
        st.batch, st.groups, st.rows_per_group = b, g, r
        st.kv_bytes_shared = self.layout.shared_bytes()
        st.kv_bytes_unshared = self.layout.unshared_bytes()

    # ----- scheduling -----

    def _assign(self, row: int, q: int) -> None:
        self.row_sample[row] = self.next_sample[q]
        self.next_sample[q] += 1
        self.assigned += 1
        self.tokens[row] = self.prompts[q][-1]
        self.lengths[row] = 0
        self.active[row] = True
        self.finish[row] = 0
        self.qhash[row] = self.hashes[q]
        self.sidx[row] = self.row_sample[row]
        self.checked[row] = 0

    def _pick_question(self) -> int | None:
        if self.next_question < len(self.prompts):
            self.next_question += 1
            return self.next_question - 1
        # No new questions: help the unfinished question with the most pending
        # samples (a slot is only freed once its question has none pending, so
        # every question with pending samples sits in some slot).
        pending = [(self.n - self.next_sample[q], -q) for q in set(self.slot_q) if q >= 0]
        best = max(pending, default=(0, 0))
        return -best[1] if best[0] > 0 else None

    def _schedule(self) -> None:
        r = self.layout.rows_per_group
        to_prefill = []
        for g in range(self.layout.groups):
            rows = range(g * r, (g + 1) * r)
            q = self.slot_q[g]
            if q >= 0:
                for row in rows:
                    if not self.active[row] and self.next_sample[q] < self.n:
                        self._assign(row, q)
            if any(self.active[row] for row in rows):
                continue
            q = self._pick_question()
            self.slot_q[g] = -1 if q is None else q
            if q is None:
                continue
            to_prefill.append(g)
            self.prefix_lengths[g] = len(self.prompts[q]) - 1
            for row in rows:
                if self.next_sample[q] < self.n:
                    self._assign(row, q)
        if to_prefill:
            self._prefill(to_prefill)

    def _prefill(self, groups: list[int]) -> None:
        t = time.perf_counter()
        s = self.s
        by_bucket: dict[int, list[int]] = {}
        for g in groups:
            by_bucket.setdefault(bucket_length(self.prefix_lengths[g]), []).append(g)
        for length, gs in sorted(by_bucket.items()):
            for i in range(0, len(gs), s.prefill_batch):
                chunk = gs[i : i + s.prefill_batch]
                chunk = chunk + [chunk[0]] * (s.prefill_batch - len(chunk))  # duplicates rewrite the same slot
                tokens = np.zeros((len(chunk), length), np.int32)
                for j, g in enumerate(chunk):
                    ids = self.prompts[self.slot_q[g]][:-1]
                    tokens[j, : len(ids)] = ids
                s._cache = self.prefill_fn(s.params, s._cache, jnp.asarray(tokens), jnp.asarray(chunk, jnp.int32))
                s.stats.prefill_calls += 1
            s.stats.prefills += len(gs)
        jax.block_until_ready(s._cache)
        s.stats.prefill_seconds += time.perf_counter() - t

    # ----- decoding -----

    def _state(self) -> RowState:
        rows = cache_lib.row_sharding(self.s.mesh, self.layout)
        put = lambda x: jax.device_put(x, rows)  # noqa: E731
        return RowState(
            tokens=put(self.tokens), lengths=put(self.lengths), active=put(self.active), finish=put(self.finish),
            question_hash=put(self.qhash), sample_index=put(self.sidx), prefix_lengths=put(self.prefix_lengths),
            out=self.out,
        )

    def _decode(self) -> None:
        s = self.s
        t = time.perf_counter()
        pending = self.assigned < len(self.prompts) * self.n
        b = self.layout.batch
        exit_after = max(1, int(b * s.refill_fraction)) if pending else b + 1
        max_steps = s.stop_check_interval if s.stops else s.max_steps_per_call
        longest = int(self.lengths[self.active].max())
        segments = cache_lib.active_segments(self.layout, longest)
        s._cache, state, steps, busy = self.decode_fn(
            s.params, s._cache, self._state(), self.seed_key, jnp.int32(max_steps), jnp.int32(exit_after),
            num_segments=segments,
        )
        self.out = state.out
        was_active = self.active.copy()
        self.lengths = np.array(state.lengths)
        self.active = np.array(state.active)
        self.finish = np.array(state.finish)
        self.tokens = np.array(state.tokens)
        out = np.asarray(state.out)
        st = s.stats
        steps, busy = int(steps), int(busy)
        st.decode_calls += 1
        st.decode_steps += steps
        st.row_steps += steps * b
        st.generated_tokens += busy
        st.decode_seconds += time.perf_counter() - t
        self._finished = []
        for row in np.nonzero(was_active)[0]:
            ids = out[row, : self.lengths[row]]
            if not self.active[row]:
                self._finalize(row, ids, _REASONS[int(self.finish[row])])
            elif s.stops and s.stops.maybe_stopped(ids, self.checked[row]):
                n = s.stops.stop_length(ids)
                if n is not None:
                    self.active[row] = False
                    self._finalize(row, ids[:n], "stop")
            self.checked[row] = int(self.lengths[row])

    def _finalize(self, row: int, ids: np.ndarray, reason: str) -> None:
        s = self.s
        q = self.slot_q[row // self.layout.rows_per_group]
        ids = [int(i) for i in ids]
        text = ""
        if s.tokenizer is not None:
            content = ids[:-1] if reason == "eos" else ids
            text, cut = s.stops.cut(s.tokenizer.decode(content))
            if cut and reason != "stop":
                reason = "stop"
                ids = ids[: s.stops.stop_length(ids) or len(ids)]
        result = SampleResult(text=text, num_tokens=len(ids), finish_reason=reason, token_ids=ids)
        self.results.setdefault(q, [None] * self.n)[self.row_sample[row]] = result
        self.row_sample[row] = -1
        self.done_count[q] += 1
        s.stats.kept_tokens += len(ids)
        if self.done_count[q] == self.n:
            self._finished.append(q)

    def loop(self) -> Iterator[tuple[int, list[SampleResult]]]:
        s = self.s
        while True:
            self._schedule()
            if not self.active.any():
                break
            self._decode()
            s.stats.total_seconds += time.perf_counter() - self.t0
            if self.progress is not None:
                self.progress(s.stats)
            for q in self._finished:
                s.stats.questions += 1
                s.stats.samples += self.n
                yield q, self.results.pop(q)
            self.t0 = time.perf_counter()  # time spent by the consumer is not ours
