"""Benchmark cases for :mod:`ppml_fast.simulation`: simulated clients per second.

The default experiment (digits, multinomial logistic regression, 2 local epochs of
batch-16 SGD per client) at a small size: 20 clients, all sampled, 2 rounds, so one call
is 40 client updates plus the server's aggregation and evaluation. "native" is the
default executor, a thread pool with one worker per core; the reference is the same run
on a single worker thread. The tasks are small (a few ms): the row measures the per-task
overhead of the executor as much as the arithmetic.

``full`` runs the same experiment again with a Dask ``LocalCluster`` of 2 worker
processes (one thread each) as a peer, started on first use and closed at exit (its
start-up takes seconds and its workers hundreds of MB, hence not in the quick run), so
``vs dask`` > 1 means the thread pool simulates more clients per second; and the MLP
with 100 clients.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from .. import simulation as sim
from . import Case, Data, select

ROUNDS = 2


class _Dask:
    """A 2-worker LocalCluster's executor, made on first use and closed at exit."""

    def __init__(self) -> None:
        self._executor: Executor | None = None

    def executor(self) -> Executor:
        if self._executor is None:
            import distributed

            cluster = distributed.LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",  # any free port: no clash with a running cluster
                silence_logs=logging.ERROR,
            )
            client = distributed.Client(cluster)
            atexit.register(cluster.close)
            atexit.register(client.close)
            self._executor = client.get_executor()
        return self._executor


class _Serial:
    """A one-thread pool, made on first use and shut down at exit."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None

    def executor(self) -> Executor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1)
            atexit.register(self._pool.shutdown)
        return self._pool


def _case(data: Data, name: str, model: str, clients: int, dask: _Dask | None, full: bool) -> Case:
    serial = _Serial()

    def run(executor: Callable[[], Executor | None]) -> Callable[[], Any]:
        def call() -> Any:
            return sim.run_simulation(
                data.get("digits", lambda: sim.load_dataset("digits")),
                model=model,
                clients=clients,
                fraction=1.0,
                rounds=ROUNDS,
                seed=0,
                executor=executor(),
            )

        return call

    return Case(
        "simulated clients/s, threads vs Dask" if dask else "simulated clients/s, threads",
        name,
        native=run(lambda: None),
        reference=run(serial.executor),
        reference_name="1 thread",
        peers={} if dask is None else {"dask": run(dask.executor)},
        items=clients * ROUNDS,
        full=full,
        data=data,
        check=lambda result: len(result.history) == ROUNDS,
    )


def cases(full: bool) -> list[Case]:
    """The simulation rows (none without scikit-learn, which ships the digits data).

    Parameters
    ----------
    full : bool
        Include the rows marked ``full``.

    Returns
    -------
    list of Case
        Logistic regression, 20 clients x 2 rounds, thread pool against one thread;
        ``full`` adds the same with a Dask peer and the MLP with 100 clients.
    """
    if importlib.util.find_spec("sklearn") is None:
        return []  # pip install ".[sim]"
    data = Data()
    lr = f"digits LR, 20 clients x {ROUNDS} rounds"
    out = [_case(data, lr, "logreg", 20, None, False)]
    dask = _Dask() if importlib.util.find_spec("distributed") is not None else None
    if dask is not None:
        out.append(_case(data, lr, "logreg", 20, dask, True))
    mlp = f"digits MLP, 100 clients x {ROUNDS} rounds"
    out.append(_case(data, mlp, "mlp", 100, dask, True))
    return select(out, full)
