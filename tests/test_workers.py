"""The background worker process: jobs shared by key, progress, failures and a dying worker."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from tefviz.workers import BackgroundWorker, WorkerDied, report_progress

REPO = Path(__file__).resolve().parent.parent


# job functions run in the spawned worker: module-level, so they pickle by name
def add(a: int, b: int) -> tuple[int, int]:
    return a + b, os.getpid()


def fail(message: str) -> None:
    raise ValueError(message)


def die() -> None:
    os._exit(3)


def slow_with_progress(steps: int) -> int:
    for i in range(steps):
        report_progress(i / steps)
        time.sleep(0.05)
    return steps


@pytest.fixture(scope="module")
def worker():
    w = BackgroundWorker(max_jobs=4)
    yield w
    w.shutdown()


def test_a_job_runs_in_another_process_and_a_key_is_computed_once(worker):
    first = worker.submit("sum", add, 2, 3)
    total, pid = first.result(timeout=120)
    assert total == 5 and pid != os.getpid()
    assert worker.submit("sum", add, 100, 100) is first  # same key: the same job, not recomputed
    assert worker.submit("other", add, 1, 1).result(timeout=60)[0] == 2


def test_old_jobs_are_forgotten_beyond_max_jobs(worker):
    jobs = [worker.submit(("n", i), add, i, 0) for i in range(6)]
    assert [j.result(timeout=60)[0] for j in jobs] == list(range(6))
    assert worker.submit(("n", 0), add, 7, 0).result(timeout=60)[0] == 7  # dropped, so made again
    assert worker.submit(("n", 5), add, 9, 0) is jobs[5]


def test_a_failed_job_reports_its_error_and_is_tried_again(worker):
    job = worker.submit("bad", fail, "no such setting")
    with pytest.raises(ValueError, match="no such setting"):
        job.result(timeout=60)
    assert worker.submit("bad", add, 1, 2) is not job  # a failure is not cached


def test_progress_belongs_to_the_running_job(worker):
    running = worker.submit("slow", slow_with_progress, 20)
    queued = worker.submit("queued", add, 0, 0)
    seen, queued_seen = [], []
    while not running.done():
        seen.append(worker.progress(running))
        queued_seen.append(worker.progress(queued))
        time.sleep(0.02)
    assert any(s is not None and 0 < s < 1 for s in seen)
    assert queued_seen.count(None) >= len(queued_seen) - 2  # it waits behind `running` (the end may race)
    assert worker.progress(running) == 1.0
    queued.result(timeout=60)


def test_a_dying_worker_fails_its_job_with_a_message_and_the_next_job_gets_a_fresh_one(worker):
    _, pid_before = worker.submit("before", add, 0, 0).result(timeout=60)
    with pytest.raises(WorkerDied, match="worker process stopped"):
        worker.submit("die", die).result(timeout=60)
    _, pid_after = worker.submit("after", add, 0, 0).result(timeout=120)
    assert pid_after != pid_before


def test_the_subset_job_matches_classifying_in_process():
    """What the Images page measures in the worker is what `eval images` measures in-process."""
    from tefviz.checkpoints import checkpoint_version
    from tefviz.images import evaluate
    from tefviz.images.budget import Selection
    from tefviz.images.checkpoint import load_image_classifier
    from tefviz.images.subset_jobs import classify_checkpoint_subset
    from tefviz.images.tokenizers import TOKENIZERS

    path = REPO / "checkpoints" / "tefviz-image-svd-tef"
    sel = Selection(t=0.6)
    w = BackgroundWorker()
    try:
        ref = TOKENIZERS.reference("svd_tef")
        got = w.submit("subset", classify_checkpoint_subset, str(path), checkpoint_version(path), sel, ref)
        got = got.result(timeout=300)
    finally:
        w.shutdown()
    x, _ = evaluate.eval_inputs()
    want = evaluate.classify_subset(load_image_classifier(path), x, sel)
    assert np.array_equal(got.pred, want.pred)
    assert got.mean_tokens == pytest.approx(want.mean_tokens)


class RuntimeRegisteredTokenizer:
    """Stands for a method registered at run time in the server (a plugin, a test's dummy)."""

    name, order = "worker_test_tokenizer", 100


def registered_names(reference: tuple[str, str]) -> list[str]:
    from tefviz.images.tokenizers import TOKENIZERS

    TOKENIZERS.adopt(*reference)
    return TOKENIZERS.names()


def test_a_method_registered_at_run_time_is_adopted_by_the_worker(worker):
    from tefviz.errors import InputError
    from tefviz.images.tokenizers import TOKENIZERS

    TOKENIZERS.register(RuntimeRegisteredTokenizer)
    try:
        ref = TOKENIZERS.reference("worker_test_tokenizer")
        assert ref == (__name__, "RuntimeRegisteredTokenizer")
        names = worker.submit("adopt", registered_names, ref).result(timeout=120)
        assert "worker_test_tokenizer" in names and "svd_tef" in names
    finally:
        TOKENIZERS.unregister("worker_test_tokenizer")

    class Local:
        name = "local_tokenizer"

    TOKENIZERS.register(Local)
    try:
        with pytest.raises(InputError, match="defined inside a function"):
            TOKENIZERS.reference("local_tokenizer")
    finally:
        TOKENIZERS.unregister("local_tokenizer")


def niceness() -> int:
    return os.nice(0)


def test_the_worker_runs_below_the_server(worker):
    """A class's page runs go first: the worker's long jobs take what they leave."""
    assert worker.submit("nice", niceness).result(timeout=60) >= min(os.nice(0) + 10, 19)


class ScriptedCounters:
    """`FreeCores._sample` readings in order: (wall s, machine busy s, own cpu s)."""

    def __init__(self, *samples):
        self.samples = list(samples)

    def __call__(self):
        return self.samples.pop(0)


def test_free_cores_are_the_cores_other_processes_left_idle():
    from tefviz.workers import FreeCores

    free = FreeCores(cores=2)
    free._sample = ScriptedCounters(
        (0.0, 0.0, 0.0),  # first look: nothing to compare with
        (0.01, 0.02, 0.0),  # 10 ms later: too short for the 100 Hz counters
        (1.0, 1.9, 0.9),  # the class used 1.0 core, this worker 0.9: one core is ours
        (2.0, 2.1, 1.1),  # the class went quiet (0.0 cores besides ours)
        None,  # no /proc/stat: keep what we have
    )
    assert free.threads(2) is None
    assert free.threads(2) is None
    assert free.free() == pytest.approx(1.0)
    assert free.threads(2) == 2
    assert free.threads(2) is None


def thread_counts(steps: int) -> list[int]:
    import torch

    seen = [torch.get_num_threads()]
    for i in range(steps):
        report_progress(i / steps)
        time.sleep(0.06)
        seen.append(torch.get_num_threads())
    return seen


def test_an_adapting_worker_starts_on_one_thread_and_follows_the_machine():
    w = BackgroundWorker(threads="adapt")
    try:
        seen = w.submit("threads", thread_counts, 5).result(timeout=120)
    finally:
        w.shutdown()
    assert seen[0] == 1  # the class may be running: one thread until the machine was looked at
    assert all(1 <= n <= (os.cpu_count() or 1) for n in seen)
