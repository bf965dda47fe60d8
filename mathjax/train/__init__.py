"""Supervised fine-tuning: config schema, sharded train state, jitted steps, orbax checkpoints, metrics.

Entry point: :func:`mathjax.train.trainer.train` (imported lazily so that
importing this package stays cheap).
"""


def __getattr__(name):
    if name in ("train", "TrainResult"):
        from mathjax.train import trainer

        return getattr(trainer, name)
    if name == "base_config":
        from mathjax.train.config import base_config

        return base_config
    raise AttributeError(f"module 'mathjax.train' has no attribute {name!r}")
