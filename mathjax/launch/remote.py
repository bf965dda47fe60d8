"""The bash one-liners that run on every TPU worker (through ``gcloud ... ssh --command``).

Layout on each worker (paths relative to ``$HOME``):

- ``mathjax/`` (``remote_dir``): the project, with its virtualenv in ``mathjax/.venv``;
- ``mathjax_logs/JOB.log``: the job's stdout+stderr, appended across restarts;
- ``mathjax_logs/JOB.pid``: process group of the running job (``setsid``), so a
  stop reaches the Python process and not only its shell;
- ``mathjax_logs/JOB.rc``: exit status, written when the job ends (removed at launch);
- ``mathjax_logs/JOB.term``: present when the job got SIGTERM (stop or maintenance),
  so an exit status 0 after a checkpoint-and-exit is not mistaken for "finished".

Each script is one line (statements joined by ``; ``) so that a dry run prints
one command per line. Every value spliced in is quoted with :func:`shlex.quote`.
They assume bash (the login shell of the users gcloud creates on TPU images)
and GNU userland (``setsid``, ``tail -F``, ``stat -c``).
"""

from __future__ import annotations

import dataclasses
import enum
import re
import shlex
from typing import Iterable, Mapping

LOGS_DIR = "mathjax_logs"
STATUS_PREFIX = "mathjax-job"
SIGTERM_EXIT = 143
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SAFE_REL_PATH = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_job_name(job: str) -> str:
    """Job names become file names on the workers: letters, digits, ``._-``."""
    if not _SAFE_NAME.match(job):
        raise ValueError(f"job name {job!r}: use letters, digits, '.', '_' or '-'")
    return job


def check_remote_dir(path: str) -> str:
    """The project dir on the workers, relative to ``$HOME`` (no ``..``, no leading ``/``)."""
    if not _SAFE_REL_PATH.match(path) or ".." in path.split("/"):
        raise ValueError(f"remote_dir {path!r}: use a plain path relative to $HOME, e.g. 'mathjax'")
    return path


def _home(path: str) -> str:
    # Double quotes so that $HOME expands; the rest was checked to need no quoting.
    return f'"$HOME/{path}"'


# `alive PGID`: true while a non-zombie process is left in that process group
# (`kill -0` also counts zombies, which linger until their parent reaps them).
_ALIVE_FN = "alive() { ps -e -o pgid= -o stat= | awk -v g=\"$1\" '$1 == g && $2 !~ /^Z/ {f = 1} END {exit !f}'; }"


def _files(job: str) -> dict[str, str]:
    check_job_name(job)
    return {ext: _home(f"{LOGS_DIR}/{job}.{ext}") for ext in ("log", "pid", "rc", "term")}


def _line(*statements: str) -> str:
    # A backgrounded statement already ends in "&", which must not be followed by ";".
    out = statements[0]
    for previous, statement in zip(statements[:-1], statements[1:], strict=True):
        out += (" " if previous.endswith("&") else "; ") + statement
    return out


# --------------------------------------------------------------------------- install


@dataclasses.dataclass(frozen=True)
class GitSource:
    """Clone ``url`` on every worker and check out ``ref`` (branch, tag or commit)."""

    url: str
    ref: str = "main"


@dataclasses.dataclass(frozen=True)
class TarballSource:
    """A tarball of the local tree, already copied to ``$HOME/<remote_name>`` on every worker."""

    remote_name: str = "mathjax-src.tar.gz"


def install_script(source: GitSource | TarballSource, remote_dir: str = "mathjax",
                   python_version: str = "3.11", extras: str = "tpu") -> str:
    """Puts the project in ``$HOME/remote_dir`` and installs it with ``pip install -e .[extras]``.

    The Python comes from ``uv`` (installed with the system pip): TPU VM images
    ship Python 3.10 and current JAX needs 3.11 or newer, so the venv asks uv
    for ``python_version`` (downloaded when the system has none). Re-running it
    updates the code and the environment in place; ``.venv`` is reused.
    """
    d = _home(check_remote_dir(remote_dir))
    steps = ["set -euo pipefail"]
    if isinstance(source, GitSource):
        url, ref = shlex.quote(source.url), shlex.quote(source.ref)
        steps += [
            f"if [ ! -d {d}/.git ]; then git clone --quiet {url} {d}; fi",
            f"cd {d}",
            "git fetch --quiet --tags origin",
            # A branch name resolves to the fetched origin/<branch>; a tag or commit to itself.
            f"(git checkout --quiet --force --detach origin/{ref} 2>/dev/null || "
            f"git checkout --quiet --force --detach {ref})",
        ]
    else:
        check_remote_dir(source.remote_name)
        steps += [f"mkdir -p {d}", f"tar -xzf {_home(source.remote_name)} -C {d}", f"cd {d}"]
    steps += [
        "(python3 -m pip install --user --quiet --upgrade uv || curl -LsSf https://astral.sh/uv/install.sh | sh)",
        'UV="$HOME/.local/bin/uv"',
        f'"$UV" venv --quiet --allow-existing --python {shlex.quote(python_version)} .venv',
        f'"$UV" pip install --quiet --python .venv/bin/python -e {shlex.quote(f".[{extras}]" if extras else ".")}',
        # Importing jax does not touch the TPU, so this is safe while another job runs.
        ".venv/bin/python -c 'import jax, mathjax; print(\"mathjax\", mathjax.__version__, \"jax\", jax.__version__)'",
    ]
    return _line(*steps)


# --------------------------------------------------------------------------- jobs


def stop_job_script(job: str, timeout_s: int = 180) -> str:
    """SIGTERM to the job's process group, then SIGKILL after ``timeout_s``.

    SIGTERM makes the trainer save a checkpoint and exit; the timeout leaves it
    time to finish the save.
    """
    f = _files(job)
    return _line(
        _ALIVE_FN,
        f'if [ -f {f["pid"]} ] && P=$(cat {f["pid"]}) && alive "$P"',
        'then kill -TERM -- "-$P"',
        f'for _ in $(seq {2 * int(timeout_s)}); do alive "$P" || break; sleep 0.5; done',
        'if alive "$P"; then kill -KILL -- "-$P"; fi',
        f'echo "stopped {job} (process group $P)"',
        f'else echo "{job} is not running"',
        "fi",
    )


def launch_script(job: str, command: str, remote_dir: str = "mathjax",
                  env: Mapping[str, str] | None = None, follow: bool = False) -> str:
    """Starts ``command`` in the background under ``nohup``/``setsid``, logging to ``JOB.log``.

    The job survives the SSH session (a dropped laptop connection does not kill
    training). A running instance of the same job is stopped first (gracefully),
    so re-launching after a crash of one worker also clears the others.
    ``follow=True`` then streams the new part of the log until the job ends and
    exits with the job's status (with ``--output-directory`` gcloud writes one
    file per worker).
    """
    f = _files(job)
    d = _home(check_remote_dir(remote_dir))
    exports = []
    for key, value in (env or {}).items():
        if not _ENV_NAME.match(key):
            raise ValueError(f"environment variable name {key!r} is not valid")
        exports.append(f"export {key}={shlex.quote(value)}")
    # The job body is an exported shell function run by `bash -c` (one quoting level
    # fewer than an inline script). A *trapped* TERM lets that shell outlive the
    # Python child (which gets the default or its own handler) and still record the
    # exit status; the command runs in a subshell so its own `exit` cannot skip that.
    body = _line(
        f"trap 'touch {f['term']}' TERM",
        f"cd {d} && source .venv/bin/activate && {' && '.join(exports + [f'( {command} )'])}",
        f"echo $? > {f['rc']}",
    )
    steps = [
        f"mkdir -p {_home(LOGS_DIR)}",
        stop_job_script(job),
        f"rm -f {f['rc']} {f['term']}",
        f"START=$(stat -c %s {f['log']} 2>/dev/null || echo 0)",
        f'echo "=== {job} started $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)" >> {f["log"]}',
        # No job control in a non-interactive shell, so `setsid` does not fork and
        # $! is both the pid and the process-group id of the job.
        f"mathjax_job() {{ {body}; }}",
        "export -f mathjax_job",
        f"setsid nohup bash -c mathjax_job >> {f['log']} 2>&1 < /dev/null &",
        f"echo $! > {f['pid']}",
    ]
    if follow:
        # `alive` rather than `tail --pid`: tail counts an unreaped zombie as alive.
        steps += [
            f"P=$(cat {f['pid']})",
            f"tail -c +$((START + 1)) -F {f['log']} 2>/dev/null &",
            "TAIL=$!",
            'while alive "$P"; do sleep 0.5; done',
            'sleep 1; kill "$TAIL" 2>/dev/null',  # tail polls once a second: let it print the last lines
            f"exit $(cat {f['rc']} 2>/dev/null || echo 255)",
        ]
    else:
        steps.append(f'echo "launched {job} on $(hostname): pid $(cat {f["pid"]}), log ~/{LOGS_DIR}/{job}.log"')
    return _line(*steps)


def tail_script(job: str, lines: int = 200, follow: bool = False) -> str:
    """Prints the last ``lines`` of the job's log (all of it for ``lines=0``); ``follow`` keeps streaming."""
    f = _files(job)
    n = "+1" if lines <= 0 else str(int(lines))
    return f"tail -n {n}{' -F' if follow else ''} {f['log']}"


def status_script(job: str) -> str:
    """Prints one line ``mathjax-job running|exited RC|interrupted RC|absent`` on each worker."""
    f = _files(job)
    p = STATUS_PREFIX
    return _line(
        _ALIVE_FN,
        f'if [ -f {f["pid"]} ] && P=$(cat {f["pid"]}) && alive "$P"',
        f'then echo "{p} running"',
        f'elif [ -f {f["rc"]} ] && [ -f {f["term"]} ]',
        f'then echo "{p} interrupted $(cat {f["rc"]})"',
        f'elif [ -f {f["rc"]} ]',
        f'then echo "{p} exited $(cat {f["rc"]})"',
        f'else echo "{p} absent"',
        "fi",
    )


class JobStatus(enum.Enum):
    """The job's state over all workers that answered."""

    RUNNING = "running"  # some worker still runs it and none failed
    DONE = "done"  # every worker exited 0 without SIGTERM
    FAILED = "failed"  # some worker exited non-zero without SIGTERM
    INTERRUPTED = "interrupted"  # got SIGTERM (stop, maintenance): resume it
    ABSENT = "absent"  # never launched on this VM (fresh VM, or the host rebooted)
    UNKNOWN = "unknown"  # no worker answered (SSH failed)


def parse_status(output: str) -> JobStatus:
    """Folds the ``mathjax-job ...`` lines of all workers into one :class:`JobStatus`.

    A failure anywhere wins (the others are probably hung in a collective);
    otherwise anything still running means wait; an interrupted (SIGTERM, or
    exit status 143) or absent worker means the job must be (re)launched; only
    all-zero exits mean done.
    """
    states: list[tuple[str, int | None]] = []
    for line in output.splitlines():
        words = line.strip().split()
        if len(words) >= 2 and words[0] == STATUS_PREFIX:
            rc = int(words[2]) if len(words) > 2 and words[2].lstrip("-").isdigit() else None
            states.append((words[1], rc))
    if not states:
        return JobStatus.UNKNOWN
    # 143 = 128 + SIGTERM: scripts/train_sft.py's status after a checkpoint-on-SIGTERM, also
    # when the signal reached Python without passing through the job's shell.
    states = [("interrupted", rc) if kind == "exited" and rc == SIGTERM_EXIT else (kind, rc) for kind, rc in states]
    kinds = {kind for kind, _ in states}
    if any(kind == "exited" and rc != 0 for kind, rc in states):
        return JobStatus.FAILED
    if "running" in kinds:
        return JobStatus.RUNNING
    if "interrupted" in kinds:
        return JobStatus.INTERRUPTED
    if "absent" in kinds:
        return JobStatus.ABSENT
    return JobStatus.DONE


def env_pairs(items: Iterable[str]) -> dict[str, str]:
    """``["K=V", ...]`` (flag values) -> ``{"K": "V"}``; the value may contain ``=`` and spaces."""
    env: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not _ENV_NAME.match(key):
            raise ValueError(f"--env expects NAME=VALUE, got {item!r}")
        env[key] = value
    return env
