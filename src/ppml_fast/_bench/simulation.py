"""Benchmark row for :mod:`ppml_fast.simulation`: simulated clients per second.

The default experiment (digits, multinomial logistic regression, 2 local epochs of
batch-16 SGD per client) at a small size: 20 clients, all sampled, 2 rounds, so one call
is 40 client updates plus the server's aggregation and evaluation. "native" is the
default executor, a thread pool with one worker per core; the reference is the same run
on a single worker thread; the peer is a Dask ``LocalCluster`` of 2 worker processes
(one thread each), started on first use and closed at exit, so ``vs dask`` > 1 means the
thread pool simulates more clients per second. The tasks are small (a few ms): the row
measures the per-task overhead of each executor as much as the arithmetic. ``--full``
adds the MLP with 100 clients.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from .. import simulation as sim
from . import Case

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
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            client = distributed.Client(cluster)
            atexit.register(cluster.close)
            atexit.register(client.close)
            self._executor = client.get_executor()
        return self._executor


def _case(name: str, model: str, clients: int, dask: _Dask | None) -> Case:
    data: list[sim.Dataset] = []
    serial = ThreadPoolExecutor(1)
    atexit.register(serial.shutdown)

    def run(executor: Callable[[], Executor | None]) -> Callable[[], Any]:
        def call() -> Any:
            if not data:
                data.append(sim.load_dataset("digits"))
            return sim.run_simulation(
                data[0],
                model=model,
                clients=clients,
                fraction=1.0,
                rounds=ROUNDS,
                seed=0,
                executor=executor(),
            )

        return call

    peers = {} if dask is None else {"dask": run(dask.executor)}
    return Case(
        "simulated clients/s, threads vs Dask",
        name,
        native=run(lambda: None),
        reference=run(lambda: serial),
        reference_name="1 thread",
        peers=peers,
        items=clients * ROUNDS,
    )


def cases(full: bool) -> list[Case]:
    if importlib.util.find_spec("sklearn") is None:
        return []  # the digits data ship with scikit-learn (pip install ".[sim]")
    dask = _Dask() if importlib.util.find_spec("distributed") is not None else None
    out = [_case(f"digits LR, 20 clients x {ROUNDS} rounds", "logreg", 20, dask)]
    if full:
        out.append(_case(f"digits MLP, 100 clients x {ROUNDS} rounds", "mlp", 100, dask))
    return out
