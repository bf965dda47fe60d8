"""Host-side scheduling of a sampling run: prefix buffers, row refills, decode calls.

The batch is ``G`` prefix slots x ``R`` rows, and each slot has ``NB`` prompt
buffers (``cache``). A row that finishes takes, at the next decode call, the
next pending sample of the oldest question in its slot's buffers; when none
has samples left, a buffer whose question is exhausted and unread is
prefilled with the next question (or, at the end of a run, with a copy of an
unfinished question so that no row idles). So rows never wait for a
neighbour's slowest sample.

Calls are pipelined with host work: after a call returns its small summary,
the host refills the rows the device finished and starts the next call at
once; stop-string checks, detokenisation of finished samples and writing
results run while that call computes. A row found to have passed a stop
string is freed at the following call (its extra tokens are dropped).

Every decision depends only on the replicated summaries and the prompts, so
on a mesh that spans hosts all processes schedule identically (the runner
lets each write its own share of the questions).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import jax
import numpy as np

from mathjax.sample import cache as cache_lib
from mathjax.sample.decode import EOS, LENGTH, RowState, row_state_shardings
from mathjax.sample.host_arrays import replicated, to_global
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
        context = s.config.max_position_embeddings
        too_long = [i for i, x in enumerate(prompts) if len(x) >= context]
        if too_long:
            i = too_long[0]
            raise ValueError(
                f"{len(too_long)} prompt(s) do not fit the model's context of {context} positions; the first, "
                f"question {question_ids[i]!r}, has {len(prompts[i])} tokens (shorten it or drop it)")
        longest = max(len(x) for x in prompts)
        if longest + s.max_new_tokens > context:
            logging.warning("prompts of up to %d tokens + %d new exceed the model's %d positions",
                            longest, s.max_new_tokens, s.config.max_position_embeddings)
        self.layout = s._layout_for(num_samples, longest)
        self.fns = s._functions(self.layout)
        # A run abandoned inside a decode call leaves a donated (deleted) cache behind.
        stale = s._cache is not None and any(x.is_deleted() for x in jax.tree_util.tree_leaves(s._cache))
        if s._cache_layout != self.layout or stale:
            s._cache = None  # free the old cache before allocating the new one
            s._cache = self.fns.init_cache()
            s._cache_layout = self.layout
        self.seed_data = replicated(np.asarray(jax.random.key_data(jax.random.key(seed))), s.mesh)
        self.hashes = [question_hash(q) for q in question_ids]
        g, r, nb, b = self.layout.groups, self.layout.rows_per_group, self.layout.buffers, self.layout.batch
        # Host mirror of the device row state (the same on every process).
        self.tokens = np.zeros(b, np.int32)
        self.lengths = np.zeros(b, np.int32)
        self.active = np.zeros(b, bool)
        self.finish = np.zeros(b, np.int32)
        self.qhash = np.zeros(b, np.uint32)
        self.sidx = np.zeros(b, np.int32)
        self.row_buffer = np.zeros(b, np.int32)
        self.prefix_lengths = np.zeros((g, nb), np.int32)
        # Slot buffers: the question each holds, how many live rows read it, load order.
        self.buf_q = np.full((g, nb), -1, np.int64)
        self.buf_readers = np.zeros((g, nb), np.int64)
        self.buf_order = [list(range(nb)) for _ in range(g)]
        self.row_q = [-1] * b
        self.row_sample = [-1] * b  # -1: free
        self.row_ids: list[list[int]] = [[] for _ in range(b)]
        self.row_lps: list[list[float]] = [[] for _ in range(b)]
        self.checked = [0] * b
        self.next_sample = [0] * len(prompts)
        self.done_count = [0] * len(prompts)
        self.results: dict[int, list] = {}
        self.next_question = 0
        self.assigned = 0  # samples handed to rows so far
        self.to_prefill: list[int] = []  # flat buffer indices g * NB + b
        self.to_finalize: list[tuple[int, int, list[int], str, list[float]]] = []
        self.in_flight = None
        st = s.stats
        st.batch, st.groups, st.rows_per_group = b, g, r
        st.kv_bytes_shared = self.layout.shared_bytes()
        st.kv_bytes_unshared = self.layout.unshared_bytes()

    # ----- scheduling -----

    def _assign(self, row: int, g: int, buf: int) -> None:
        q = int(self.buf_q[g, buf])
        self.row_q[row] = q
        self.row_sample[row] = self.next_sample[q]
        self.next_sample[q] += 1
        self.assigned += 1
        self.buf_readers[g, buf] += 1
        self.row_buffer[row] = buf
        self.row_ids[row] = []
        self.row_lps[row] = []
        self.checked[row] = 0
        self.tokens[row] = self.prompts[q][-1]
        self.lengths[row] = 0
        self.active[row] = True
        self.finish[row] = 0
        self.qhash[row] = self.hashes[q]
        self.sidx[row] = self.row_sample[row]

    def _free(self, row: int) -> None:
        g = row // self.layout.rows_per_group
        self.buf_readers[g, self.row_buffer[row]] -= 1
        self.row_sample[row] = -1
        self.row_q[row] = -1
        self.active[row] = False

    def _pick_question(self) -> int | None:
        if self.next_question < len(self.prompts):
            self.next_question += 1
            return self.next_question - 1
        # No new questions: help the unfinished question with the most pending
        # samples (one with pending samples always sits in some buffer).
        loaded = {int(q) for q in self.buf_q.flat if q >= 0}
        pending = [(self.n - self.next_sample[q], -q) for q in loaded]
        best = max(pending, default=(0, 0))
        return -best[1] if best[0] > 0 else None

    def _buffer_for(self, g: int) -> int | None:
        """The buffer a free row of slot ``g`` should read next, loading a question if needed."""
        order = self.buf_order[g]
        for buf in order:  # oldest question first: finish questions, free buffers
            q = self.buf_q[g, buf]
            if q >= 0 and self.next_sample[q] < self.n:
                return buf
        for buf in order:
            q = self.buf_q[g, buf]
            if q < 0 or self.buf_readers[g, buf] == 0:  # empty, or exhausted and unread
                q = self._pick_question()
                if q is None:
                    return None
                self.buf_q[g, buf] = q
                self.prefix_lengths[g, buf] = len(self.prompts[q]) - 1
                self.to_prefill.append(g * self.layout.buffers + buf)
                order.remove(buf)
                order.append(buf)
                return buf
        return None

    def _schedule(self) -> None:
        r = self.layout.rows_per_group
        for g in range(self.layout.groups):
            for row in range(g * r, (g + 1) * r):
                if self.row_sample[row] < 0:
                    buf = self._buffer_for(g)
                    if buf is None:
                        break
                    self._assign(row, g, buf)
        if self.to_prefill:
            self._prefill(self.to_prefill)
            self.to_prefill = []

    def _prefill(self, flat_buffers: list[int]) -> None:
        t = time.perf_counter()
        s, nb = self.s, self.layout.buffers
        by_bucket: dict[int, list[int]] = {}
        for i in flat_buffers:
            by_bucket.setdefault(bucket_length(self.prefix_lengths[i // nb, i % nb]), []).append(i)
        for length, items in sorted(by_bucket.items()):
            for j in range(0, len(items), s.prefill_batch):
                chunk = items[j : j + s.prefill_batch]
                chunk = chunk + [chunk[0]] * (s.prefill_batch - len(chunk))  # duplicates rewrite the same buffer
                tokens = np.zeros((len(chunk), length), np.int32)
                for k, i in enumerate(chunk):
                    ids = self.prompts[self.buf_q[i // nb, i % nb]][:-1]
                    tokens[k, : len(ids)] = ids
                s._cache = self.fns.prefill(s.params, s._cache, replicated(tokens, s.mesh),
                                            replicated(np.asarray(chunk, np.int32), s.mesh))
                s.stats.prefill_calls += 1
            s.stats.prefills += len(items)
        jax.block_until_ready(s._cache)
        s.stats.prefill_seconds += time.perf_counter() - t

    # ----- decoding -----

    def _state(self) -> RowState:
        sh = row_state_shardings(self.s.mesh, self.layout)
        return RowState(
            tokens=to_global(self.tokens, sh.tokens), lengths=to_global(self.lengths, sh.lengths),
            active=to_global(self.active, sh.active), finish=to_global(self.finish, sh.finish),
            question_hash=to_global(self.qhash, sh.question_hash), sample_index=to_global(self.sidx, sh.sample_index),
            row_buffer=to_global(self.row_buffer, sh.row_buffer),
            prefix_lengths=to_global(self.prefix_lengths, sh.prefix_lengths),
        )

    def _dispatch(self) -> None:
        """Starts a decode call on the current row state (returns before the device is done)."""
        s = self.s
        t = time.perf_counter()
        pending = self.assigned < len(self.prompts) * self.n
        b = self.layout.batch
        exit_after = max(1, int(b * s.refill_fraction)) if pending else b + 1
        longest = int(self.lengths[self.active].max())
        segments = cache_lib.active_segments(self.layout, longest)
        # The device state is rebuilt from the host mirror (a few KB): it carries the refills.
        s._cache, _, summary = self.fns.decode(
            s.params, s._cache, self._state(), self.seed_data, replicated(np.int32(exit_after), s.mesh),
            num_segments=segments,
        )
        self.in_flight = (summary, self.lengths.copy(), self.active.copy(), t)

    def _collect(self) -> None:
        """Waits for the call in flight; records new tokens, frees rows the device finished."""
        summary, before, was_active, t = self.in_flight
        self.in_flight = None
        summary = jax.device_get(summary)  # replicated: every process reads the same values
        s = self.s
        st = s.stats
        steps, busy = int(summary.steps), int(summary.busy)
        st.decode_calls += 1
        st.decode_steps += steps
        st.row_steps += steps * self.layout.batch
        st.generated_tokens += busy
        st.decode_seconds += time.perf_counter() - t
        lengths, active, finish = summary.lengths, summary.active, summary.finish
        for row in np.nonzero(was_active)[0]:
            if self.row_sample[row] < 0:  # freed by a stop string meanwhile: its tokens are dropped
                continue
            new = int(lengths[row] - before[row])
            self.row_ids[row].extend(summary.new_tokens[row, :new].tolist())
            if s.logprobs:
                self.row_lps[row].extend(summary.new_logprobs[row, :new].tolist())
            if not active[row]:
                self.to_finalize.append((self.row_q[row], self.row_sample[row], self.row_ids[row],
                                         _REASONS[int(finish[row])], self.row_lps[row]))
                self._free(row)
        live = np.asarray([x >= 0 for x in self.row_sample])
        self.tokens = np.asarray(summary.tokens).copy()
        self.lengths = np.asarray(lengths).copy()
        self.finish = np.asarray(finish).copy()
        self.active = np.asarray(active) & live

    def _host_work(self) -> Iterator[tuple[int, list[SampleResult]]]:
        """Stop-string checks and finished samples; runs while the next call computes."""
        s = self.s
        if s.stops:
            for row in range(self.layout.batch):
                if self.row_sample[row] < 0 or not self.active[row]:
                    continue
                ids = self.row_ids[row]
                if s.stops.maybe_stopped(ids, self.checked[row]):
                    n = s.stops.stop_length(ids)
                    if n is not None:
                        self.to_finalize.append(
                            (self.row_q[row], self.row_sample[row], ids[:n], "stop", self.row_lps[row][:n]))
                        self._free(row)
                        continue
                self.checked[row] = len(ids)
        finished = []
        for q, sample, ids, reason, lps in self.to_finalize:
            if self._finalize(q, sample, ids, reason, lps):
                finished.append(q)
        self.to_finalize = []
        for q in finished:
            s.stats.questions += 1
            s.stats.samples += self.n
            yield q, self.results.pop(q)

    def _finalize(self, q: int, sample: int, ids: list[int], reason: str, lps: list[float]) -> bool:
        """Stores one sample; True when it was its question's last."""
        s = self.s
        text = ""
        if s.tokenizer is not None:
            content = ids[:-1] if reason == "eos" else ids
            text, cut = s.stops.cut(s.tokenizer.decode(content))
            if cut and reason != "stop":
                reason = "stop"
                ids = ids[: s.stops.stop_length(ids) or len(ids)]
        result = SampleResult(text=text, num_tokens=len(ids), finish_reason=reason, token_ids=list(ids),
                              logprobs=list(lps[: len(ids)]) if s.logprobs else None)
        self.results.setdefault(q, [None] * self.n)[sample] = result
        self.done_count[q] += 1
        s.stats.kept_tokens += len(ids)
        return self.done_count[q] == self.n

    def loop(self) -> Iterator[tuple[int, list[SampleResult]]]:
        s = self.s
        t0 = time.perf_counter()
        self._schedule()
        if not self.active.any():
            return
        self._dispatch()
        while True:
            self._collect()
            self._schedule()
            if self.active.any():
                self._dispatch()  # the device works on this while the host does the rest
            if self.progress is not None:
                self.progress(s.stats)
            for item in self._host_work():
                s.stats.total_seconds += time.perf_counter() - t0
                yield item
                t0 = time.perf_counter()  # time spent by the consumer is not ours
            if self.in_flight is None:
                self._schedule()  # rows freed by stop strings may still have samples to draw
                if not self.active.any():
                    break
                self._dispatch()
        s.stats.total_seconds += time.perf_counter() - t0
