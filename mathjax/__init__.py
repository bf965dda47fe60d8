"""mathjax: JAX training and sampling for math reasoning with open LLMs.

``mathjax.load`` and ``mathjax.Model`` are imported lazily so that
``from mathjax import grader`` never pulls in JAX.
"""

__version__ = "0.1.0"


def __getattr__(name):
    if name in ("load", "Model", "from_random"):
        from mathjax import api

        return getattr(api, name)
    if name == "ModelConfig":
        from mathjax.model.config import ModelConfig

        return ModelConfig
    if name in ("api", "model", "parallel", "convert", "data", "train", "sample", "synth"):
        import importlib

        return importlib.import_module(f"mathjax.{name}")
    raise AttributeError(f"module 'mathjax' has no attribute {name!r}")
