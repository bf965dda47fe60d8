"""Keeps a training job alive on preemptible (spot) TPU VMs and queued resources.

Training needs nothing from the babysitter but a re-run: the workdir resumes
from its latest checkpoint and SIGTERM saves before exiting. So the loop is

    observe (queued resource state, VM state, job status on every worker)
    -> decide (:func:`decide`, a pure function)
    -> act: wait | re-create the VM | (re)install + launch the job | stop.

Only a state that says the VM is gone (``PREEMPTED``, ``TERMINATED``, not
found; a ``SUSPENDED``/``FAILED`` queued resource) triggers a delete and
re-create; an unreadable state (network error, SSH failure) only waits, so a
flaky connection never destroys a healthy VM.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import time
from typing import Callable

from mathjax.launch import tpu
from mathjax.launch.remote import JobStatus, parse_status
from mathjax.launch.runner import Argv, Result, Runner, quote

MISSING = "MISSING"  # describe said NOT_FOUND
UNKNOWN = "UNKNOWN"  # describe failed for another reason, or printed nothing

VM_GONE = frozenset({"PREEMPTED", "TERMINATED", MISSING})
VM_STOPPED = frozenset({"STOPPED"})  # a person stopped it: do not delete it behind their back
QR_GONE = frozenset({"SUSPENDING", "SUSPENDED", "FAILED", MISSING})
QR_WAITING = frozenset({"CREATING", "ACCEPTED", "WAITING_FOR_RESOURCES", "PROVISIONING", "DELETING"})


class Action(enum.Enum):
    WAIT = "wait"
    RECREATE = "recreate"  # delete what is left, create again
    LAUNCH = "launch"  # install (idempotent) and start the job; it resumes from the workdir
    DONE = "done"
    GIVE_UP = "give_up"


@dataclasses.dataclass(frozen=True)
class Observation:
    vm_state: str
    job: JobStatus | None = None  # None: not asked (VM not READY)
    qr_state: str | None = None  # None: not a queued resource


def decide(obs: Observation, failures: int = 0, max_failures: int = 3) -> tuple[Action, str]:
    """What to do about one observation, and why (for the log).

    ``failures`` counts relaunches after the job itself failed (non-zero exit
    without SIGTERM): a crash loop from a bug stops after ``max_failures``.
    Preemptions and SIGTERM interruptions do not count.
    """
    if obs.qr_state is not None:
        if obs.qr_state in QR_GONE:
            return Action.RECREATE, f"queued resource is {obs.qr_state}"
        if obs.qr_state in QR_WAITING or obs.qr_state == UNKNOWN:
            return Action.WAIT, f"queued resource is {obs.qr_state}"
    if obs.vm_state in VM_GONE:
        return Action.RECREATE, f"VM is {obs.vm_state}"
    if obs.vm_state in VM_STOPPED:
        return Action.GIVE_UP, "VM was stopped (by a person?); start or delete it, then babysit again"
    if obs.vm_state != "READY":
        return Action.WAIT, f"VM is {obs.vm_state}"
    job = obs.job or JobStatus.UNKNOWN
    if job is JobStatus.RUNNING:
        return Action.WAIT, "job is running"
    if job is JobStatus.DONE:
        return Action.DONE, "job finished with exit status 0 on every worker"
    if job is JobStatus.FAILED:
        if failures >= max_failures:
            return Action.GIVE_UP, f"job failed {failures + 1} times (max_failures={max_failures}); see its logs"
        return Action.LAUNCH, f"job failed (relaunch {failures + 1} of {max_failures})"
    if job in (JobStatus.ABSENT, JobStatus.INTERRUPTED):
        return Action.LAUNCH, f"job is {job.value} on a READY VM"
    return Action.WAIT, "could not read the job status (SSH failed?)"


def parse_describe(result: Result) -> str:
    """``describe --format=value(...)`` output -> state, :data:`MISSING` or :data:`UNKNOWN`."""
    if result.returncode == 0:
        return result.stdout.strip().splitlines()[-1].strip() if result.stdout.strip() else UNKNOWN
    if "NOT_FOUND" in result.stderr or "was not found" in result.stderr:
        return MISSING
    return UNKNOWN


class Babysitter:
    """Observe-decide-act loop over one TPU VM (or queued resource) and one job."""

    def __init__(self, target: tpu.TpuTarget, create: tpu.CreateSpec, install: tpu.InstallSpec,
                 job: tpu.JobSpec, runner: Runner, poll_s: float = 60.0, max_failures: int = 3,
                 max_recreates: int | None = None, sleep: Callable[[float], None] = time.sleep,
                 log: Callable[[str], None] = logging.info):
        if create.queued != bool(target.queued_resource):
            raise ValueError("queued-resource babysitting needs both CreateSpec.queued and target.queued_resource")
        self.target, self.create, self.install, self.job = target, create, install, job
        self.runner, self.poll_s, self.sleep, self.log = runner, poll_s, sleep, log
        self.max_failures, self.max_recreates = max_failures, max_recreates
        self.failures = 0
        self.recreates = 0

    # Plans (also what a dry run prints).
    def probe_commands(self) -> list[Argv]:
        cmds = [tpu.describe_queued_resource_state(self.target)] if self.target.queued_resource else []
        return cmds + [tpu.describe_vm_state(self.target), tpu.job_status_command(self.target, self.job.name)]

    def recreate_plan(self) -> list[Argv]:
        return tpu.delete_plan(self.target) + tpu.create_plan(self.target, self.create)

    def launch_plan(self) -> list[Argv]:
        return tpu.install_plan(self.target, self.install) + tpu.run_plan(self.target, self.job, follow=False)

    def observe(self) -> Observation:
        qr_state = None
        if self.target.queued_resource:
            qr_state = parse_describe(self.runner(tpu.describe_queued_resource_state(self.target), capture=True))
            if qr_state != "ACTIVE":
                return Observation(vm_state=UNKNOWN, qr_state=qr_state)
        vm_state = parse_describe(self.runner(tpu.describe_vm_state(self.target), capture=True))
        job = None
        if vm_state == "READY":
            status = self.runner(tpu.job_status_command(self.target, self.job.name), capture=True)
            job = parse_status(status.stdout)
        return Observation(vm_state=vm_state, job=job, qr_state=qr_state)

    def step(self) -> Action:
        """One observation, one decision, one action; returns the action taken."""
        obs = self.observe()
        action, reason = decide(obs, self.failures, self.max_failures)
        self.log(f"[babysit] {action.value}: {reason}")
        if action is Action.RECREATE:
            if self.max_recreates is not None and self.recreates >= self.max_recreates:
                self.log(f"[babysit] give up: already re-created {self.recreates} times (max_recreates)")
                return Action.GIVE_UP
            self.recreates += 1
            delete, *create = self.recreate_plan()
            self._try([delete], tolerate_failure=True)  # nothing to delete is fine
            self._try(create)
        elif action is Action.LAUNCH:
            if obs.job is JobStatus.FAILED:
                self.failures += 1
            self._try(self.launch_plan())
        return action

    def run(self, max_steps: int | None = None) -> int:
        """Loops until the job is done (returns 0) or hopeless (returns 1)."""
        steps = 0
        while max_steps is None or steps < max_steps:
            steps += 1
            action = self.step()
            if action is Action.DONE:
                return 0
            if action is Action.GIVE_UP:
                return 1
            self.sleep(self.poll_s)
        return 1

    def _try(self, plan: list[Argv], tolerate_failure: bool = False) -> bool:
        # A failed create (no capacity) or install (transient SSH error) is retried
        # at the next poll instead of killing the babysitter.
        for argv in plan:
            result = self.runner(argv)
            if result.returncode != 0:
                if not tolerate_failure:
                    self.log(f"[babysit] failed (exit {result.returncode}), retrying at the next poll: {quote(argv)}")
                return False
        return True
