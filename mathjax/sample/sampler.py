"""Batched sampling: N samples per prompt, prompt KV stored once, finished rows refilled.

The batch is ``G`` prompt slots x ``R`` rows: a question's prompt KV is
computed and stored once per slot, its rows decode its samples, and finished
rows are refilled with pending samples or questions (``scheduler``).

Each sample's randomness is ``fold_in(seed, question id, sample index, step)``,
so results do not depend on batch size, refill order or device count (up to
float rounding of the logits, which can differ between matmul shapes on some
backends; a sampled token changes only if a uniform draw falls within that
rounding of a CDF boundary).

Example::

    sampler = Sampler(model, tokenizer, SamplingRules(temperature=0.7), batch_size=256,
                      max_new_tokens=512, stop=("USER:",))
    results = sampler.sample(prompts, num_samples=256, seed=0, question_ids=ids)
    results[0][3].text  # question 0, sample 3
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence

from mathjax.data.tokenize import encode_prompt
from mathjax.model import llama
from mathjax.sample import cache as cache_lib
from mathjax.sample.compiled import compiled_functions, prefix_capacity
from mathjax.sample.prefill import bucket_length
from mathjax.sample.results import SampleResult, SamplerStats
from mathjax.sample.sampling import SamplingRules
from mathjax.sample.scheduler import Run, question_hash
from mathjax.sample.stops import StopStrings

__all__ = ["Sampler", "SampleResult", "SamplerStats", "question_hash"]


def _generation_config_eos(model_dir: str | None):
    """EOS ids from a HF ``generation_config.json`` (chat models list extra end-of-turn ids there)."""
    path = os.path.join(model_dir, "generation_config.json") if model_dir else None
    if not path or not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f).get("eos_token_id")
    except (OSError, ValueError):
        return None


class Sampler:
    """Draws samples from a loaded model (``mathjax.load`` / ``from_random``).

    Args:
      model: a ``mathjax.api.Model``; its mesh places the batch (rows over
        ``data``/``fsdp``, KV heads over ``tensor``).
      tokenizer: ``mathjax.data.tokenizer.Tokenizer`` (or anything with
        ``encode``/``decode``/``eos_id``); None to pass token ids and get ids back.
      rules: temperature / top-p / top-k.
      batch_size: rows decoded together.
      max_new_tokens: tokens generated per sample at most.
      stop: stop strings (e.g. the template's ``USER:``).
      ignore_eos: generate ``max_new_tokens`` regardless of EOS (benchmarks).
      rows_per_prompt: ``R``, rows sharing one prompt slot; None picks
        ``min(batch_size / max(4, data-parallel ways), ceil(num_samples / 4))``
        (rounded down to a divisor of batch_size whose slot count splits over
        the data axis).
      kv_dtype: cache dtype (default: the model's compute dtype).
      add_bos: prepend BOS when encoding string prompts.
      prefill_batch: prompts per prefill call (fixed: one compile per bucket).
      refill_fraction: return to the host for refills once this fraction of
        rows has finished (when there is pending work).
      stop_check_interval: max decode steps between stop-string checks.
      max_steps_per_call: max decode steps per device call otherwise.
      first_segment: size of the first tail segment (see ``cache.tail_segments``).
      prefix_buffers: prompt buffers per slot (``cache``); 2 lets a row move to
        the slot's next question while its neighbours finish the current one.
      logprobs: also return each token's log-probability (``SampleResult.logprobs``,
        under softmax(logits / temperature)), e.g. for an RL trainer's log-prob gap.

    Weights: per-layer params (``Model.for_sampling()``) are used as they are;
    stacked ones are copied into per-layer arrays (the unrolled decode loop
    must not slice stacked weights: XLA hoists the slices into a second copy),
    so a caller that keeps its stacked model holds the weights twice.
    Compiled functions are shared by every Sampler of the same model, mesh and
    shapes in the process (``mathjax.sample.compiled``): a second run, or a
    second Sampler, compiles nothing.
    """

    def __init__(
        self, model, tokenizer=None, rules: SamplingRules = SamplingRules(), batch_size: int = 256,
        max_new_tokens: int = 512, stop: Sequence[str] = (), ignore_eos: bool = False,
        rows_per_prompt: int | None = None, kv_dtype: str | None = None, add_bos: bool = True,
        prefill_batch: int = 4, refill_fraction: float = 1 / 16, stop_check_interval: int = 16,
        max_steps_per_call: int = 128, first_segment: int = 64, prefix_buffers: int = 2,
        logprobs: bool = False,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.config = model.config
        self.mesh = model.mesh
        self.tokenizer = tokenizer
        self.rules = rules
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.stops = StopStrings(tokenizer, stop)
        self.ignore_eos = ignore_eos
        self.rows_per_prompt = rows_per_prompt
        self.kv_dtype = kv_dtype
        self.add_bos = add_bos
        self.prefill_batch = prefill_batch
        self.refill_fraction = refill_fraction
        self.stop_check_interval = stop_check_interval
        self.max_steps_per_call = max_steps_per_call
        self.first_segment = first_segment
        if prefix_buffers < 1:
            raise ValueError(f"prefix_buffers must be >= 1, got {prefix_buffers}")
        self.prefix_buffers = prefix_buffers
        self.logprobs = logprobs
        eos = set()
        if tokenizer is not None and getattr(tokenizer, "eos_id", None) is not None:
            eos.add(int(tokenizer.eos_id))
        for ids in (self.config.eos_token_id, _generation_config_eos(getattr(model, "path", None))):
            eos.update([ids] if isinstance(ids, int) else list(ids or []))
        self.eos_ids = tuple(sorted(eos))
        layers = model.params["layers"]
        if isinstance(layers, (list, tuple)):
            self.params = model.params  # per-layer already: the one copy
        else:
            logging.info("Sampler: copying stacked weights into per-layer arrays (the caller's stacked copy stays "
                         "alive; use model.for_sampling() to hold the weights once)")
            self.params = llama.unstack_layers(model.params)
        self.stats = SamplerStats()
        self._used: set = set()
        self._cache = None
        self._cache_layout = None

    # ----- compiled functions -----

    def _steps_per_call(self) -> int:
        return self.stop_check_interval if self.stops else self.max_steps_per_call

    def _layout_for(self, num_samples: int, longest_prompt: int) -> cache_lib.CacheLayout:
        r = self._rows_for(num_samples)
        layout = cache_lib.make_layout(self.config, self.batch_size // r, r, bucket_length(longest_prompt - 1),
                                       self.max_new_tokens, self.kv_dtype, self.first_segment,
                                       self.prefix_buffers if r > 1 else 1)  # a lone row never waits
        # Reuse the largest prompt capacity this process has compiled for these
        # shapes: a call with shorter prompts then compiles nothing new.
        return prefix_capacity(self.config, self.mesh, layout)

    def _functions(self, layout: cache_lib.CacheLayout):
        fns = compiled_functions(self.config, self.mesh, layout, self.rules, self.eos_ids, self.ignore_eos,
                                 self._steps_per_call(), self.logprobs)
        self._used.add(fns)
        return fns

    def compile_counts(self) -> dict[str, int]:
        """Compiled variants this sampler's runs used: prefill (per prompt bucket), decode (per tail window)."""
        counts = {"prefill": 0, "decode": 0}
        for fns in self._used:
            for name, n in fns.compile_counts().items():
                counts[name] += n
        return counts

    def _data_ways(self) -> int:
        return int(self.mesh.shape.get("data", 1) * self.mesh.shape.get("fsdp", 1))

    def _rows_for(self, num_samples: int) -> int:
        b = self.batch_size
        ways = self._data_ways()
        if self.rows_per_prompt:
            r = self.rows_per_prompt
            if b % r:
                raise ValueError(f"rows_per_prompt={r} must divide batch_size={b}")
            self._warn_if_replicated(b // r, ways)
            return r
        # At least 4 slots (and one per data shard), and at least 4 rounds of
        # rows per question: a slot only takes a new question once all its
        # rows are done, so a question's slowest sample idles its slot's other
        # rows; over 4+ rounds that idling is a small fraction. Smaller R costs
        # only prompt copies (G x P instead of 1 x P tokens), never compute.
        start = max(1, min(num_samples, b // max(4, ways), -(-num_samples // 4)))
        # The largest R <= start whose slot count splits over the data axis; the
        # cache and rows are sharded by slot, so any other count replicates them.
        for r in range(start, 0, -1):
            if b % r == 0 and (b // r) % ways == 0:
                return r
        r = start
        while b % r:
            r -= 1
        self._warn_if_replicated(b // r, ways)
        return r

    def _warn_if_replicated(self, slots: int, ways: int) -> None:
        if ways > 1 and slots % ways:
            logging.warning(
                "%d prompt slots (batch_size=%d) do not split over the %d data-parallel devices: every device "
                "holds and decodes the whole batch; use a batch_size that is a multiple of %d",
                slots, self.batch_size, ways, ways)

    def _encode(self, prompt) -> list[int]:
        if isinstance(prompt, str):
            if self.tokenizer is None:
                raise ValueError("string prompts need a tokenizer")
            # The SFT split rule: trailing spaces are left to the first generated
            # token, so the ids are a prefix of the training sequences.
            ids = encode_prompt(self.tokenizer, prompt, add_bos=self.add_bos)
        else:
            ids = [int(t) for t in prompt]
        if not ids:
            raise ValueError("empty prompt (no tokens and no BOS)")
        if max(ids) >= self.config.vocab_size or min(ids) < 0:
            raise ValueError(f"prompt token ids outside [0, {self.config.vocab_size})")
        return ids

    # ----- public API -----

    def sample(self, prompts: Sequence, num_samples: int = 1, seed: int = 0,
               question_ids: Sequence | None = None, progress: Callable | None = None) -> list[list[SampleResult]]:
        """``num_samples`` completions for every prompt, in prompt order then sample order."""
        out: list = [None] * len(prompts)
        for index, results in self.generate(prompts, num_samples, seed, question_ids, progress):
            out[index] = results
        return out

    def generate(
        self, prompts: Sequence, num_samples: int = 1, seed: int = 0,
        question_ids: Sequence | None = None, progress: Callable | None = None,
    ) -> Iterator[tuple[int, list[SampleResult]]]:
        """Yields ``(prompt index, samples)`` as each prompt's samples complete (any order).

        Args:
          prompts: strings (encoded with the tokenizer, BOS per ``add_bos``) or token-id lists.
          num_samples: completions per prompt.
          seed: run seed.
          question_ids: ids naming each prompt's RNG stream (default: the prompt's
            index). The same (seed, id, sample index) always gives the same sample.
          progress: called with ``self.stats`` after every decode call.
        """
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if question_ids is None:
            question_ids = [str(i) for i in range(len(prompts))]
        if len(question_ids) != len(prompts):
            raise ValueError("question_ids and prompts differ in length")
        if not prompts:
            return
        run = Run(self, [self._encode(p) for p in prompts], num_samples, seed, question_ids, progress)
        yield from run.loop()
