"""Storage helpers shared by the trainer, sampler, converters and synthesis (see :mod:`mathjax.io.paths`).

Imports no JAX, so data-side code can use it without starting a backend.
"""
