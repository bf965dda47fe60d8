"""Multi-host start-up and preemption: JAX's cluster detection (monkeypatched environments) and a
2-process CPU run over jax.distributed where a SIGTERM to one process stops both at the same step."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import jax
import pytest
from jax._src.clusters import cloud_tpu_cluster
from jax._src.clusters.cluster import ClusterEnv

from mathjax.parallel import mesh
from sft_fixtures import REPO, arithmetic_records, make_tokenizer, read_metrics, write_jsonl

_CLUSTER_VARS = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID",
                 "OMPI_MCA_orte_hnp_uri", "KUBERNETES_SERVICE_HOST", "TPU_WORKER_HOSTNAMES", "TPU_WORKER_ID",
                 "TPU_PROCESS_ADDRESSES", "MEGASCALE_COORDINATOR_ADDRESS", "MEGASCALE_NUM_SLICES",
                 "MEGASCALE_SLICE_ID", "TPU_SKIP_MDS_QUERY", "JAX_COORDINATOR_ADDRESS", "JAX_COORDINATOR_PORT")


@pytest.fixture
def env(monkeypatch):
    """No cluster variables, not a TPU VM, and jax.distributed.initialize recorded instead of run."""
    for name in _CLUSTER_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(cloud_tpu_cluster, "running_in_cloud_tpu_vm", False)
    calls = []
    monkeypatch.setattr(jax.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(jax.distributed, "initialize", lambda *a, **k: calls.append((a, k)))
    return calls


def _tpu_vm(monkeypatch, endpoints: str, worker: int) -> None:
    """A Cloud TPU VM whose metadata server lists ``endpoints`` (JAX reads it through get_metadata)."""
    metadata = {"agent-worker-number": str(worker), "worker-network-endpoints": endpoints, "tpu-env": ""}
    monkeypatch.setattr(cloud_tpu_cluster, "running_in_cloud_tpu_vm", True)
    monkeypatch.setattr(cloud_tpu_cluster, "get_metadata", lambda key: (metadata[key], 200))


def test_no_cluster_no_start(env):
    assert mesh.detect_cluster() is None
    assert mesh.initialize_distributed() is False
    assert env == []


def test_single_host_tpu_vm_is_detected_but_not_started(env, monkeypatch):
    # v4-8: the metadata server answers (JAX calls it a GCE TPU cluster) with one worker.
    _tpu_vm(monkeypatch, "10.0.0.2", worker=0)
    assert mesh.detect_cluster() is cloud_tpu_cluster.GceTpuCluster
    assert mesh.initialize_distributed() is False
    assert env == []  # no coordinator on port 8482 for a one-process run


def test_multi_host_tpu_vm_starts_and_jax_fills_in_the_rest(env, monkeypatch):
    # Plain Cloud TPU VM pod slice: no environment variable at all, only metadata.
    _tpu_vm(monkeypatch, "10.0.0.2,10.0.0.3,10.0.0.4,10.0.0.5", worker=2)
    assert mesh.initialize_distributed() is True
    assert env == [((), {})]  # JAX's own detection then supplies address, count and id:
    address, count, pid, _ = ClusterEnv.auto_detect_unset_distributed_params(None, None, None, None, None, 10)
    assert (address, count, pid) == ("10.0.0.2:8482", 4, 2)


def test_gke_tpu_and_skip_mds(env, monkeypatch):
    monkeypatch.setattr(cloud_tpu_cluster, "running_in_cloud_tpu_vm", True)
    monkeypatch.setattr(cloud_tpu_cluster, "get_metadata", lambda key: pytest.fail(f"metadata asked for {key}"))
    monkeypatch.setenv("TPU_SKIP_MDS_QUERY", "1")  # what JAX sets on a VM without TPU chips
    assert mesh.detect_cluster() is None
    monkeypatch.setenv("TPU_WORKER_HOSTNAMES", "h0,h1")
    monkeypatch.setenv("TPU_WORKER_ID", "1")
    monkeypatch.setenv("MEGASCALE_NUM_SLICES", "1")  # else JAX asks the metadata server
    assert mesh.detect_cluster() is cloud_tpu_cluster.GkeTpuCluster
    assert mesh.initialize_distributed() is True and len(env) == 1


@pytest.mark.parametrize("tasks,started", [("1", False), ("4", True)])
def test_slurm(env, monkeypatch, tasks, started):
    for name, value in (("SLURM_JOB_ID", "77"), ("SLURM_STEP_NODELIST", "node[1-4]"), ("SLURM_NTASKS", tasks),
                        ("SLURM_PROCID", "0"), ("SLURM_LOCALID", "0")):
        monkeypatch.setenv(name, value)
    assert mesh.detect_cluster().__name__ == "SlurmCluster"
    assert mesh.initialize_distributed() is started and len(env) == int(started)


def test_a_failing_detector_is_named(env, monkeypatch):
    def unreachable(key):
        raise ConnectionError("metadata.google.internal: name resolution failed")

    monkeypatch.setattr(cloud_tpu_cluster, "running_in_cloud_tpu_vm", True)
    monkeypatch.setattr(cloud_tpu_cluster, "get_metadata", unreachable)
    with pytest.raises(RuntimeError, match="GceTpuCluster.*name resolution failed.*--num_processes=1"):
        mesh.detect_cluster()
    monkeypatch.setattr(cloud_tpu_cluster, "running_in_cloud_tpu_vm", False)
    for name, value in (("SLURM_JOB_ID", "77"), ("SLURM_STEP_NODELIST", "node1"), ("SLURM_NTASKS", "many"),
                        ("SLURM_PROCID", "0"), ("SLURM_LOCALID", "0")):
        monkeypatch.setenv(name, value)
    with pytest.raises(RuntimeError, match="SlurmCluster cluster found but its process count is unreadable"):
        mesh.initialize_distributed()
    assert env == []


def test_explicit_flags(env, monkeypatch):
    _tpu_vm(monkeypatch, "10.0.0.2,10.0.0.3", worker=0)
    assert mesh.initialize_distributed(num_processes=1) is False and env == []  # one process, whatever the cluster
    with pytest.raises(ValueError, match="coordinator address"):
        mesh.initialize_distributed(num_processes=2)
    assert mesh.initialize_distributed("127.0.0.1:1234", 2, 1) is True
    assert env == [((), {"coordinator_address": "127.0.0.1:1234", "num_processes": 2, "process_id": 1})]
    monkeypatch.setattr(jax.distributed, "is_initialized", lambda: True)
    assert mesh.initialize_distributed() is True and len(env) == 1  # already running: nothing more


# ---------------------------------------------------------------------------
# End to end: 2 CPU processes, SIGTERM to one.


def worker_env(extra: dict | None = None) -> dict:
    """One CPU device per process; every compile goes to the persistent cache (the restart skips them)."""
    env = dict(os.environ, **(extra or {}))
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"
    env["JAX_PLATFORMS"] = "cpu"
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    env["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH")) if p)
    return env


# Two processes, one device each: the multi-process semantics at the least compile and step time.
TWO_PROCESS = {"mesh": "data:1,fsdp:2,tensor:1", "peak_flops_cpu": 1e11}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_workers(workdir: str, spec: dict, extra: list[list[str]], env: dict | None = None,
                  cwd: str | None = None) -> list[subprocess.Popen]:
    """Starts tests/train_worker.py as 2 jax.distributed processes (output: text pipes, stderr merged)."""
    port = _free_port()
    cmd = [sys.executable, os.path.join(REPO, "tests", "train_worker.py"), workdir, json.dumps({**TWO_PROCESS, **spec}),
           f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2"]
    return [subprocess.Popen(cmd + [f"--process_id={i}", *extra[i]], env=worker_env(env), cwd=cwd,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]


def run_workers(workdir: str, spec: dict, extra: list[list[str]], env: dict | None = None, cwd: str | None = None,
                timeout: float = 480) -> list[tuple[int, str]]:
    """Runs the 2 processes to the end; returns (returncode, output) of each."""
    procs = start_workers(workdir, spec, extra, env, cwd)
    try:
        outputs = [p.communicate(timeout=timeout)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return [(p.returncode, out) for p, out in zip(procs, outputs)]


def _tagged(output: str, tag: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith(tag + " ")]
    assert lines, f"no {tag} line in:\n{output[-3000:]}"
    return lines[-1][len(tag) + 1:]


@pytest.mark.slow
def test_sigterm_to_one_process_saves_the_same_step_on_all(tmp_path):
    tokenizer = make_tokenizer(str(tmp_path / "tok"))
    train = write_jsonl(tmp_path / "train.jsonl", arithmetic_records(160))
    # The processes agree on a step a few past the notice (step 5 or 6 on an idle host); on a loaded
    # host the notice took 14 steps to arrive once, so the run is long enough to keep that step inside it.
    steps = 48
    spec = {"data.train_files": train, "tokenizer": tokenizer, "steps": steps, "checkpoint_every": 0,
            "seed": 3, "compilation_cache_dir": str(tmp_path / "jax_cache")}
    workdir = str(tmp_path / "run")

    first = run_workers(workdir, spec, [[], ["--sigterm_at_step=2"]])
    results = [json.loads(_tagged(out, "RESULT")) for _, out in first]
    for (rc, out), result in zip(first, results):
        assert rc == 143, out[-3000:]
        assert result["preempted"]
    saved = results[0]["step"]
    assert results[1]["step"] == saved and 2 < saved < steps, results
    assert os.listdir(os.path.join(workdir, "checkpoints")) == [str(saved)]  # one checkpoint: the agreed step
    assert [m["step"] for m in read_metrics(workdir)] == list(range(1, saved + 1))

    again = run_workers(workdir, spec, [[], []])
    for rc, out in again:
        assert rc == 0, out[-3000:]
        assert json.loads(_tagged(out, "RESULT")) == {"step": steps, "preempted": False}
        assert int(_tagged(out, "FIRST_STEP")) == saved + 1  # resumed from the saved step on both
    assert [m["step"] for m in read_metrics(workdir)] == list(range(1, steps + 1))
    assert sorted(int(s) for s in os.listdir(os.path.join(workdir, "checkpoints"))) == [saved, steps]
