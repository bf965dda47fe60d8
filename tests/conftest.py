"""Test setup: 8 emulated CPU devices (set before JAX is imported), shared fixtures."""

import os

os.environ.setdefault("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in os.environ["XLA_FLAGS"]:
    os.environ["XLA_FLAGS"] += " --xla_force_host_platform_device_count=8"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


# Files whose end-to-end runs take the longest (subprocess runs, TPU-compiler fit checks). Run first,
# so that under pytest-xdist (`--dist loadfile`) the short files fill in around them instead of one
# worker finishing a long file alone at the end. Order inside a file is kept.
_LONG_FILES = (
    "test_pod_topology.py", "test_rl_grpo.py", "test_rl_gcs.py", "test_demo.py", "test_gcs_paths.py",
    "test_train_run.py", "test_sample_runner.py", "test_sample_multihost.py", "test_distributed_startup.py",
    "test_rl_fit_check.py", "test_fit_check.py", "test_sample_sampler.py", "test_convert.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(_LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order kept otherwise
