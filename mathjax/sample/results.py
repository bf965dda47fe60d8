"""What the sampler returns: one ``SampleResult`` per completion, and run counters."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class SampleResult:
    """One completion.

    Attributes:
      text: decoded completion, without EOS and cut before the first stop string.
      num_tokens: generated tokens used, counting the EOS or the stop string's tokens.
      finish_reason: ``"eos"``, ``"stop"`` (a stop string) or ``"length"`` (max_new_tokens).
      token_ids: the ``num_tokens`` generated ids.
      logprobs: their log-probabilities (``Sampler(logprobs=True)``), else None.
    """

    text: str
    num_tokens: int
    finish_reason: str
    token_ids: list[int]
    logprobs: list[float] | None = None

    def to_json(self) -> dict:
        return {"text": self.text, "num_tokens": self.num_tokens, "finish_reason": self.finish_reason}


@dataclasses.dataclass
class SamplerStats:
    """Counters of one or more ``generate`` calls (cumulative on the Sampler)."""

    questions: int = 0
    samples: int = 0
    generated_tokens: int = 0  # tokens the device generated (incl. any past a stop string)
    kept_tokens: int = 0  # tokens in returned samples
    decode_steps: int = 0
    decode_calls: int = 0
    prefill_calls: int = 0
    prefills: int = 0  # prompts prefilled (a question re-prefilled into a second slot counts twice)
    row_steps: int = 0  # decode steps x batch rows
    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0
    total_seconds: float = 0.0
    kv_bytes_shared: int = 0  # cache bytes, prompt stored once per slot
    kv_bytes_unshared: int = 0  # bytes if every row repeated its prompt
    batch: int = 0
    groups: int = 0
    rows_per_group: int = 0

    @property
    def slot_utilisation(self) -> float:
        """Fraction of row-steps in which a row was generating a sample.

        Tokens a row generated past a stop string before the host's next check
        count as busy; ``generated_tokens - kept_tokens`` measures them.
        """
        return self.generated_tokens / self.row_steps if self.row_steps else 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.generated_tokens / self.total_seconds if self.total_seconds else 0.0

    def summary(self) -> str:
        mib = 1024 * 1024
        return (
            f"{self.questions} questions, {self.samples} samples ({self.kept_tokens} tokens kept), "
            f"{self.generated_tokens} tokens generated in "
            f"{self.total_seconds:.1f}s ({self.tokens_per_second:.0f} tok/s; prefill {self.prefill_seconds:.1f}s, "
            f"decode {self.decode_seconds:.1f}s); slot utilisation {self.slot_utilisation:.1%}; "
            f"batch {self.batch} = {self.groups} prompt slots x {self.rows_per_group} rows; KV cache "
            f"{self.kv_bytes_shared / mib:.1f} MiB shared vs {self.kv_bytes_unshared / mib:.1f} MiB unshared"
        )
