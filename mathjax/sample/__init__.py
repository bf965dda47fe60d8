"""Batched sampling: N samples per question with the prompt's KV stored once.

``Sampler`` draws samples from a loaded model; ``runner.run`` turns a dataset
into a resumable, sharded JSONL of samples.
"""

from mathjax.sample.sampler import Sampler, SampleResult, SamplerStats
from mathjax.sample.sampling import SamplingRules

__all__ = ["Sampler", "SampleResult", "SamplerStats", "SamplingRules"]
