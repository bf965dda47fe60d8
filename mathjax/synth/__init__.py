"""Synthetic SFT data, after Xwin-Math: new questions from seed questions, verified, answered, filtered.

::

    from mathjax import synth
    seeds = synth.load_seeds("gsm8k_train.jsonl", limit=1000)
    gen = synth.HTTPGenerator("http://localhost:8000/v1", "my-model", concurrency=32)
    stats = synth.run(seeds, gen, "synth_out", synth.SynthOptions(num_answers=4)).stats
    # synth_out/synthetic.jsonl is the SFT trainer's input; stats.json says what was dropped and why.

Modules: ``prompts`` (editable stage prompts), ``generators`` (protocol, local
mathjax sampler), ``http_generator`` (OpenAI-compatible server), ``parse``
(reading replies), ``filters`` (quality filters, answer agreement), ``dedup``
(MinHash near-duplicates), ``decontam`` (n-gram leakage check), ``pipeline``.
Importing this package does not import JAX (the local generator does, when used).
"""

from mathjax.synth.decontam import TestSetIndex, build_index
from mathjax.synth.dedup import DedupOptions, near_duplicates
from mathjax.synth.filters import DROP_REASONS, FilterOptions
from mathjax.synth.generators import Generator, LocalGenerator
from mathjax.synth.http_generator import GeneratorError, HTTPGenerator
from mathjax.synth.pipeline import SynthOptions, finalize, load_seeds, run
from mathjax.synth.prompts import PROMPT_SETS, PromptSet, load_prompt_sets

__all__ = [
    "DROP_REASONS", "DedupOptions", "FilterOptions", "Generator", "GeneratorError", "HTTPGenerator",
    "LocalGenerator", "PROMPT_SETS", "PromptSet", "SynthOptions", "TestSetIndex", "build_index", "finalize",
    "load_prompt_sets", "load_seeds", "near_duplicates", "run",
]
