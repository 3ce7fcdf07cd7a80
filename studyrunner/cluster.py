"""Where per-case work runs: this machine's process pool, or a Dask cluster.

``--cluster SPEC`` (or the protocol's ``execution.cluster``) names it:

- ``local``: the process pool of :mod:`studyrunner.radiomics.workers` (``--workers``);
- ``dask:N``: a ``distributed.LocalCluster`` of N worker processes of one thread each,
  started and stopped by studyrunner;
- ``tcp://host:port``: the scheduler of an existing cluster (``dask scheduler`` and
  ``dask worker`` on the nodes, or a dask-jobqueue cluster on SLURM/PBS).

Dask (Rocklin, "Dask: parallel computation with blocked algorithms and task scheduling",
Proc. 14th Python in Science Conf. 2015:126-132) reschedules the tasks of a worker that
dies. The workers only compute: each task returns a small record to the driver, which
alone keeps the cache and writes the run folder. Workers read the inputs from paths they
must see (a shared filesystem); :meth:`DaskExecutor.check_paths` stops a run at its start
when one does not.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import multiprocessing
import os
import re
import sysconfig
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from studyrunner.errors import InputError
from studyrunner.protocol import CLUSTER_SPEC_PATTERN

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")

LOCAL = "local"
WORKER_WAIT_SECONDS = 60  # how long an existing scheduler may take to have its first worker
SPEC_HELP = "local | dask:N (N worker processes on this machine) | tcp://host:port (an existing Dask scheduler)"


class ClusterSpecError(InputError):
    """A --cluster SPEC (or the protocol's execution.cluster) that names no cluster."""


@dataclass(frozen=True)
class ClusterSpec:
    """A parsed SPEC: ``n_workers`` for ``dask:N``, ``address`` for a scheduler, neither for local."""

    text: str
    n_workers: int | None = None
    address: str | None = None

    @property
    def is_local(self) -> bool:
        return self.n_workers is None and self.address is None


def parse_cluster(text: str) -> ClusterSpec:
    """``local``, ``dask:N`` (N >= 1) or ``tcp://host:port`` (the protocol schema's
    :data:`~studyrunner.protocol.CLUSTER_SPEC_PATTERN`); anything else is refused, naming the forms."""
    spec = text.strip()
    if not re.fullmatch(CLUSTER_SPEC_PATTERN, spec):
        raise ClusterSpecError(f"--cluster {text!r} is not a cluster: use {SPEC_HELP}")
    if spec == LOCAL:
        return ClusterSpec(LOCAL)
    if spec.startswith("dask:"):
        return ClusterSpec(spec, n_workers=int(spec.removeprefix("dask:")))
    return ClusterSpec(spec, address=spec)


class DaskExecutor:
    """Tasks on a Dask cluster through its client: submit, results as they finish."""

    def __init__(self, client: Any, spec: ClusterSpec):
        self.client = client
        self.spec = spec

    def worker_threads(self) -> dict[str, int]:
        """SimpleITK threads per worker: the host's cores shared out between its worker processes."""
        cores: dict[str, int] = self.client.run(os.cpu_count)
        workers = self.client.scheduler_info()["workers"]
        hosts = {address: workers[address]["host"] for address in cores}
        per_host = {host: sum(1 for h in hosts.values() if h == host) for host in hosts.values()}
        return {address: max(1, (n or 1) // per_host[hosts[address]]) for address, n in cores.items()}

    def check_paths(self, paths: Sequence[Path]) -> None:
        """Stop with the worker and the path when a worker cannot see one of ``paths``."""
        missing: dict[str, list[str]] = self.client.run(_missing_paths, [str(p) for p in paths])
        for worker, absent in sorted(missing.items()):
            if absent:
                raise InputError(
                    f"Dask worker {worker} cannot see the input {absent[0]}: the workers read the inputs "
                    f"themselves, so the files must be on a filesystem every worker mounts at the same path")

    def map_unordered(
        self,
        function: Callable[..., Result],
        items: Sequence[Item],
        *arguments: Any,
        on_lost: Callable[[Item, BaseException], Result],
    ) -> Iterator[Result]:
        """``function(*arguments, item)`` for each item, the first items first (Dask priorities);
        results in the order they finish. A task whose workers died ``allowed-failures`` times
        (Dask's ``KilledWorker``) gives ``on_lost(item, error)``: the item itself kills workers."""
        for _, result in self._completed(function, items, arguments, on_lost):
            yield result

    def map_ordered(
        self,
        function: Callable[..., Result],
        items: Sequence[Item],
        *arguments: Any,
        on_lost: Callable[[Item, BaseException], Result],
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Result]:
        """As :meth:`map_unordered`, but the results in the order of ``items`` (the order the
        local path gives them in), ``progress(done, total)`` as they finish."""
        results: dict[int, Result] = {}
        for index, result in self._completed(function, items, arguments, on_lost):
            results[index] = result
            if progress:
                progress(len(results), len(items))
        return [results[index] for index in range(len(items))]

    def _completed(
        self,
        function: Callable[..., Result],
        items: Sequence[Item],
        arguments: tuple[Any, ...],
        on_lost: Callable[[Item, BaseException], Result],
    ) -> Iterator[tuple[int, Result]]:
        """(index of the item, its result) as the tasks finish; the arguments common to all
        tasks are sent once (see below), not with each task."""
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        prefer_own_libpython()
        # Each common argument travels once, as the result of a task that returns it (a cohort table
        # is then not sent with every task). Unlike scattered data, which is lost with the workers
        # holding it (and the tasks needing it cancelled), a task's result is recomputed elsewhere.
        shared = [self.client.submit(_same, argument, pure=False, priority=len(items) + 1) for argument in arguments]
        futures = {
            self.client.submit(function, *shared, item, pure=False, priority=len(items) - index): index
            for index, item in enumerate(items)
        }
        for future in as_completed(futures, loop=self.client.loop):
            index = futures[future]
            try:
                yield index, future.result()
            except KilledWorker as error:
                yield index, on_lost(items[index], error)
            finally:
                future.release()


def _same(argument: Item) -> Item:
    """A task returning its argument: how :meth:`DaskExecutor._completed` sends common arguments once."""
    return argument


def run_tasks(
    function: Callable[..., Result],
    items: Sequence[Item],
    *arguments: Any,
    cluster: str = LOCAL,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
    on_lost: Callable[[Item, BaseException], Result],
    worker_paths: Sequence[Path] = (),
) -> list[Result]:
    """``function(*arguments, item)`` for every item, the results in the order of ``items``.

    ``cluster`` ``local``: in this process (``workers <= 1``) or in ``workers`` spawned
    processes; else as tasks of that Dask cluster (the first items first). ``function`` and
    its arguments must be picklable (module-level functions, ``functools.partial`` of them).
    A task whose Dask workers all died gives ``on_lost(item, error)``; on the local pool a
    dead process stops the run (Python's ``BrokenProcessPool``), as it always has. The
    results do not depend on where the tasks ran: each must depend only on its item and
    arguments (a seed is part of the item). ``worker_paths``: files the tasks read, which
    every Dask worker must see (:meth:`DaskExecutor.check_paths`, before the first task)."""
    if not items:
        return []
    with cluster_session(cluster) as executor:
        if executor is not None:
            executor.check_paths(worker_paths)
            return executor.map_ordered(function, items, *arguments, on_lost=on_lost, progress=progress)
    call = functools.partial(function, *arguments)
    in_process = workers <= 1 or len(items) == 1
    pool = None if in_process else ProcessPoolExecutor(max_workers=min(workers, len(items)),
                                                       mp_context=multiprocessing.get_context("spawn"))
    with pool or nullcontext():
        results = []
        for result in (pool.map(call, items) if pool else map(call, items)):
            results.append(result)
            if progress:
                progress(len(results), len(items))
    return results


def _missing_paths(paths: Iterable[str]) -> list[str]:
    """Run on each worker: the paths it cannot see."""
    return [p for p in paths if not Path(p).exists()]


_sessions: dict[str, DaskExecutor] = {}

LOCAL_CLUSTER_CONFIG = {
    # Dask's nannies put MALLOC_TRIM_THRESHOLD_ and OMP/MKL/OPENBLAS_NUM_THREADS=1 into this
    # process's environment before starting a worker; with them extraction took 12% longer
    # (benchmarks/dask.md). The workers get the local pool's environment instead.
    "distributed.nanny.pre-spawn-environ": {},
    # One task per worker thread, none queued on the worker: when a worker dies, only the
    # case it was computing is suspected (Dask's allowed-failures), never a case queued
    # behind it (found by test_a_case_that_kills_every_worker_it_runs_on_is_excluded...).
    "distributed.scheduler.worker-saturation": 1.0,
}


@contextmanager
def cluster_session(
    spec: str | ClusterSpec, note: Callable[[str], None] | None = None
) -> Iterator[DaskExecutor | None]:
    """The cluster for the duration of the block: None for ``local``; a Dask executor
    otherwise (a LocalCluster started for ``dask:N``, or the scheduler at the address). A
    session already open for the same SPEC (the command line opens one per run) is reused."""
    parsed = spec if isinstance(spec, ClusterSpec) else parse_cluster(spec)
    if parsed.is_local:
        yield None
        return
    if parsed.text in _sessions:
        yield _sessions[parsed.text]
        return
    client, cluster = _start(parsed)
    executor = DaskExecutor(client, parsed)
    _sessions[parsed.text] = executor
    try:
        _announce(executor, note or log.info)
        yield executor
    finally:
        del _sessions[parsed.text]
        client.close()
        if cluster is not None:
            cluster.close()


def _start(spec: ClusterSpec) -> tuple[Any, Any]:
    """(client, LocalCluster or None); a scheduler that does not answer is an input error."""
    from distributed import Client, LocalCluster

    if spec.n_workers is not None:
        import dask

        prefer_own_libpython()
        with dask.config.set(LOCAL_CLUSTER_CONFIG):
            cluster = LocalCluster(n_workers=spec.n_workers, threads_per_worker=1, processes=True,
                                   dashboard_address=":0", silence_logs=logging.ERROR)
        return Client(cluster, set_as_default=False), cluster
    try:
        client = Client(spec.address, timeout="20s", set_as_default=False)
    except OSError as error:
        raise InputError(f"--cluster {spec.text}: no Dask scheduler answers there ({error})") from error
    try:
        client.wait_for_workers(1, timeout=WORKER_WAIT_SECONDS)
    except TimeoutError as error:
        client.close()
        raise InputError(f"--cluster {spec.text}: the scheduler has no worker "
                         f"(none joined within {WORKER_WAIT_SECONDS} s)") from error
    return client, None


def prefer_own_libpython() -> None:
    """Put this interpreter's library folder first on LD_LIBRARY_PATH, for the processes it starts.

    Starting R (rpy2) sets LD_LIBRARY_PATH to R's and the system's library folders; a
    Python started after that with a shared libpython (pyenv's, here) then loads the
    system's libpython of the same minor version, whose missing symbols stop a Dask worker
    at ``import ssl``. The nannies of a LocalCluster start (and restart) their workers
    from this process's environment, so it is set here, before they start and before
    each batch of tasks (a killed worker is restarted then). This process's own libraries
    are loaded already: the change reaches only the processes started from now on."""
    current = os.environ.get("LD_LIBRARY_PATH")
    if not current or not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        return
    folders = [str(sysconfig.get_config_var("LIBDIR")), *filter(None, current.split(":"))]
    os.environ["LD_LIBRARY_PATH"] = ":".join(dict.fromkeys(folders))


def _announce(executor: DaskExecutor, note: Callable[[str], None]) -> None:
    """One line: the cluster, its workers, and the dashboard address when it has one."""
    info = executor.client.scheduler_info()
    # a LocalCluster's scheduler runs here: its dashboard's pages need bokeh here
    served = "dashboard" in info.get("services", {}) and (
        executor.spec.address is not None or importlib.util.find_spec("bokeh") is not None)
    dashboard = f"dashboard {executor.client.dashboard_link}" if served else "no dashboard (bokeh is not installed)"
    note(f"Dask cluster {executor.spec.text}: scheduler {info['address']}, {len(info['workers'])} workers, {dashboard}")
