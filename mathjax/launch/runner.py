"""Running (or only printing) the command lines the launch builders produce.

Every builder in :mod:`mathjax.launch` returns plain argv lists; this module is
the one place that turns them into processes. A dry run prints each argv as one
shell-quoted line (``shlex.join``) on stdout and runs nothing, so what it prints
can be pasted into a shell as is.
"""

from __future__ import annotations

import dataclasses
import shlex
import shutil
import subprocess
import sys
from typing import Protocol, Sequence, TextIO

Argv = list[str]

GCLOUD_MISSING = (
    "`{tool}` was not found on PATH. Install the Google Cloud SDK "
    "(https://cloud.google.com/sdk/docs/install), then run `gcloud auth login` and "
    "`gcloud config set project PROJECT`; or add --dry_run to print the commands instead."
)


class LaunchError(RuntimeError):
    """A launch step could not run or failed; the message says which and why."""


@dataclasses.dataclass(frozen=True)
class Result:
    """Exit status and (when captured) output of one command."""

    returncode: int
    stdout: str = ""
    stderr: str = ""


class Runner(Protocol):
    """Runs one argv; ``capture=True`` returns its stdout/stderr instead of streaming them."""

    def __call__(self, argv: Sequence[str], *, capture: bool = False) -> Result: ...


def quote(argv: Sequence[str]) -> str:
    """The exact shell line for ``argv`` (each argument quoted only where needed)."""
    return shlex.join(argv)


class PrintRunner:
    """Dry run: prints every command as one shell-quoted line and runs nothing.

    Every command "succeeds" with empty output; ``printed`` keeps the lines.
    """

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream
        self.printed: list[str] = []

    def __call__(self, argv: Sequence[str], *, capture: bool = False) -> Result:
        line = quote(argv)
        self.printed.append(line)
        print(line, file=self.stream or sys.stdout, flush=True)
        return Result(0)


class SubprocessRunner:
    """Runs commands for real; a missing executable is a :class:`LaunchError` that says how to fix it.

    ``timeout_s`` bounds each command (a hung SSH session must not stall a
    babysitter forever); a timed-out command reports exit status 124.
    """

    def __init__(self, timeout_s: float | None = None):
        self.timeout_s = timeout_s

    def __call__(self, argv: Sequence[str], *, capture: bool = False) -> Result:
        argv = list(argv)
        if shutil.which(argv[0]) is None:
            raise LaunchError(GCLOUD_MISSING.format(tool=argv[0]) if argv[0] == "gcloud"
                              else f"`{argv[0]}` was not found on PATH (needed for: {quote(argv)})")
        try:
            proc = subprocess.run(argv, capture_output=capture, text=True, check=False, timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            return Result(124, "", f"timed out after {self.timeout_s:.0f}s: {quote(argv)}")
        return Result(proc.returncode, proc.stdout or "", proc.stderr or "")


def run_all(steps: Sequence[Argv], runner: Runner) -> None:
    """Runs ``steps`` in order and stops at the first failure (a :class:`LaunchError` naming it)."""
    for argv in steps:
        result = runner(argv)
        if result.returncode != 0:
            raise LaunchError(f"command failed with exit status {result.returncode}: {quote(argv)}"
                              + (f"\n{result.stderr.strip()}" if result.stderr.strip() else ""))
