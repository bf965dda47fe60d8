"""Learning from the model's own samples.

GRPO-family RL (``scripts/train_rl.py``): :mod:`mathjax.rl.trainer` (``train_rl``),
advantages and the clipped loss in :mod:`mathjax.rl.grpo`, rollouts through the
sampler in :mod:`mathjax.rl.rollout`, grader rewards in :mod:`mathjax.rl.rewards`.

RFT data (rejection-sampling fine-tuning, ReST-EM rounds): :mod:`mathjax.rl.rft`
(``run_rft``), with the path selection and sample budget in
:mod:`mathjax.rl.rft_select` (no JAX) and the merge/filter step in
:mod:`mathjax.rl.rft_merge`.

Nothing is imported eagerly, so importing one submodule does not pull in the
others (nor the grader or JAX).
"""


def __getattr__(name):
    if name in ("equation_signature", "extra_samples", "select_paths"):
        from mathjax.rl import rft_select

        return getattr(rft_select, name)
    raise AttributeError(f"module 'mathjax.rl' has no attribute {name!r}")
