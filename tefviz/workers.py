"""Long model work in a process of its own, off the app server's interpreter.

Why a process and not a thread: torch releases the GIL inside an operator but takes it back between
operators, and the server's page scripts are Python that holds it. Measured on the 2-core CPU
(classifying the 2,000-image subset, about 500 operator calls): 0.68 s alone, 5-7 s beside one busy
Python thread and 22 s beside four. In a process the job competes for the cores only, and the page
that waits for it can draw everything else first and stop waiting when the user moves on.

One worker process runs one job at a time (two would oversubscribe the cores), at a lower priority
than the server (nice 10), so the page runs of a class go first and the job takes what they leave:
under 24 Text + 6 Images sessions, a worker at normal priority slowed the Text moves from 1.2-1.4 s
to 2.1-3.1 s p50; niced, the class's figures are those of the in-process version within the
machine's run-to-run noise, and an Images move shows its numbers before the job ends (README, "A
class on one server"). `threads`: torch's intra-op threads in the worker (None: torch's default).

Jobs with the same key share one future, so a class asking for the same setting computes it once.
The worker is started on first use with the "spawn" method (a forked copy of a server with live
threads and possibly CUDA is unsafe), and restarted if it dies (memory, a crash): the job that was
running fails with a message, the next one starts a fresh worker.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from tefviz.errors import TefvizError

_NICENESS = 10  # below the server's page runs: interactive work first, the long job with what is left
_progress: Any = None  # in the worker: the shared (job serial, fraction done) the running job reports into
_free_cores: FreeCores | None = None  # in the worker, with threads="adapt"
_most_threads = 1  # ... and at most torch's own default (physical cores), never more


class FreeCores:
    """How many cores the rest of the machine left idle since the last look, from the kernel's
    counters (/proc/stat; None elsewhere), for a worker that sizes torch's thread pool between the
    steps of its job.

    Why: with the server's page runs busy on one core of two, a worker with two threads gets the
    other core and slices of the busy one, and each of its parallel operators waits for the slower
    thread: measured under 24 Text + 6 Images sessions, the job used 2.5 core-seconds for work
    that one thread does in 1.7 alone. One thread while the class runs, every core once it is
    done."""

    def __init__(self, cores: int | None = None) -> None:
        self.cores = cores or os.cpu_count() or 1
        self._hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._last: tuple[float, float, float] | None = None  # (wall s, machine busy s, own cpu s)

    def _sample(self) -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat") as f:
                ticks = [int(v) for v in f.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        busy = (sum(ticks) - ticks[3] - ticks[4]) / self._hz  # all but idle and iowait
        own = os.times()
        return time.monotonic(), busy, own.user + own.system

    def free(self) -> float | None:
        """Cores not used by other processes since the last call (None: unknown, or too soon)."""
        now = self._sample()
        if now is None:
            return None
        last, self._last = self._last, now
        if last is None or now[0] - last[0] < 0.05:  # the counters tick at 100 Hz: too coarse below
            self._last = last if last is not None else now
            return None
        wall, busy, own = (a - b for a, b in zip(now, last, strict=True))
        return max(self.cores - max(busy - own, 0.0) / wall, 0.0)

    def threads(self, most: int) -> int | None:
        """The thread count to use next: the free cores, rounded, 1 to `most` (None: keep)."""
        free = self.free()
        return None if free is None else max(1, min(most, round(free)))


def _init_worker(progress: Any, threads: int | str | None) -> None:
    global _progress, _free_cores, _most_threads
    _progress = progress
    import torch

    if threads == "adapt":
        _free_cores, _most_threads = FreeCores(), torch.get_num_threads()
    elif threads is not None:
        torch.set_num_threads(int(threads))
    with contextlib.suppress(OSError):
        os.nice(_NICENESS)


def _adapt_threads() -> None:
    if _free_cores is None:
        return
    import torch

    n = _free_cores.threads(_most_threads)
    if n is not None and n != torch.get_num_threads():
        torch.set_num_threads(n)


def _run(serial: int, fn: Callable[..., Any], *args: Any) -> Any:
    """In the worker: run job `serial`, saying which job the progress belongs to."""
    if _progress is not None:
        _progress[0], _progress[1] = float(serial), 0.0
    if _free_cores is not None:  # start on one thread; from the first step on, what the machine leaves
        import torch

        _free_cores.free()
        torch.set_num_threads(1)
    return fn(*args)


def report_progress(fraction: float) -> None:
    """Called by a job function inside the worker between its steps: how far the running job is
    (0-1). With threads="adapt", the worker also resizes torch's thread pool here."""
    if _progress is not None:
        _progress[1] = min(max(float(fraction), 0.0), 1.0)
    _adapt_threads()


class WorkerDied(TefvizError):
    """The worker process ended while it ran a job (out of memory, a crash)."""


class BackgroundWorker:
    """A process for long model work, with a table of jobs by key (the most recent `max_jobs`)."""

    def __init__(self, max_jobs: int = 256, threads: int | str | None = None) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._progress = self._ctx.Array("d", [-1.0, 0.0], lock=False)  # (job serial, fraction)
        self._next_serial = 0
        self._pool: ProcessPoolExecutor | None = None
        self._jobs: OrderedDict[Hashable, Future] = OrderedDict()
        self._lock = threading.RLock()  # a done callback may run inside submit
        self.max_jobs = max_jobs
        self.threads = threads

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=self._ctx,
                initializer=_init_worker,
                initargs=(self._progress, self.threads),
            )
        return self._pool

    def submit(self, key: Hashable, fn: Callable[..., Any], *args: Any) -> Future:
        """The future of job `key`: the one already made (running, queued or done), else `fn(*args)`
        queued in the worker. `fn` and `args` must be picklable (`fn` a module-level function)."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and not (job.done() and job.exception() is not None):
                self._jobs.move_to_end(key)
                return job  # a failed job is tried again
            self._next_serial += 1
            serial = self._next_serial
            try:
                inner = self._executor().submit(_run, serial, fn, *args)
            except BrokenProcessPool:  # the worker died since the last job: start a fresh one
                self._pool = None
                inner = self._executor().submit(_run, serial, fn, *args)
            job = Future()
            job.serial = serial  # type: ignore[attr-defined]
            job.set_running_or_notify_cancel()
            inner.add_done_callback(lambda f, key=key, job=job: self._finish(key, job, f))
            self._jobs[key] = job
            while len(self._jobs) > self.max_jobs:
                self._jobs.popitem(last=False)
            return job

    def _finish(self, key: Hashable, job: Future, inner: Future) -> None:
        exc = inner.exception()
        if isinstance(exc, BrokenProcessPool):
            with self._lock:
                self._pool = None
            job.set_exception(WorkerDied("the background worker process stopped (out of memory?); try again"))
        elif exc is not None:
            job.set_exception(exc)
        else:
            job.set_result(inner.result())

    def progress(self, job: Future) -> float | None:
        """How far `job` has got (0-1), or None while it waits behind another job."""
        if job.done():
            return 1.0
        serial, fraction = self._progress[0], self._progress[1]
        return float(fraction) if int(serial) == getattr(job, "serial", None) else None

    def shutdown(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None
