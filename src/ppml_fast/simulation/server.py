"""The simulation's server side: client sampling and aggregation, per mode.

An aggregator object says how the server combines the sampled clients' updates
(:class:`FedAvg`, :class:`DPFedAvg`, :class:`SecureAggregation`,
:class:`PaillierAggregation`); :class:`_Server` carries it out round by round and returns
the round's :class:`_Outcome`: the mean update (``None`` for an aborted round), how many
clients it counts, what one client sent, and the accountant's event for DP-FedAvg.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from collections.abc import Callable
from typing import Literal, NamedTuple, cast

import numpy as np

from .. import aggregation, paillier
from .. import rng as _rng
from .._validation import HALF_OPEN_UNIT, POSITIVE, check_int, check_scalar
from .client import _check_dp, _ClientResult

__all__ = ["Aggregator", "DPFedAvg", "FedAvg", "PaillierAggregation", "SecureAggregation"]


@dataclasses.dataclass(frozen=True)
class FedAvg:
    """Plain federated averaging (McMahan et al. 2017).

    Parameters
    ----------
    weighted : bool
        Weight each update by the client's number of examples; ``False``: all clients
        count equally.
    """

    weighted: bool = True


@dataclasses.dataclass(frozen=True)
class DPFedAvg:
    """DP-FedAvg (McMahan et al. 2018): client-level DP at the server.

    Clients are Poisson-sampled at rate ``fraction``; each update is clipped to
    ``clip_norm``, the sum gets N(0, (σ C)²) noise and is divided by the expected number
    of clients (:func:`ppml_fast.aggregation.dp_fedavg`).

    Parameters
    ----------
    clip_norm : float > 0
        ``C``, the L2 bound of each client's update.
    noise_multiplier : float >= 0
        σ.
    delta : float in (0, 1)
        The δ at which the client-level ε is reported.

    Raises
    ------
    ValueError
        A setting out of range.
    """

    clip_norm: float = 1.0
    noise_multiplier: float = 1.0
    delta: float = 1e-5

    def __post_init__(self) -> None:
        _check_dp(self.noise_multiplier, "clip_norm", self.clip_norm, self.delta)


@dataclasses.dataclass(frozen=True)
class SecureAggregation:
    """Secure aggregation of the unweighted updates with simulated dropouts.

    The server learns only the fixed-point sum of the surviving clients' updates
    (:func:`ppml_fast.aggregation.secure_aggregate`) and divides it by their number.

    Parameters
    ----------
    neighbors : int >= 2, "auto" or None
        ``None`` is SecAgg (Bonawitz et al. 2017: masks between all pairs); an even int
        ``k`` is SecAgg+ (Bell et al. 2020: masks with ``k`` neighbours in a random
        graph; all pairs when ``k`` is not below the number of other clients);
        ``"auto"`` picks ``k`` near ``2 log2`` of the number of clients per round.
    dropout : float in [0, 1)
        The probability that a sampled client drops out (after sharing its keys, before
        sending its masked input).
    clip : float > 0
        Values are clipped to ``[-clip, clip]`` before encoding.
    frac_bits : int in [0, 52]
        Fractional bits of the fixed-point encoding.
    threshold : int >= 2, optional
        The Shamir threshold (default: a majority of each client's neighbours). It must
        be a strict majority of each client's share holders in every round
        (:func:`ppml_fast.aggregation.secure_aggregate` raises ``ValueError`` otherwise).

    Raises
    ------
    ValueError
        A setting out of range.

    Notes
    -----
    A round whose masks cannot be removed (:class:`ppml_fast.aggregation.SecAggError`)
    is aborted: the model stays as it was.
    """

    neighbors: int | Literal["auto"] | None = None
    dropout: float = 0.0
    clip: float = 4.0
    frac_bits: int = 16
    threshold: int | None = None

    def __post_init__(self) -> None:
        if self.neighbors is not None and not (
            isinstance(self.neighbors, str) and self.neighbors == "auto"
        ):
            check_int(self.neighbors, "neighbors", minimum=2)
        check_scalar(self.dropout, "dropout", HALF_OPEN_UNIT)
        check_scalar(self.clip, "clip", POSITIVE)
        check_int(self.frac_bits, "frac_bits", minimum=0, maximum=52)
        if self.threshold is not None:
            check_int(self.threshold, "threshold", minimum=2)


@dataclasses.dataclass(frozen=True)
class PaillierAggregation:
    """Additively homomorphic aggregation under Paillier.

    Clients encrypt (``weight x``) their update under the public key of a simulated
    decryptor; the server multiplies ciphertexts (adds the plaintexts) and the decryptor
    decrypts the sum and divides it by the total weight.

    Parameters
    ----------
    key_bits : int >= 256
        The modulus length of the decryptor's key.
    precision : float > 0
        The encoding's precision.
    weighted : bool
        Weight each update by the client's number of examples.

    Raises
    ------
    ValueError
        A setting out of range.
    """

    key_bits: int = 1024
    precision: float = 2.0**-24
    weighted: bool = True

    def __post_init__(self) -> None:
        check_int(self.key_bits, "key_bits", minimum=256)
        check_scalar(self.precision, "precision", POSITIVE)


#: How the server combines the sampled clients' updates.
Aggregator = FedAvg | DPFedAvg | SecureAggregation | PaillierAggregation

_AGGREGATORS: dict[str, Callable[[], Aggregator]] = {
    "fedavg": FedAvg,
    "dp-fedavg": DPFedAvg,
    "secagg": SecureAggregation,
    "secagg+": functools.partial(SecureAggregation, neighbors="auto"),
    "paillier": PaillierAggregation,
}


def _resolve_aggregator(aggregator: Aggregator | str) -> Aggregator:
    """The aggregator named ``aggregator`` (with its defaults), or ``aggregator`` itself.

    Raises
    ------
    ValueError
        An unknown name.
    TypeError
        Neither a name nor an aggregator object.
    """
    if isinstance(aggregator, str):
        if aggregator not in _AGGREGATORS:
            raise ValueError(
                f"aggregator must be one of {sorted(_AGGREGATORS)} or an aggregator object, "
                f"got {aggregator!r}"
            )
        return _AGGREGATORS[aggregator]()
    if not isinstance(aggregator, (FedAvg, DPFedAvg, SecureAggregation, PaillierAggregation)):
        raise TypeError(
            "aggregator must be a name or FedAvg, DPFedAvg, SecureAggregation or "
            f"PaillierAggregation, got {type(aggregator).__name__}"
        )
    return aggregator


class _Outcome(NamedTuple):
    """What the server made of one round.

    Attributes
    ----------
    mean : ndarray of float64, shape (P,), or None
        The update to add to the global model; ``None``: the round was aborted.
    survivors : int
        The clients whose updates the mean counts.
    bytes_per_client : int or None
        What one client sent (``None`` when an aborted round does not say).
    event : dict or None
        DP-FedAvg's ``RDPAccountant.step`` keyword arguments for the round.
    """

    mean: np.ndarray | None
    survivors: int
    bytes_per_client: int | None
    event: dict[str, float] | None = None


class _Server:
    """Samples each round's clients and aggregates their results per the aggregator.

    Parameters
    ----------
    agg : Aggregator
    n_clients : int
        The number of clients to sample from.
    fraction : float in (0, 1]
        The share of clients sampled per round.
    dim : int
        The number of model parameters.

    Security
    --------
    Under :class:`PaillierAggregation` the server also plays the decryptor: it
    generates the key pair (from the OS CSPRNG, whatever the seed) and hands out only
    :attr:`public_key`.
    """

    def __init__(self, agg: Aggregator, n_clients: int, fraction: float, dim: int) -> None:
        self.agg = agg
        self.n_clients = n_clients
        self.fraction = fraction
        self.dim = dim
        self.public_key: paillier.PaillierPublicKey | None = None
        self._private_key: paillier.PaillierPrivateKey | None = None
        if isinstance(agg, PaillierAggregation):
            self.public_key, self._private_key = paillier.generate_paillier_keypair(
                n_length=agg.key_bits
            )

    def client_scale(self, count: float) -> float:
        """What a client multiplies its update by: its example count for weighted
        Paillier aggregation (the decryptor divides the sum by the total count)."""
        agg = self.agg
        return count if isinstance(agg, PaillierAggregation) and agg.weighted else 1.0

    @property
    def precision(self) -> float:
        """The Paillier encoding's precision (0 when the clients do not encrypt)."""
        return self.agg.precision if isinstance(self.agg, PaillierAggregation) else 0.0

    def sample(self, gen: np.random.Generator) -> np.ndarray:
        """The round's clients: Poisson at rate ``fraction`` under DP-FedAvg (needed for
        amplification by sampling), else a uniform subset of fixed size."""
        n = self.n_clients
        if isinstance(self.agg, DPFedAvg):
            return np.flatnonzero(gen.random(n) < self.fraction)
        m = max(1, round(self.fraction * n))
        return np.sort(gen.choice(n, m, replace=False))

    def aggregate(
        self, results: list[_ClientResult], counts: np.ndarray, gen: np.random.Generator | None
    ) -> _Outcome:
        """The round's mean update.

        Parameters
        ----------
        results : list of _ClientResult
            The sampled clients' results, in client order.
        counts : ndarray
            The sampled clients' example counts.
        gen : numpy.random.Generator or None
            The round's server stream (DP noise, dropouts, SecAgg+ graph); ``None`` for
            the secure stream.

        Returns
        -------
        _Outcome
        """
        agg = self.agg
        if isinstance(agg, SecureAggregation):
            return self._secure(agg, results, gen)
        sent = max((r.nbytes for r in results), default=0)
        if isinstance(agg, FedAvg):
            updates = np.stack(_plain(results))
            mean = aggregation.fedavg(updates, counts if agg.weighted else None)
            return _Outcome(mean, len(results), sent)
        if isinstance(agg, DPFedAvg):
            updates = np.stack(_plain(results)) if results else np.zeros((0, self.dim))
            expected = self.fraction * self.n_clients
            out = aggregation.dp_fedavg(
                updates,
                agg.clip_norm,
                agg.noise_multiplier,
                rng=gen,
                sample_rate=self.fraction,
                expected_clients=expected,
            )
            return _Outcome(np.asarray(out.update), len(results), sent, out.accounting)
        assert self._private_key is not None
        total = functools.reduce(operator.add, [r.update for r in results])
        plain = np.asarray(self._private_key.decrypt_batch(total), dtype=np.float64)
        denom = float(counts.sum()) if agg.weighted else float(len(results))
        return _Outcome(plain / denom, len(results), sent)

    def _secure(
        self,
        agg: SecureAggregation,
        results: list[_ClientResult],
        gen: np.random.Generator | None,
    ) -> _Outcome:
        """SecAgg(+) of the results, each sampled client dropping with rate ``dropout``."""
        m = len(results)
        dropped = (
            np.flatnonzero(_rng.resolve(gen).random(m) < agg.dropout)
            if agg.dropout
            else np.zeros(0, np.int64)
        )
        k = agg.neighbors
        if isinstance(k, int) and k >= m - 1:
            k = None
        try:
            out = aggregation.secure_aggregate(
                np.stack(_plain(results)),
                clip=agg.clip,
                frac_bits=agg.frac_bits,
                threshold=agg.threshold,
                neighbors=k,
                dropout=[int(i) for i in dropped],
                rng=gen,
            )
        except aggregation.SecAggError:
            return _Outcome(None, m - dropped.size, None)
        survivors = len(out.survivors)
        mean = np.asarray(out.sum, dtype=np.float64) / survivors
        return _Outcome(mean, survivors, int(out.bytes_per_client))


def _plain(results: list[_ClientResult]) -> list[np.ndarray]:
    """The results' updates: plaintext arrays in every mode but Paillier."""
    return [cast(np.ndarray, r.update) for r in results]
