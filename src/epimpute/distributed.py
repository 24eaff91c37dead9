"""Imputation windows on a Dask cluster: a local one, or a running scheduler's.

Each task imputes one window (one bin range, every target) and writes the output store's
chunks of that window, so no two tasks write the same chunk and the result equals a run
in one process bit for bit. A worker rebuilds the model and opens the stores once per
process (see :class:`epimpute.imputed_store.StoreJob`); every worker must see the model
folder, the input store and the output folder at the same paths (a shared file system
across nodes; see ``docs/scale.md``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from epimpute.errors import InputError
from epimpute.imputation import Window
from epimpute.imputed_store import StoreJob, WindowWriter

_WRITERS: dict[tuple[str, ...], WindowWriter] = {}


def _run_window(window: Window, job: StoreJob) -> Window:
    """Task body: this process's writer for ``job`` imputes and writes ``window``."""
    key = (job.model_dir, job.weights, job.inputs, job.partial)
    writer = _WRITERS.get(key)
    if writer is None:
        _WRITERS.clear()  # one imputation per worker at a time
        writer = _WRITERS[key] = job.build()
    return writer(window)


class DaskRunner:
    """Run imputation windows on Dask; use as a context manager (it connects on entry).

    Parameters
    ----------
    workers
        Start a local cluster of this many worker processes, one thread each.
    scheduler
        Address of a running scheduler (``tcp://host:8786``) instead.
    connect_timeout
        Seconds to wait for the scheduler.
    """

    def __init__(self, *, workers: int | None = None, scheduler: str | None = None,
                 connect_timeout: float = 5.0) -> None:
        if (workers is None) == (scheduler is None):
            raise InputError("give either --workers N or --scheduler ADDRESS")
        if workers is not None and workers < 1:
            raise InputError(f"--workers must be at least 1, got {workers}")
        self.workers, self.scheduler, self.connect_timeout = workers, scheduler, connect_timeout
        self._cluster: Any = None
        self._client: Any = None

    def __enter__(self) -> DaskRunner:
        from dask.distributed import Client, LocalCluster

        if self.scheduler is not None:
            try:
                self._client = Client(self.scheduler, timeout=f"{self.connect_timeout}s")
            except (OSError, TimeoutError, ValueError) as error:
                raise InputError(f"cannot reach the Dask scheduler at {self.scheduler} "
                                 f"({error})") from None
        else:
            self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                         processes=True, dashboard_address=None,
                                         silence_logs=logging.WARNING)
            self._client = Client(self._cluster)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        self._client = self._cluster = None

    def __call__(self, job: StoreJob | None, local: WindowWriter, windows: Sequence[Window],
                 on_done: Callable[[Window], None]) -> None:
        from dask.distributed import as_completed

        if self._client is None:
            raise RuntimeError("DaskRunner is used outside its 'with' block")
        if job is None:
            raise ValueError("DaskRunner needs a StoreJob")
        shared = self._client.scatter(job, broadcast=True)  # sent once, not with every task
        futures = self._client.map(_run_window, list(windows), job=shared, pure=False)
        for future in as_completed(futures):
            on_done(future.result())
