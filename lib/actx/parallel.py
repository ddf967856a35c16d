"""Independent jobs spread over worker processes: the course's many small training runs, per-clip cues.

One of our heads trains on small tensors: with two torch threads a step spends much of its time in thread
hand-offs, so a 2-core CPU runs two single-thread runs side by side sooner than the same two one after the
other (``python benchmarks/parallel_runs.py`` prints the ratio, measured in one run: 1.32x for ten default runs on
2 cores). (Pose and proposals gain nothing this way: mediapipe and selective search keep both cores busy already.)

    results = process_map(fn, items, workers=default_workers(cfg.device, len(items)), desc="runs")

``fn`` must be importable (a module-level function) and ``items`` picklable: workers are *spawned*, fresh
interpreters, because forking a process whose torch / OpenMP thread pools have started can deadlock the child.
What a job writes must be complete files only (the runner's runs, the cue caches are), so that an interrupted
map loses only the jobs in flight.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Callable, Iterable

# At most this many workers: each holds its own copy of the inputs (a feature store's training maps, ~1 GiB at
# the default profile), and beyond four the small runs gain little from more processes (not measured here).
MAX_WORKERS = 4
ENV = "ACTX_WORKERS"  # an integer >= 1 overrides default_workers (1: everything in the calling process)


def default_workers(device: str, jobs: int, configured: int | None = None) -> int:
    """How many processes run ``jobs`` independent jobs: $ACTX_WORKERS when set; else ``configured`` (a
    profile's setting, e.g. cfg.train["run_workers"]) when not None; else 1 on CUDA (one process keeps the GPU
    busy, and several would each hold a CUDA context), and on a CPU one per core, at most MAX_WORKERS. Never
    more than ``jobs``."""
    if os.environ.get(ENV):
        value = os.environ[ENV]
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"${ENV} must be an integer >= 1 (1: no worker processes), got {value!r}")
        return min(int(value), max(1, jobs))
    if configured is not None:
        if int(configured) < 1:
            raise ValueError(f"the configured number of worker processes must be >= 1 (1: none), got {configured}")
        return min(int(configured), max(1, jobs))
    if not str(device).startswith("cpu"):
        return 1
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS, jobs))


def threads_per_worker(workers: int) -> int:
    """torch threads in each of ``workers`` processes: the cores shared out, at least one each."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def _init_worker(threads: int) -> None:
    import torch

    from actx.runtime import reuse_freed_memory

    torch.set_num_threads(threads)
    reuse_freed_memory()


def _call(job: tuple[Callable[[Any], Any], int, Any]) -> tuple[int, Any]:
    fn, index, item = job
    try:
        return index, fn(item)
    except Exception as exc:
        exc.add_note(f"(in a worker process of actx.parallel.process_map: {fn.__qualname__}({item!r}))")
        raise


def process_map(fn: Callable[[Any], Any], items: Iterable[Any], workers: int, desc: str = "jobs",
                progress: bool = True) -> list[Any]:
    """``[fn(item) for item in items]``, computed by ``workers`` spawned processes (in this process when
    ``workers`` <= 1 or there is at most one item). A tqdm bar counts finished items. The first exception
    raised by a job stops the map (the workers are terminated) and is raised here, with a note naming the
    item; a worker that dies (killed, out of memory) raises concurrent.futures.process.BrokenProcessPool."""
    from tqdm.auto import tqdm

    items = list(items)
    if workers <= 1 or len(items) <= 1:
        return [fn(item) for item in tqdm(items, desc=desc, disable=not progress)]
    out: list[Any] = [None] * len(items)
    workers = min(workers, len(items))
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(threads_per_worker(workers),))
    try:
        futures = [pool.submit(_call, (fn, i, x)) for i, x in enumerate(items)]
        with tqdm(total=len(items), desc=f"{desc} ({workers} processes)", disable=not progress) as bar:
            for future in as_completed(futures):
                index, value = future.result()
                out[index] = value
                bar.update(1)
    except BaseException:  # an error or an interrupt: stop the jobs in flight too, not only the queued ones
        processes = list((getattr(pool, "_processes", None) or {}).values())  # no public way before Python 3.14
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        raise
    pool.shutdown()
    return out
