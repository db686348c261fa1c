"""The simulation's driver: :func:`run_simulation` in three parts.

:func:`_check_arguments` validates and normalises every argument (and splits the data
over the clients); :func:`_run_rounds` is the round loop (sample, train clients through
the executor, aggregate, record); :class:`_PrivacyLedger` is the accounting, the ε spent
after each round.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, NamedTuple, TypeAlias

import numpy as np

from .. import _config, accounting
from .. import rng as _rng
from .._types import ArrayLike
from .._validation import POSITIVE, RATE, check_int, check_scalar
from .client import DPSGD, _client_update, _ClientResult, _ClientTask
from .data import Dataset, _check_data, _client_partition
from .models import Model, _resolve_model
from .records import RoundRecord, SimulationResult
from .server import (
    Aggregator,
    DPFedAvg,
    PaillierAggregation,
    SecureAggregation,
    _Outcome,
    _packed_layout,
    _resolve_aggregator,
    _Server,
)

__all__ = ["run_simulation"]


#: An accountant's history: Opacus' ``(noise_multiplier, sample_rate, steps)`` triples.
_History: TypeAlias = tuple[tuple[float, float, int], ...]

# The seed streams of a run (the first spawn-key entry under the master seed).
_PARTITION, _INIT, _SERVER, _CLIENT = range(4)


def _child(master: np.random.SeedSequence | None, *key: int) -> np.random.SeedSequence | None:
    """The seed of stream ``key`` (a pure function of the master seed and the key)."""
    if master is None:
        return None
    return np.random.SeedSequence(master.entropy, spawn_key=(*master.spawn_key, *key))


def run_simulation(
    data: Dataset,
    *,
    model: Model | str = "logreg",
    clients: int | None = None,
    alpha: float | None = None,
    partition: Sequence[ArrayLike] | None = None,
    rounds: int = 10,
    fraction: float = 0.5,
    local_epochs: int = 2,
    batch_size: int = 16,
    lr: float = 0.3,
    dp_sgd: DPSGD | None = None,
    aggregator: Aggregator | str = "fedavg",
    seed: int | np.random.SeedSequence | None = None,
    executor: Executor | None = None,
    progress: bool | None = None,
) -> SimulationResult:
    """Federated training of ``model`` on ``data`` over simulated clients.

    Parameters
    ----------
    data : Dataset
        Training rows (split over the clients) and test rows (the server's evaluation).
    model : Model or {"logreg", "mlp"}
    clients : int, optional
        Number of clients (default 20), split IID, or Dirichlet(``alpha``) by label.
    alpha : float > 0, optional
        Dirichlet label skew of the split (:func:`dirichlet_partition`); default IID.
    partition : sequence of index arrays, optional
        An explicit split of the training rows (then ``clients`` and ``alpha`` must be
        None): client ``j`` holds ``X_train[partition[j]]``.
    rounds : int >= 1
    fraction : float in (0, 1]
        The share of clients sampled per round: a fixed-size uniform subset, or each
        client independently at this rate under DP-FedAvg.
    local_epochs, batch_size, lr
        Local SGD: epochs over the client's data in shuffled batches (DP-SGD: Poisson
        batches of expected size ``batch_size``, ``epochs n_k / batch_size`` steps).
    dp_sgd : DPSGD, optional
        Train each client with DP-SGD; ε is reported per round (example level).
    aggregator : aggregator object or {"fedavg", "dp-fedavg", "secagg", "secagg+", \
"paillier", "ckks"}
        How the server combines the updates (see :mod:`ppml_fast.simulation`).
    seed : int or SeedSequence, optional
        Master seed for partitions, initial model, sampling and noise; None draws all of
        them from the secure stream.
    executor : concurrent.futures.Executor, optional
        Where client tasks run (default: a thread pool with one worker per core;
        ``distributed.Client(...).get_executor()`` for Dask). A given executor is left
        open.
    progress : bool, optional
        A tqdm progress bar (default: when stderr is a terminal and tqdm is installed).

    Returns
    -------
    SimulationResult
        The final parameters and one :class:`RoundRecord` per round.

    Raises
    ------
    TypeError
        An argument of the wrong type (``data``, ``model``, ``aggregator``, ``dp_sgd``,
        ``executor``, a count or a rate).
    ValueError
        An argument out of range; ``dp_sgd`` with DP-FedAvg; ``partition`` together with
        ``clients`` or ``alpha``; secure aggregation with fewer than 2 clients per round;
        a packed Paillier layout that does not fit (:class:`PaillierAggregation`); CKKS
        parameters that cannot meet the precision (:class:`CKKSAggregation`).
    ImportError
        ``progress=True`` without tqdm.

    Notes
    -----
    Every random draw comes from a stream derived from the master seed by the spawn key
    ``(stream, round, client)``, and the server reads client results in client order, so
    a seeded run gives the same records and model on any executor (under CKKS, within
    the aggregator's ``precision``: TenSEAL's encryption randomness is never seeded).
    """
    settings = _check_arguments(
        data,
        model=model,
        clients=clients,
        alpha=alpha,
        partition=partition,
        rounds=rounds,
        fraction=fraction,
        local_epochs=local_epochs,
        batch_size=batch_size,
        lr=lr,
        dp_sgd=dp_sgd,
        aggregator=aggregator,
        seed=seed,
        executor=executor,
        progress=progress,
    )
    return _run_rounds(settings)


class _Settings(NamedTuple):
    """:func:`run_simulation`'s arguments, checked and normalised."""

    data: Dataset
    X: np.ndarray  # the training rows as finite float64
    y: np.ndarray
    model: Model
    aggregator: Aggregator
    rounds: int
    fraction: float
    local_epochs: int
    batch_size: int
    lr: float
    dp_sgd: DPSGD | None
    master: np.random.SeedSequence | None  # None: the secure stream
    parts: list[np.ndarray]  # each client's training-row indices
    executor: Executor | None
    progress: bool | None


def _check_arguments(
    data: Dataset,
    *,
    model: Model | str,
    clients: int | None,
    alpha: float | None,
    partition: Sequence[ArrayLike] | None,
    rounds: int,
    fraction: float,
    local_epochs: int,
    batch_size: int,
    lr: float,
    dp_sgd: DPSGD | None,
    aggregator: Aggregator | str,
    seed: int | np.random.SeedSequence | None,
    executor: Executor | None,
    progress: bool | None,
) -> _Settings:
    """Validate and normalise :func:`run_simulation`'s arguments, in signature order
    (the data split last: it draws from the seed's partition stream). ``progress`` is
    passed on as given."""
    X, y = _check_data(data)
    mdl = _resolve_model(model)
    agg = _resolve_aggregator(aggregator)
    n_rounds = check_int(rounds, "rounds", minimum=1)
    frac = check_scalar(fraction, "fraction", RATE)
    epochs = check_int(local_epochs, "local_epochs", minimum=1)
    bsize = check_int(batch_size, "batch_size", minimum=1)
    step = check_scalar(lr, "lr", POSITIVE)
    if dp_sgd is not None and not isinstance(dp_sgd, DPSGD):
        raise TypeError(f"dp_sgd must be a DPSGD or None, got {type(dp_sgd).__name__}")
    if dp_sgd is not None and isinstance(agg, DPFedAvg):
        raise ValueError(
            "dp_sgd cannot be combined with the dp-fedavg aggregator: choose example-level "
            "DP (dp_sgd) or client-level DP (DPFedAvg)"
        )
    if executor is not None and not isinstance(executor, Executor):
        raise TypeError(
            "executor must be a concurrent.futures.Executor (e.g. a Dask client's "
            f"get_executor()), got {type(executor).__name__}"
        )
    master: np.random.SeedSequence | None
    if isinstance(seed, np.random.SeedSequence):
        master = seed
    elif seed is None:
        master = None
    else:
        master = np.random.SeedSequence(check_int(seed, "seed", minimum=0))
    parts = _client_partition(
        y, clients, alpha, partition, _rng.default_rng(_child(master, _PARTITION))
    )
    if isinstance(agg, SecureAggregation) and round(frac * len(parts)) < 2:
        raise ValueError(
            f"secure aggregation needs >= 2 clients per round: fraction * clients must be "
            f">= 1.5, got {frac} * {len(parts)}"
        )
    if isinstance(agg, PaillierAggregation):  # the packed layout, before any key or round
        sizes = np.array([p.size for p in parts], dtype=np.float64)
        _packed_layout(agg, max(1, round(frac * len(parts))), sizes)
    return _Settings(
        data=data,
        X=X,
        y=y,
        model=mdl,
        aggregator=agg,
        rounds=n_rounds,
        fraction=frac,
        local_epochs=epochs,
        batch_size=bsize,
        lr=step,
        dp_sgd=dp_sgd,
        master=master,
        parts=parts,
        executor=executor,
        progress=progress,
    )


def _run_rounds(s: _Settings) -> SimulationResult:
    """The round loop: sample clients, run their tasks on the executor, aggregate, record."""
    X, y, mdl, master = s.X, s.y, s.model, s.master
    counts = np.array([p.size for p in s.parts], dtype=np.float64)
    params = mdl.init(_rng.default_rng(_child(master, _INIT)), X.shape[1], s.data.n_classes)
    server = _Server(s.aggregator, len(s.parts), s.fraction, params.size, counts)
    ledger = _PrivacyLedger(s.dp_sgd, s.aggregator)

    own_pool = s.executor is None
    pool = ThreadPoolExecutor(max_workers=_config.get_num_threads()) if own_pool else s.executor
    assert pool is not None
    bar = _progress_bar(s.rounds, s.progress)
    history: list[RoundRecord] = []
    try:
        for r in range(s.rounds):
            gen = _rng.default_rng(_child(master, _SERVER, r))
            chosen = server.sample(gen)
            tasks = [
                _ClientTask(
                    mdl,
                    params,
                    X[s.parts[c]],
                    y[s.parts[c]],
                    s.local_epochs,
                    s.batch_size,
                    s.lr,
                    s.dp_sgd,
                    _child(master, _CLIENT, r, int(c)),
                    server.client_scale(float(counts[c])),
                    server.public_key,
                    server.precision,
                    server.packing,
                    server.ckks_client,
                )
                for c in chosen
            ]
            t0 = time.perf_counter()
            futures = [pool.submit(_client_update, t) for t in tasks]
            results = [f.result() for f in futures]
            t1 = time.perf_counter()
            outcome = server.aggregate(results, counts[chosen], gen if master is not None else None)
            t2 = time.perf_counter()
            if outcome.mean is not None:
                params = params + outcome.mean
            eps, acc_hist = ledger.after_round(chosen, results, outcome)
            history.append(
                RoundRecord(
                    round=r + 1,
                    clients=len(chosen),
                    survivors=outcome.survivors,
                    train_loss=mdl.loss(params, X, y),
                    test_accuracy=mdl.accuracy(params, s.data.X_test, s.data.y_test),
                    epsilon=eps,
                    bytes_per_client=outcome.bytes_per_client,
                    client_s=t1 - t0,
                    aggregation_s=t2 - t1,
                    aborted=outcome.mean is None,
                    accounting=acc_hist,
                    packing_factor=server.packing_factor,
                    encrypt_s=_mean_of(r.encrypt_s for r in results),
                    decrypt_s=outcome.decrypt_s,
                    clipped=_sum_of(r.clipped for r in results),
                )
            )
            if bar is not None:
                bar.update(1)
                bar.set_postfix(acc=f"{history[-1].test_accuracy:.3f}")
    finally:
        if bar is not None:
            bar.close()
        if own_pool:
            pool.shutdown()
    return SimulationResult(params, mdl, history)


def _mean_of(values: Iterable[float | None]) -> float | None:
    """The mean of the values that are not None (None if there are none)."""
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _sum_of(values: Iterable[int | None]) -> int | None:
    """The sum of the values that are not None (None if there are none)."""
    known = [v for v in values if v is not None]
    return sum(known) if known else None


class _PrivacyLedger:
    """The ε spent after each round, and the accountant history behind it.

    DP-SGD: one RDP accountant per client, stepped once per local step at the client's
    sample rate; the run reports the worst (largest) ε. DP-FedAvg: one accountant at
    the server, stepped once per round with the aggregate's event. Otherwise nothing.
    """

    def __init__(self, dp_sgd: DPSGD | None, agg: Aggregator) -> None:
        self._dp_sgd = dp_sgd
        self._dp_fedavg = agg if isinstance(agg, DPFedAvg) else None
        self._clients: dict[int, accounting.RDPAccountant] = {}
        self._server = accounting.RDPAccountant() if self._dp_fedavg is not None else None

    def after_round(
        self, chosen: np.ndarray, results: list[_ClientResult], outcome: _Outcome
    ) -> tuple[float | None, _History | None]:
        """Record the round; return ``(epsilon, history)``, ``(None, None)`` without DP."""
        if self._dp_sgd is not None:
            for c, res in zip(chosen, results, strict=True):
                acct = self._clients.setdefault(int(c), accounting.RDPAccountant())
                assert res.sample_rate is not None
                for _ in range(res.steps):
                    acct.step(
                        noise_multiplier=self._dp_sgd.noise_multiplier,
                        sample_rate=res.sample_rate,
                    )
            return _worst(self._clients, self._dp_sgd.delta)
        if self._dp_fedavg is not None:
            assert self._server is not None and outcome.event is not None
            self._server.step(**outcome.event)
            return self._server.get_epsilon(self._dp_fedavg.delta), tuple(self._server.history)
        return None, None


def _worst(
    accountants: dict[int, accounting.RDPAccountant], delta: float
) -> tuple[float, _History]:
    """The largest ε over the clients' accountants, and that accountant's history."""
    best_eps: float = 0.0
    best_hist: _History = ()
    for c in sorted(accountants):
        eps = accountants[c].get_epsilon(delta)
        if eps > best_eps or not best_hist:
            best_eps, best_hist = eps, tuple(accountants[c].history)
    return best_eps, best_hist


def _progress_bar(rounds: int, enabled: bool | None) -> Any:
    """A tqdm bar over the rounds, or None (``enabled=None``: when stderr is a terminal
    and tqdm is installed)."""
    if enabled is False or (enabled is None and not sys.stderr.isatty()):
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if enabled:
            raise ImportError("progress=True needs tqdm: pip install tqdm") from None
        return None
    return tqdm(total=rounds, unit="round", desc="federated rounds")
