"""Launch tooling: exact gcloud/SLURM command lines, the worker-side scripts, babysitter decisions.

No cloud access and no JAX: gcloud is never run (a fake runner answers the
babysitter), and the bash run on TPU workers is executed here in a temporary
$HOME standing in for a worker.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from mathjax.launch import babysit, gpu, remote, tpu, xla_flags
from mathjax.launch.remote import JobStatus
from mathjax.launch.runner import LaunchError, PrintRunner, Result, SubprocessRunner, quote, run_all

ROOT = Path(__file__).resolve().parents[1]
T = tpu.TpuTarget("sft", "us-central2-b")
TP = tpu.TpuTarget("sft", "us-central2-b", project="my-proj")
TQ = tpu.TpuTarget("sft", "us-central2-b", queued_resource="sft-qr")
LINUX_SHELL = sys.platform.startswith("linux") and all(shutil.which(t) for t in ("bash", "setsid", "ps", "awk"))


def lines(plan):
    return [quote(argv) for argv in plan]


# --------------------------------------------------------------------------- gcloud command lines


def test_create_vm_spot_and_project():
    assert quote(tpu.create_vm(T, "v4-32", spot=True)) == (
        "gcloud compute tpus tpu-vm create sft --zone=us-central2-b --accelerator-type=v4-32 "
        "--version=tpu-ubuntu2204-base --spot")
    assert quote(tpu.create_vm(TP, "v5litepod-16", version="v2-alpha-tpuv5-lite")) == (
        "gcloud compute tpus tpu-vm create sft --zone=us-central2-b --accelerator-type=v5litepod-16 "
        "--version=v2-alpha-tpuv5-lite --project=my-proj")
    assert tpu.default_runtime_version("v5p-8") == "v2-alpha-tpuv5"
    assert tpu.default_runtime_version("v6e-16") == "v2-alpha-tpuv6e"
    with pytest.raises(ValueError):
        tpu.create_vm(T, "v4-32", spot=True, preemptible=True)
    with pytest.raises(ValueError):
        tpu.TpuTarget("Bad_Name", "us-central2-b")


def test_create_queued_resource():
    spec = tpu.CreateSpec("v4-32", spot=True, queued=True, valid_until_duration="6h")
    assert lines(tpu.create_plan(TQ, spec)) == [
        "gcloud compute tpus queued-resources create sft-qr --node-id=sft --zone=us-central2-b "
        "--accelerator-type=v4-32 --runtime-version=tpu-ubuntu2204-base --spot --valid-until-duration=6h"]
    with pytest.raises(ValueError):
        tpu.create_plan(T, tpu.CreateSpec(queued=True))  # no queued resource id


def test_describe_stop_delete():
    assert quote(tpu.describe_vm_state(T)) == (
        "gcloud compute tpus tpu-vm describe sft --zone=us-central2-b '--format=value(state)'")
    assert quote(tpu.describe_queued_resource_state(TQ)) == (
        "gcloud compute tpus queued-resources describe sft-qr --zone=us-central2-b '--format=value(state.state)'")
    assert quote(tpu.stop_vm(TP)) == "gcloud compute tpus tpu-vm stop sft --zone=us-central2-b --project=my-proj"
    assert lines(tpu.delete_plan(T)) == ["gcloud compute tpus tpu-vm delete sft --zone=us-central2-b --quiet"]
    assert lines(tpu.delete_plan(TQ)) == [
        "gcloud compute tpus queued-resources delete sft-qr --zone=us-central2-b --force --quiet"]


def test_install_plan_tarball(tmp_path):
    tree = tmp_path / "tree"
    for rel in ("setup.py", "mathjax/launch/tpu.py", ".git/HEAD", ".venv/bin/python", "mathjax/__pycache__/a.pyc",
                "workdir1/ckpt", "mathjax_llm.egg-info/PKG-INFO"):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text("x")
    plan = tpu.install_plan(T, tpu.InstallSpec(local_dir=str(tree), tarball=str(tmp_path / "src.tar.gz")))
    tar, scp, ssh = plan
    assert tar[:5] == ["tar", "-czf", str(tmp_path / "src.tar.gz"), "-C", str(tree)] and tar[-1] == "."
    assert quote(scp) == (f"gcloud compute tpus tpu-vm scp {tmp_path}/src.tar.gz sft:mathjax-src.tar.gz "
                          "--zone=us-central2-b --worker=all")
    assert ssh[:8] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "sft", "--zone=us-central2-b", "--worker=all"]
    script = ssh[8].removeprefix("--command=")
    assert 'tar -xzf "$HOME/mathjax-src.tar.gz" -C "$HOME/mathjax"' in script
    assert "\"$UV\" venv --quiet --allow-existing --python 3.11 .venv" in script
    assert "-e '.[tpu]'" in script
    assert shlex.split(quote(ssh)) == ssh  # the printed line is exactly this argv
    _bash_syntax_ok(script)
    # The tar step itself: the tree without VCS data, venv, caches and run dirs.
    if shutil.which("tar"):
        subprocess.run(tar, check=True)
        with tarfile.open(tmp_path / "src.tar.gz") as f:
            files = sorted(m.name for m in f.getmembers() if m.isfile())
        assert files == ["./mathjax/launch/tpu.py", "./setup.py"]


def test_install_plan_git():
    (ssh,) = tpu.install_plan(TP, tpu.InstallSpec(repo_url="https://github.com/me/mathjax.git", ref="v0.1"))
    script = ssh[-1].removeprefix("--command=")
    assert ssh[6:9] == ["--zone=us-central2-b", "--project=my-proj", "--worker=all"]
    assert 'git clone --quiet https://github.com/me/mathjax.git "$HOME/mathjax"' in script
    assert "git checkout --quiet --force --detach origin/v0.1" in script
    _bash_syntax_ok(script)


def test_run_on_all_workers_with_per_worker_logs():
    job = tpu.JobSpec("python scripts/train_sft.py --config=configs/llama2_7b_sft.py --workdir=gs://b/r1",
                      env={"LIBTPU_INIT_ARGS": xla_flags.join(xla_flags.TPU_COLLECTIVE_OVERLAP)})
    mkdir, ssh = tpu.run_plan(T, job, logs_dir="tpu_logs/sft")
    assert mkdir == ["mkdir", "-p", "tpu_logs/sft"]
    assert ssh[:8] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "sft", "--zone=us-central2-b", "--worker=all"]
    assert ssh[-1] == "--output-directory=tpu_logs/sft"
    script = ssh[8].removeprefix("--command=")
    assert "setsid nohup bash -c mathjax_job >> \"$HOME/mathjax_logs/train.log\" 2>&1 < /dev/null &" in script
    assert "( python scripts/train_sft.py --config=configs/llama2_7b_sft.py --workdir=gs://b/r1 )" in script
    assert "export LIBTPU_INIT_ARGS='--xla_tpu_enable_async_collective_fusion=true " in script
    assert shlex.split(quote(ssh)) == ssh
    _bash_syntax_ok(script)
    # Without following, nothing is streamed and no local dir is needed.
    (detached,) = tpu.run_plan(T, job, logs_dir="tpu_logs/sft", follow=False)
    assert not any(a.startswith("--output-directory") for a in detached)


def test_logs_status_and_stop_job():
    assert lines(tpu.logs_plan(T, "train", "tpu_logs/sft", lines=50)) == [
        "mkdir -p tpu_logs/sft",
        "gcloud compute tpus tpu-vm ssh sft --zone=us-central2-b --worker=all "
        "'--command=tail -n 50 \"$HOME/mathjax_logs/train.log\"' --output-directory=tpu_logs/sft"]
    assert lines(tpu.logs_plan(T, "train", lines=0, follow=True, worker="0")) == [
        "gcloud compute tpus tpu-vm ssh sft --zone=us-central2-b --worker=0 "
        "'--command=tail -n +1 -F \"$HOME/mathjax_logs/train.log\"'"]
    (stop,) = tpu.stop_job_plan(T, "train", timeout_s=60)
    assert 'kill -TERM -- "-$P"' in stop[-1] and "$(seq 120)" in stop[-1]
    _bash_syntax_ok(tpu.job_status_command(T)[-1].removeprefix("--command="))
    with pytest.raises(ValueError):
        remote.launch_script("bad name", "true")


def test_dry_run_prints_one_line_per_command_and_runs_nothing(capsys):
    run_all(tpu.create_plan(T, tpu.CreateSpec(spot=True)) + tpu.delete_plan(T), PrintRunner())
    out = capsys.readouterr().out.splitlines()
    assert out == ["gcloud compute tpus tpu-vm create sft --zone=us-central2-b --accelerator-type=v4-32 "
                   "--version=tpu-ubuntu2204-base --spot",
                   "gcloud compute tpus tpu-vm delete sft --zone=us-central2-b --quiet"]


def test_missing_gcloud_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(LaunchError, match="Google Cloud SDK.*--dry_run"):
        SubprocessRunner()(["gcloud", "version"])


# --------------------------------------------------------------------------- worker-side scripts


def _bash_syntax_ok(script: str) -> None:
    if shutil.which("bash"):
        proc = subprocess.run(["bash", "-n", "-c", script], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(not LINUX_SHELL, reason="worker scripts target Linux (setsid, GNU tail/stat)")
def test_worker_scripts_launch_status_stop(tmp_path):
    """Runs the exact bash the workers get, in a fake $HOME: launch, status, follow, SIGTERM stop."""
    (tmp_path / "mathjax/.venv/bin").mkdir(parents=True)
    (tmp_path / "mathjax/.venv/bin/activate").write_text("export IN_VENV=yes\n")
    env = dict(os.environ, HOME=str(tmp_path))

    def sh(script):
        proc = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60)
        return proc.returncode, proc.stdout

    def status():
        return remote.parse_status(sh(remote.status_script("train"))[1])

    assert status() is JobStatus.ABSENT
    # follow=True streams the job's output and exits with its status; `exit` in the command is contained.
    rc, out = sh(remote.launch_script("train", 'echo "venv=$IN_VENV x=$X"; exit 3', env={"X": "a b'c"},
                                      follow=True))
    assert rc == 3 and "venv=yes x=a b'c" in out
    assert status() is JobStatus.FAILED
    # A job that checkpoints on SIGTERM: stop waits for it and it counts as interrupted, not done.
    handler = ("import signal, sys, time\n"
               "signal.signal(signal.SIGTERM, lambda *a: (print('saved', flush=True), sys.exit(0)))\n"
               "print('training', flush=True); time.sleep(30)\n")
    (tmp_path / "job.py").write_text(handler)
    rc, out = sh(remote.launch_script("train", f"{shlex.quote(sys.executable)} {tmp_path}/job.py"))
    assert rc == 0 and "launched train" in out
    deadline = time.time() + 10
    while "training" not in (tmp_path / "mathjax_logs/train.log").read_text() and time.time() < deadline:
        time.sleep(0.05)
    assert status() is JobStatus.RUNNING
    rc, out = sh(remote.stop_job_script("train"))
    assert "stopped train" in out
    assert status() is JobStatus.INTERRUPTED
    assert sh(remote.tail_script("train", 1))[1] == "saved\n"
    sh(remote.launch_script("train", "true"))
    deadline = time.time() + 10
    while status() is JobStatus.RUNNING and time.time() < deadline:
        time.sleep(0.05)
    assert status() is JobStatus.DONE


def test_parse_status_over_workers():
    p = remote.STATUS_PREFIX
    assert remote.parse_status(f"{p} exited 0\n{p} exited 0\n") is JobStatus.DONE
    assert remote.parse_status(f"{p} running\n{p} exited 1\n") is JobStatus.FAILED
    assert remote.parse_status(f"Using ssh batch size of 1.\n{p} running\n{p} exited 0\n") is JobStatus.RUNNING
    assert remote.parse_status(f"{p} interrupted 0\n{p} exited 0\n") is JobStatus.INTERRUPTED
    assert remote.parse_status(f"{p} exited 143\n{p} exited 143\n") is JobStatus.INTERRUPTED  # saved on SIGTERM
    assert remote.parse_status(f"{p} absent\n{p} exited 0\n") is JobStatus.ABSENT
    assert remote.parse_status("ssh: connect to host 10.0.0.2 port 22: Connection refused\n") is JobStatus.UNKNOWN


# --------------------------------------------------------------------------- babysitter


def test_decide():
    d = babysit.decide
    O = babysit.Observation  # noqa: E741 (short on purpose: a table of cases)
    assert d(O("PREEMPTED"))[0] is babysit.Action.RECREATE
    assert d(O(babysit.MISSING))[0] is babysit.Action.RECREATE
    assert d(O(babysit.UNKNOWN))[0] is babysit.Action.WAIT  # network trouble never deletes a VM
    assert d(O("CREATING"))[0] is babysit.Action.WAIT
    assert d(O("STOPPED"))[0] is babysit.Action.GIVE_UP
    assert d(O("READY", JobStatus.RUNNING))[0] is babysit.Action.WAIT
    assert d(O("READY", JobStatus.ABSENT))[0] is babysit.Action.LAUNCH
    assert d(O("READY", JobStatus.INTERRUPTED))[0] is babysit.Action.LAUNCH
    assert d(O("READY", JobStatus.DONE))[0] is babysit.Action.DONE
    assert d(O("READY", JobStatus.FAILED), failures=2, max_failures=3)[0] is babysit.Action.LAUNCH
    assert d(O("READY", JobStatus.FAILED), failures=3, max_failures=3)[0] is babysit.Action.GIVE_UP
    assert d(O("READY", JobStatus.UNKNOWN))[0] is babysit.Action.WAIT
    assert d(O(babysit.UNKNOWN, qr_state="WAITING_FOR_RESOURCES"))[0] is babysit.Action.WAIT
    assert d(O(babysit.UNKNOWN, qr_state="SUSPENDED"))[0] is babysit.Action.RECREATE
    assert d(O("PREEMPTED", qr_state="ACTIVE"))[0] is babysit.Action.RECREATE


class FakeGcloud:
    """Answers describe / job-status calls from scripted lists; every other command succeeds."""

    def __init__(self, vm_states, job_statuses, qr_states=()):
        self.vm, self.jobs, self.qr = list(vm_states), list(job_statuses), list(qr_states)
        self.calls: list[list[str]] = []

    def __call__(self, argv, *, capture=False):
        argv = list(argv)
        self.calls.append(argv)
        if argv[3:5] == ["tpu-vm", "describe"]:
            return self._state(self.vm.pop(0))
        if argv[3:5] == ["queued-resources", "describe"]:
            return self._state(self.qr.pop(0))
        if argv[3:5] == ["tpu-vm", "ssh"] and remote.STATUS_PREFIX in argv[8]:
            return Result(0, "".join(f"{remote.STATUS_PREFIX} {s}\n" for s in self.jobs.pop(0)))
        return Result(0)

    @staticmethod
    def _state(state):
        if state == "NOT_FOUND":
            return Result(1, "", "ERROR: (gcloud.compute.tpus.tpu-vm.describe) NOT_FOUND: Resource was not found")
        if state == "ERROR":
            return Result(1, "", "ERROR: gcloud crashed (ConnectionError)")
        return Result(0, state + "\n")

    def kinds(self):
        """Each call as a short label: describe / status / delete / create / tar / scp / install / run."""
        out = []
        for a in self.calls:
            if a[0] == "tar":
                out.append("tar")
            elif a[4] == "ssh":
                cmd = a[8]
                out.append("status" if remote.STATUS_PREFIX in cmd else "install" if "pip install" in cmd else "run")
            else:
                out.append(a[4])
        return out


def _sitter(fake, target=T, queued=False, **kw):
    return babysit.Babysitter(
        target, tpu.CreateSpec("v4-32", spot=True, queued=queued),
        tpu.InstallSpec(repo_url="https://github.com/me/mathjax.git"),
        tpu.JobSpec("python scripts/train_sft.py --config=configs/llama2_7b_sft.py --workdir=gs://b/r1"),
        fake, poll_s=0, sleep=lambda s: None, log=lambda m: None, **kw)


def test_babysit_recreates_after_preemption_then_relaunches():
    # PREEMPTED -> delete + create; READY with no job -> install + run; running; finished.
    fake = FakeGcloud(["PREEMPTED", "READY", "READY", "READY"],
                      [["absent"] * 4, ["running"] * 4, ["exited 0"] * 4])
    assert _sitter(fake).run(max_steps=10) == 0
    assert fake.kinds() == ["describe", "delete", "create",
                            "describe", "status", "install", "run",
                            "describe", "status",
                            "describe", "status"]
    create = next(a for a in fake.calls if a[4] == "create")
    assert quote(create) == ("gcloud compute tpus tpu-vm create sft --zone=us-central2-b --accelerator-type=v4-32 "
                             "--version=tpu-ubuntu2204-base --spot")
    run = next(a for a, k in zip(fake.calls, fake.kinds(), strict=True) if k == "run")
    assert "setsid nohup bash -c mathjax_job" in run[8] and not run[-1].startswith("--output-directory")


def test_babysit_waits_on_errors_and_caps_failures():
    # A describe error (network) waits without deleting; crash loop gives up after max_failures.
    fake = FakeGcloud(["ERROR", "READY", "READY", "READY"], [["exited 1"], ["exited 1"], ["exited 1"]])
    assert _sitter(fake, max_failures=2).run(max_steps=10) == 1
    assert "delete" not in fake.kinds() and fake.kinds().count("run") == 2


def test_babysit_queued_resource_suspended():
    fake = FakeGcloud(["READY"], [["exited 0"]], qr_states=["SUSPENDED", "WAITING_FOR_RESOURCES", "ACTIVE"])
    assert _sitter(fake, target=TQ, queued=True).run(max_steps=10) == 0
    assert fake.kinds() == ["describe", "delete", "create", "describe", "describe", "describe", "status"]
    assert quote(fake.calls[1]) == ("gcloud compute tpus queued-resources delete sft-qr --zone=us-central2-b "
                                    "--force --quiet")
    assert fake.calls[2][3:6] == ["queued-resources", "create", "sft-qr"]


# --------------------------------------------------------------------------- GPU / SLURM


def test_slurm_script():
    argv = gpu.train_argv("configs/llama2_7b_sft.py", "/shared/runs/r1", mesh="data:1,fsdp:-1,tensor:1",
                          init_from="/shared/hf/Llama-2-7b-hf", extra=["--config.micro_batches=2"])
    spec = gpu.SlurmSpec(nodes=2, gpus_per_node=8, partition="gpu", repo_dir="/shared/mathjax")
    script = gpu.slurm_script(spec, argv, gpu.gpu_env())
    for line in ["#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=8", "#SBATCH --gpus-per-node=8",
                 "#SBATCH --partition=gpu", "#SBATCH --requeue", "#SBATCH --signal=TERM@300",
                 "cd /shared/mathjax", "source .venv/bin/activate",
                 "export XLA_PYTHON_CLIENT_MEM_FRACTION=0.9",
                 "export XLA_FLAGS=--xla_gpu_enable_latency_hiding_scheduler=true",
                 "srun --kill-on-bad-exit=1 python scripts/train_sft.py --config=configs/llama2_7b_sft.py "
                 "--workdir=/shared/runs/r1 --config.mesh=data:1,fsdp:-1,tensor:1 "
                 "--config.init_from=/shared/hf/Llama-2-7b-hf --config.micro_batches=2"]:
        assert line in script.splitlines(), line
    assert "--gpus-per-task" not in script  # each process must see all GPUs of its node
    # All #SBATCH lines come before the first command (sbatch ignores later ones).
    body = [line for line in script.splitlines() if line and not line.startswith("#")]
    assert script.index(body[0]) > script.rindex("#SBATCH")
    _bash_syntax_ok(script)
    explicit = gpu.slurm_script(gpu.SlurmSpec(explicit_coordinator=True), argv, {})
    assert '--coordinator_address="$HEAD:12345" --num_processes="$SLURM_NTASKS" --process_id="$SLURM_PROCID"' \
        in explicit
    _bash_syntax_ok(explicit)


def test_single_node_and_host_commands():
    argv = gpu.train_argv("configs/llama2_7b_sft.py", "/runs/r1", mesh="fsdp:8")
    assert gpu.single_node_command(argv, gpu.gpu_env()) == (
        "XLA_PYTHON_CLIENT_MEM_FRACTION=0.9 XLA_FLAGS=--xla_gpu_enable_latency_hiding_scheduler=true "
        "python scripts/train_sft.py --config=configs/llama2_7b_sft.py --workdir=/runs/r1 --config.mesh=fsdp:8")
    h0, h1 = gpu.host_commands(["node-a", "node-b"], argv, {}, port=5555)
    assert h0.endswith("--coordinator_address=node-a:5555 --num_processes=2 --process_id=0")
    assert h1.endswith("--coordinator_address=node-a:5555 --num_processes=2 --process_id=1")


# --------------------------------------------------------------------------- the scripts themselves


def _script(path, *args):
    proc = subprocess.run([sys.executable, str(ROOT / path), *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_scripts_dry_run_print_exact_commands():
    out = _script("scripts/tpu/create.py", "--name=sft", "--zone=us-central2-b", "--spot", "--queued_resource",
                  "--dry_run")
    assert out == ("gcloud compute tpus queued-resources create sft-qr --node-id=sft --zone=us-central2-b "
                   "--accelerator-type=v4-32 --runtime-version=tpu-ubuntu2204-base --spot\n")
    out = _script("scripts/tpu/babysit.py", "--name=sft", "--zone=us-central2-b", "--spot", "--dry_run",
                  "--repo_url=https://github.com/me/mathjax.git", "--command=python scripts/train_sft.py")
    printed = [shlex.split(line) for line in out.splitlines()]
    assert [a[3:5] for a in printed] == [["tpu-vm", "describe"], ["tpu-vm", "ssh"], ["tpu-vm", "delete"],
                                         ["tpu-vm", "create"], ["tpu-vm", "ssh"], ["tpu-vm", "ssh"]]
    out = _script("scripts/gpu/launch_slurm.py", "--workdir=/w", "--nodes=2", "--dry_run")
    assert out.startswith("#!/bin/bash\n") and "#SBATCH --nodes=2\n" in out
    # The launch library never imports JAX (it runs on laptops without accelerators).
    code = "import sys, mathjax.launch.babysit, mathjax.launch.gpu; assert 'jax' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_gpu_xla_flags_exist():
    """Every GPU flag the docs recommend parses (an unknown name in XLA_FLAGS aborts JAX at start-up)."""
    pytest.importorskip("jax")
    flags_value = xla_flags.join(xla_flags.GPU_DEFAULT + xla_flags.GPU_OPTIONAL)
    env = dict(os.environ, XLA_FLAGS=flags_value, JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", "import jax; jax.numpy.zeros(1).block_until_ready()"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
