"""Worker processes with a hard per-task timeout and recycling.

Why processes: sympy's ``simplify`` (and any pure-Python work on hostile input)
has no bound of its own and cannot be interrupted reliably in-process, so a
task that overruns its deadline is ended by killing its worker, which is then
replaced. Workers are also recycled after ``max_tasks_per_worker`` tasks so
that sympy's caches cannot grow without bound over a million-sample run.

Workers use the ``spawn`` context by default: the parent may hold JAX, threads
or a GPU context, none of which survive ``fork``. Tasks are module-level
functions (pickled by reference) and their arguments.

If this process cannot have children (it is itself a daemonic worker), or
``num_workers == 0``, tasks run inline; then the timeout is enforced with
``SIGALRM`` when possible (main thread, Unix), which interrupts pure-Python
code but not a long C call.
"""

from __future__ import annotations

import atexit
import collections
import dataclasses
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import wait as _wait
from typing import Any

# Set in worker processes; code that would start a pool runs inline instead.
IN_WORKER = False

OK, TIMEOUT, CRASHED, ERROR = "ok", "timeout", "crashed", "error"


@dataclasses.dataclass(frozen=True)
class TaskResult:
    """Outcome of one task: ``status`` is ok / timeout / crashed / error."""

    index: int
    status: str
    value: Any = None
    error: str | None = None


def _worker_loop(conn) -> None:
    global IN_WORKER
    IN_WORKER = True
    # The parent handles Ctrl-C; a worker must not die half-way through a reply.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        index, fn, args = msg
        try:
            out = (index, OK, fn(*args), None)
        except BaseException as e:  # report everything; the parent decides
            out = (index, ERROR, None, f"{type(e).__name__}: {e}"[:500])
        try:
            conn.send(out)
        except Exception as e:  # e.g. an unpicklable result
            conn.send((index, ERROR, None, f"send failed: {e}"[:500]))


class _Worker:
    def __init__(self, ctx):
        parent, child = ctx.Pipe(duplex=True)
        self.conn = parent
        self.process = ctx.Process(target=_worker_loop, args=(child,), daemon=True, name="mathjax-grader")
        self.process.start()
        child.close()
        self.tasks = 0

    def stop(self, kill: bool = False) -> None:
        try:
            if kill:
                self.process.kill()
            else:
                self.conn.send(None)
        except Exception:
            pass
        self.process.join(timeout=0.5 if not kill else 2.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=2.0)
        self.conn.close()


def can_start_processes() -> bool:
    """False inside a daemonic process (which may not have children)."""
    return not IN_WORKER and not mp.current_process().daemon


class WorkerPool:
    """A fixed number of worker processes; tasks get a hard timeout each.

    Args:
      num_workers: processes to run; 0 runs tasks inline (see module doc).
      context: multiprocessing start method, ``"spawn"`` or ``"forkserver"``.
      max_tasks_per_worker: a worker is replaced after this many tasks.

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, num_workers: int, *, context: str = "spawn", max_tasks_per_worker: int = 2000):
        if context not in ("spawn", "forkserver"):
            raise ValueError("context must be 'spawn' or 'forkserver' (fork is unsafe with JAX/threads)")
        self.num_workers = num_workers if can_start_processes() else 0
        self._ctx = mp.get_context(context) if self.num_workers else None
        self.max_tasks = max_tasks_per_worker
        self._workers: list[_Worker] = []
        self.stats = collections.Counter()

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop every worker (idempotent)."""
        workers, self._workers = self._workers, []
        for w in workers:
            w.stop()

    def _spawn(self) -> _Worker:
        self.stats["spawned"] += 1
        return _Worker(self._ctx)

    def imap_unordered(
        self, fn: Callable, args_list: Iterable[tuple], timeout: float
    ) -> Iterator[TaskResult]:
        """Run ``fn(*args)`` for every args tuple; yield results as they finish.

        A task still running ``timeout`` seconds after it started yields
        ``TIMEOUT`` (its worker is killed and replaced); a worker that dies
        yields ``CRASHED``; an exception in ``fn`` yields ``ERROR``.
        """
        todo = collections.deque(enumerate(args_list))
        if not self.num_workers:
            while todo:
                i, args = todo.popleft()
                yield _run_inline(i, fn, args, timeout)
            return
        while len(self._workers) < min(self.num_workers, len(todo)):
            self._workers.append(self._spawn())
        idle = list(self._workers)
        busy: dict[_Worker, tuple[int, float]] = {}
        try:
            while todo or busy:
                while todo and idle:
                    w = idle.pop()
                    i, args = todo.popleft()
                    try:
                        w.conn.send((i, fn, args))
                    except (BrokenPipeError, OSError):
                        todo.appendleft((i, args))
                        idle.append(self._replace(w, kill=True))
                        continue
                    busy[w] = (i, time.monotonic() + timeout)
                if not busy:
                    continue
                now = time.monotonic()
                next_deadline = min(d for _, d in busy.values())
                ready = _wait([w.conn for w in busy], timeout=max(0.0, next_deadline - now))
                by_conn = {w.conn: w for w in busy}
                for conn in ready:
                    w = by_conn[conn]
                    i, _ = busy.pop(w)
                    # Update the pool before yielding: a caller may never resume us.
                    try:
                        idx, status, value, err = conn.recv()
                    except (EOFError, OSError):
                        self.stats["crashed"] += 1
                        idle.append(self._replace(w, kill=True))
                        yield TaskResult(i, CRASHED, None, "worker died")
                        continue
                    w.tasks += 1
                    self.stats[status] += 1
                    if w.tasks >= self.max_tasks:
                        self.stats["recycled"] += 1
                        w = self._replace(w, kill=False)
                    idle.append(w)
                    yield TaskResult(idx, status, value, err)
                now = time.monotonic()
                for w, (i, deadline) in list(busy.items()):
                    if now >= deadline:
                        busy.pop(w)
                        self.stats["timeout"] += 1
                        idle.append(self._replace(w, kill=True))
                        yield TaskResult(i, TIMEOUT, None, f"timed out after {timeout:g}s")
        finally:
            # An abandoned generator leaves busy workers mid-task: kill them.
            for w in list(busy):
                self._replace(w, kill=True)

    def map(self, fn: Callable, args_list: Iterable[tuple], timeout: float) -> list[TaskResult]:
        """Like :meth:`imap_unordered`, results in input order."""
        out = list(self.imap_unordered(fn, args_list, timeout))
        out.sort(key=lambda r: r.index)
        return out

    def call(self, fn: Callable, *args, timeout: float) -> TaskResult:
        """Run one task (the slow path of a single comparison)."""
        return list(self.imap_unordered(fn, [args], timeout))[0]

    def _replace(self, w: _Worker, kill: bool) -> _Worker:
        w.stop(kill=kill)
        new = self._spawn()
        self._workers = [new if x is w else x for x in self._workers]
        return new


class _Alarm(Exception):
    pass


def _run_inline(i: int, fn: Callable, args: tuple, timeout: float) -> TaskResult:
    use_alarm = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    outer = signal.getitimer(signal.ITIMER_REAL)[0] if use_alarm else 0.0
    if outer and outer <= timeout:
        use_alarm = False  # an enclosing alarm (e.g. pytest-timeout) fires first anyway

    def on_alarm(signum, frame):
        raise _Alarm()

    old = None
    start = time.monotonic()
    try:
        if use_alarm:
            old = signal.signal(signal.SIGALRM, on_alarm)
            signal.setitimer(signal.ITIMER_REAL, timeout)
        return TaskResult(i, OK, fn(*args))
    except _Alarm:
        return TaskResult(i, TIMEOUT, None, f"timed out after {timeout:g}s")
    except Exception as e:
        return TaskResult(i, ERROR, None, f"{type(e).__name__}: {e}"[:500])
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
            if outer:
                # Give the enclosing alarm back what is left of it.
                signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - start), 0.001))


_shared: WorkerPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> WorkerPool:
    """A process-wide one-worker pool for single comparisons (started lazily)."""
    global _shared
    with _shared_lock:
        if _shared is None or (_shared.num_workers == 0 and can_start_processes()):
            _shared = WorkerPool(1 if can_start_processes() else 0)
            atexit.register(_shared.close)
        return _shared


def default_workers() -> int:
    """All cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
