"""Generators: what writes the questions and answers. The protocol, and the local mathjax one.

A generator runs one *stage*: for every record ``{"id", "question": <user
message>}`` it draws ``num_samples`` completions and appends one line per
record to a JSONL file in the sampler runner's format::

    {"id", "question", "answer": null, "prompt", "samples": [{"text", "num_tokens", "finish_reason"}, ...]}

(plus ``"error"`` when a request was refused for good). Records already in the
file are skipped, so a stage resumes after a kill; a torn last line is cut
(:func:`mathjax.sample.runner.read_output`). The pipeline shards the seeds over
processes itself and hands each process's generator its own file.

Implementations: :class:`LocalGenerator` (any model ``mathjax.load`` accepts,
through :func:`mathjax.sample.runner.run`) and
:class:`mathjax.synth.http_generator.HTTPGenerator` (an OpenAI-compatible server).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class Generator(Protocol):
    """What the pipeline needs from a generator.

    Attributes:
      name: recorded in every example's provenance (``local:<model dir>``, ``http:<model>@<url>``).
      bare_answer_prompts: True when the generator wraps a bare question in the
        training template itself (a fine-tuned mathjax model), so stage (c)
        sends the question alone instead of the answer prompt.
    """

    name: str
    bare_answer_prompts: bool

    def settings(self) -> dict:
        """Everything that changes the outputs (a resumed run must match it)."""
        ...

    def run_stage(self, records: Sequence[dict], path: str, *, num_samples: int, seed: int,
                  progress: bool = True, desc: str = "") -> None:
        """Appends ``num_samples`` completions for every record not yet in ``path`` (see the module docstring)."""
        ...


class LocalGenerator:
    """A mathjax model through the project's batched, sharded, resumable sampler runner.

    Each user message is wrapped in ``template`` (the model's training chat
    format); stage (c) gets the training prompt of the bare question, exactly
    what an SFT'd model was trained to answer.

    Args:
      model, tokenizer: from ``mathjax.load`` (its mesh places the batch).
      rules: ``mathjax.sample.SamplingRules``.
      template: prompt template name (``mathjax.data.templates``).
      max_new_tokens, batch_size: as in the sampler.
      sampler_options: extra ``Sampler`` arguments.
    """

    bare_answer_prompts = True

    def __init__(self, model, tokenizer, rules, *, template: str = "xwin_math", max_new_tokens: int = 512,
                 batch_size: int = 64, sampler_options: dict | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.rules = rules
        self.template = template
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.sampler_options = sampler_options or {}
        self.name = f"local:{getattr(model, 'path', None) or 'in-memory model'}"

    def settings(self) -> dict:
        return {
            "generator": self.name, "template": self.template, "temperature": self.rules.temperature,
            "top_p": self.rules.top_p, "top_k": self.rules.top_k, "max_new_tokens": self.max_new_tokens,
        }

    def run_stage(self, records: Sequence[dict], path: str, *, num_samples: int, seed: int,
                  progress: bool = True, desc: str = "") -> None:
        from mathjax.sample import runner

        if not records:
            return
        # The pipeline already gave this process its share: one "process" here.
        runner.run(
            self.model, self.tokenizer, records, path, num_samples=num_samples, rules=self.rules,
            template=self.template, max_new_tokens=self.max_new_tokens, seed=seed, batch_size=self.batch_size,
            process_index=0, process_count=1, progress=progress, sampler_options=self.sampler_options,
        )
