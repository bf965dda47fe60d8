"""mathjax: JAX/TPU-native SFT, sampling and grading for math reasoning with open LLMs.

Distribution name ``mathjax-llm`` (the PyPI name ``mathjax`` is an unrelated
stub); the import name is ``mathjax``.
"""

from setuptools import find_packages, setup

setup(
    name="mathjax-llm",
    version="0.1.0",
    description="JAX/TPU-native training, 256-sample decoding and grading for math-reasoning LLMs",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["mathjax", "mathjax.*"]),
    install_requires=[
        "jax>=0.7",
        "flax>=0.11",
        "optax>=0.2.4",
        "orbax-checkpoint>=0.11",
        "ml-dtypes>=0.5",
        "numpy>=1.26",
        "transformers>=4.45",
        "tokenizers>=0.20",
        "datasets>=3.0",
        "sentencepiece>=0.2",
        "protobuf>=4",
        "safetensors>=0.4",
        "sympy>=1.12,<1.15",
        "mpmath>=1.2",
        "absl-py>=2.0",
        "ml-collections>=0.1.1",
        "tqdm>=4.66",
        "matplotlib>=3.8",
        "tensorboardX>=2.6",
        # One path layer for local and gs:// workdirs, data, exports and outputs.
        "etils[epath]>=1.7",
        "gcsfs>=2024.2",
    ],
    extras_require={
        # torch only for parity tests and the peer benchmarks; pin the CPU build available here.
        "test": ["pytest>=8", "pytest-timeout>=2.3", "pytest-xdist>=3.5", "hypothesis>=6", "torch>=2.4", "gcp-storage-emulator>=2024.8"],
        "bench": ["torch>=2.4", "math-verify"],
        "tpu": ["jax[tpu]>=0.7"],
        # The TPU compiler alone, for --dry_run_topology fit checks on any host (and their tests).
        "tpu-compile": ["libtpu"],
        "cuda": ["jax[cuda12]>=0.7"],
    },
)
