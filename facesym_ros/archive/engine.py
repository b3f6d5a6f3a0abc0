"""An archive run on Dask distributed: each input one task, results written as they complete.

The driver finds the inputs, leaves out those already scored with the same identity and method, and keeps a
bounded window of tasks submitted (so neither it nor the scheduler holds the whole archive). Each result is
written (its part file) as it completes and then dropped, so the driver's memory does not grow with the archive.
A worker that dies mid-task is replaced (the nanny) and its task given to a worker again by the scheduler; the
task writes nothing, so running it twice changes nothing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from facesym_ros.archive.inputs import ArchiveInput, discover
from facesym_ros.archive.store import ArchiveStore, part_key
from facesym_ros.archive.task import InputResult, one_line, score_input, settings_hash
from facesym_ros.core.pipeline import PipelineSettings

WINDOW_PER_WORKER = 4  # tasks in flight per worker: enough to keep each busy, few enough to keep memory flat
MIN_WINDOW = 32  # at least this many, so an adaptive cluster (dask-jobqueue's adapt) sees work to scale up for


@dataclass(frozen=True)
class ArchiveSummary:
    inputs: int  # inputs found
    skipped: int  # already scored with the same identity and method
    scored: int  # scored in this run
    failed: int  # rows of failures.csv
    rows: int  # rows of trials.parquet / trials.csv
    dashboard: str  # the Dask dashboard's address, '' when none ran


@dataclass(frozen=True)
class EngineOptions:
    workers: int | None = None  # LocalCluster worker processes (default: one per core)
    scheduler: str | None = None  # a running cluster's scheduler address instead
    dashboard_address: str | None = ':8787'  # the LocalCluster's dashboard (None: none)
    force: bool = False  # score every input again


def run_archive(inputs: Sequence[str | Path], output: Path, config: PipelineSettings, options: EngineOptions,
                *, say: Callable[[str], None] = print, progress: bool = True) -> ArchiveSummary:
    """Score every input not yet scored into `output` and build its tables."""
    output = Path(output)
    store = ArchiveStore(output)
    method = settings_hash(config)
    found, failures = discover(inputs, exclude=output)
    todo = found if options.force else [item for item in found if not store.is_done(item, method)]
    say(f'{len(found)} inputs, {len(found) - len(todo)} already scored with method {method}, {len(todo)} to score'
        + (f'; {len(failures)} named nothing to score' if failures else ''))
    dashboard = ''
    if todo:
        with _client(options) as client:
            dashboard = _dashboard(client)
            if dashboard:
                say(f'Dask dashboard: {dashboard}')
            _score_all(client, todo, store, config, method, progress=progress)
    rows, failed = store.write_tables(found, failures)
    return ArchiveSummary(len(found), len(found) - len(todo), len(todo), failed, rows, dashboard)


@contextlib.contextmanager
def _client(options: EngineOptions) -> Iterator:
    from distributed import Client, LocalCluster

    if options.scheduler:
        with Client(options.scheduler, timeout='30s') as client:
            yield client
        return
    workers = options.workers or os.cpu_count() or 1
    if workers < 1:
        raise ValueError(f'--workers must be at least 1, got {workers}')
    # one thread a worker process: the scorer keeps its core busy (it reads ahead in a thread of its own)
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=options.dashboard_address) as cluster, Client(cluster) as client:
        client.wait_for_workers(workers)
        yield client


def _dashboard(client) -> str:
    services = client.scheduler_info().get('services', {})
    return client.dashboard_link if 'dashboard' in services else ''


def _window(client) -> int:
    """How many tasks to keep submitted: a few per worker of the cluster now (workers may come and go)."""
    return max(MIN_WINDOW, WINDOW_PER_WORKER * len(client.nthreads()))


def _score_all(client, todo: Sequence[ArchiveInput], store: ArchiveStore, config: PipelineSettings, method: str,
               *, progress: bool) -> None:
    from distributed import as_completed
    from tqdm import tqdm

    pending = iter(todo)
    by_key: dict[str, ArchiveInput] = {}

    def submit() -> object | None:
        item = next(pending, None)
        if item is None:
            return None
        # the key names the input and method: an input resubmitted by a later driver is the same task
        future = client.submit(score_input, item.source, item.kind, config, method,
                               key=f'facesym-score-{method}-{item.size}-{item.mtime_ns}-{part_key(item.source)}')
        by_key[future.key] = item
        return future

    running = as_completed([f for f in (submit() for _ in range(_window(client))) if f is not None])
    failed = 0
    with tqdm(total=len(todo), unit='input', desc='scoring archive', disable=not progress, smoothing=0.1) as bar:
        for future in running:
            item = by_key.pop(future.key)
            try:
                result: InputResult | None = future.result()
                lost = ''
            except Exception as error:  # a worker lost each time it ran the task (KilledWorker)
                result, lost = None, f'no worker finished it: {one_line(error)}'
            future.release()
            store.save(item, method, result, lost)
            failed += result is None or bool(result.error)
            bar.set_postfix(failed=failed, refresh=False)
            bar.update(1)
            while len(by_key) < _window(client):
                following = submit()
                if following is None:
                    break
                running.add(following)
