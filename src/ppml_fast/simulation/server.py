"""The simulation's server side: client sampling and aggregation, per mode.

An aggregator object says how the server combines the sampled clients' updates
(:class:`FedAvg`, :class:`DPFedAvg`, :class:`SecureAggregation`,
:class:`PaillierAggregation`, :class:`CKKSAggregation`); :class:`_Server` carries it out
round by round and returns the round's :class:`_Outcome`: the mean update (``None`` for
an aborted round), how many clients it counts, what one client sent, the accountant's
event for DP-FedAvg, and the decryption time under Paillier and CKKS.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import operator
import time
from collections.abc import Callable
from typing import Any, Literal, NamedTuple, cast

import numpy as np

from .. import aggregation, ckks, paillier
from .. import rng as _rng
from .._validation import (
    HALF_OPEN_UNIT,
    POSITIVE,
    check_bool,
    check_choice,
    check_int,
    check_scalar,
)
from .client import _check_dp, _CKKSClient, _ClientResult, _PackedLayout

__all__ = [
    "Aggregator",
    "CKKSAggregation",
    "DPFedAvg",
    "FedAvg",
    "PaillierAggregation",
    "SecureAggregation",
]


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
    """Additively homomorphic aggregation under Paillier, packed by default.

    Clients encrypt (``weight x``) their update under the public key of a simulated
    decryptor; the server multiplies ciphertexts (adds the plaintexts) and the decryptor
    decrypts the sum and divides it by the total weight.

    With ``packing`` (the default) each client clips every coordinate of its update to
    ``[-clip, clip]``, multiplies it by its weight, quantises it to a ``bits``-bit
    fixed-point integer and packs many of them into one plaintext
    (:func:`ppml_fast.paillier.encrypt_packed`, BatchCrypt); the server adds the packed
    ciphertexts (:func:`ppml_fast.paillier.sum_packed`) and the decryptor unpacks the
    slot sums (:func:`ppml_fast.paillier.decrypt_packed`). A client then sends, and the
    server adds and decrypts, about ``slots`` times fewer ciphertexts: the records'
    ``packing_factor``. Without packing every coordinate is its own ciphertext
    (:meth:`ppml_fast.paillier.PaillierPublicKey.encrypt_batch` at ``precision``).

    Parameters
    ----------
    key_bits : int >= 256
        The modulus length of the decryptor's key.
    precision : float > 0
        The per-value encoding's precision (``packing=False`` only).
    weighted : bool
        Weight each update by the client's number of examples.
    packing : bool
        Pack many quantised coordinates into each ciphertext (the default); ``False``:
        one ciphertext per coordinate.
    clip : float > 0
        Packing only: every coordinate of a client's update (before weighting) is clipped
        to ``[-clip, clip]``; values beyond it are clipped, never wrapped.
    bits : int in [2, 53]
        Packing only: the width of one quantised (weighted) coordinate.
        ``bits + ceil(log2(m))``, for ``m`` clients per round, must be at most 64.

    Raises
    ------
    TypeError
        A setting of the wrong type.
    ValueError
        A setting out of range.

    Notes
    -----
    The packed layout of a run is fixed before the first round. Let ``m`` be the clients
    sampled per round and ``W`` the largest weight (the largest client's example count
    when ``weighted``, else 1). A client sends ``w x`` with ``|x_i| <= clip`` and
    ``w <= W``, so every encoded value lies in ``[-B, B]`` with ``B = W clip``; the
    fractional bits ``f`` are the largest with ``rint(B 2^f) <= 2^(bits-1) - 1``, and
    each slot has ``ceil(log2(m))`` headroom bits, so the sum of the ``m`` clients'
    ``w x`` cannot carry from one slot into the next. The layout's ``clients`` is ``m``.

    The decrypted sum is exact in fixed point: ``sum_k rint(w_k x_k 2^f) 2^-f``. The
    round's mean update is therefore within ``m 2^-f / (2 D)`` of the mean of the
    clipped updates, per coordinate, with ``D`` the total weight (the sampled clients'
    examples when weighted, else ``m``); ``2^-f`` is about ``W clip 2^(1 - bits)``.
    With a key of ``|n|`` bits a ciphertext holds ``floor((|n| - 2) / (bits +
    ceil(log2(m))))`` values.

    Security
    --------
    Packing changes what a plaintext holds, not how it is encrypted: every ciphertext is
    a fresh Paillier encryption. The layout (``bits``, ``clip``, ``m``, ``W``) is public.
    """

    key_bits: int = 1024
    precision: float = 2.0**-24
    weighted: bool = True
    packing: bool = True
    clip: float = 4.0
    bits: int = 32

    def __post_init__(self) -> None:
        check_int(self.key_bits, "key_bits", minimum=256)
        check_scalar(self.precision, "precision", POSITIVE)
        check_bool(self.weighted, "weighted")
        check_bool(self.packing, "packing")
        check_scalar(self.clip, "clip", POSITIVE)
        check_int(self.bits, "bits", minimum=2, maximum=paillier.packing.MAX_BITS)


def _packed_layout(
    agg: PaillierAggregation, per_round: int, counts: np.ndarray
) -> _PackedLayout | None:
    """The run's packed layout (None without packing), checked.

    Parameters
    ----------
    agg : PaillierAggregation
    per_round : int
        The clients sampled per round (the most contributions a sum holds).
    counts : ndarray
        Every client's example count (the weights when ``agg.weighted``).

    Raises
    ------
    ValueError
        ``bits + ceil(log2(per_round))`` above 64, or a bound ``clip * largest weight``
        that is not finite (messages name the setting).
    """
    if not agg.packing:
        return None
    headroom = (per_round - 1).bit_length()
    limit = paillier.packing.MAX_SLOT_BITS
    if agg.bits + headroom > limit:
        raise ValueError(
            f"PaillierAggregation: bits + ceil(log2(clients per round)) must be <= {limit} "
            f"(a slot sum fits 64 bits), got bits={agg.bits} with {per_round} clients per "
            f"round ({agg.bits} + {headroom}): lower bits or the clients per round"
        )
    weight = float(counts.max()) if agg.weighted and counts.size else 1.0
    bound = float(agg.clip) * weight
    if not math.isfinite(bound):
        raise ValueError(
            f"PaillierAggregation: clip * largest weight must be finite, got clip={agg.clip} "
            f"and weight {weight}"
        )
    return _PackedLayout(int(agg.bits), per_round, float(agg.clip), bound)


@dataclasses.dataclass(frozen=True)
class CKKSAggregation:
    """Aggregation of CKKS-encrypted updates (:mod:`ppml_fast.ckks`, on TenSEAL).

    A simulated key holder makes a CKKS context; the server (the aggregator) receives only
    its public part (:func:`ppml_fast.ckks.public_context`). Each client clips every
    coordinate of its update to ``[-bound, bound]``, encrypts it, packed into
    ``ceil(P / slots)`` ciphertexts (:func:`ppml_fast.ckks.encrypt`), and sends the
    ciphertexts; the server computes the weighted average on them
    (:func:`ppml_fast.aggregation.encrypted_fedavg`) and the key holder decrypts it.

    Parameters
    ----------
    preset : {"aggregation", "general"}
        ``"aggregation"``: the addition-only parameters sized for the clients of a round,
        ``bound`` and ``precision`` (:func:`ppml_fast.ckks.aggregation_parameters`);
        ``"general"``: N = 8192, primes [60, 40, 40, 60], scale 2^40
        (:func:`ppml_fast.ckks.general_parameters`), checked against ``precision``.
    symmetric : bool
        The clients hold the secret key and encrypt with it (seeded ciphertexts, half the
        bytes); the server still gets only the public context, which then cannot encrypt
        either. Otherwise the clients get the public context and encrypt with the public
        key.
    precision : float > 0
        The largest absolute error allowed in any coordinate of a round's mean update
        (against plaintext FedAvg of the clipped updates), met with probability at least
        ``1 - 1e-9`` per round (:func:`ppml_fast.ckks.error_bound`). The run is refused
        when the parameters cannot meet it.
    bound : float > 0
        Every coordinate of a client's update is clipped to ``[-bound, bound]`` before it
        is weighted and encrypted; the parameters are sized so that the round's sum of
        weighted, clipped updates cannot wrap around the modulus. The default (100) is
        far above the updates of the bundled data sets and models (below 3 at learning
        rates up to 1), so the default run clips nothing and equals FedAvg within
        ``precision``; each round records how many values were clipped
        (:attr:`RoundRecord.clipped`).
    weighted : bool
        Weight each update by the client's number of examples (FedAvg's weighting);
        ``False``: all clients count equally.
    client_weighting : bool
        With ``weighted``: each client multiplies its update by its example count ``n_k``
        before encrypting (``encrypt(..., weight=n_k)``), so the server only adds
        ciphertexts and divides by the public total as a public factor (no ciphertext
        multiplication, no level used). ``False``: the server multiplies by the weights,
        which needs a multiplicative level: ``preset="general"`` only.
    security : {128, 192, 256}
        The security level the parameters must reach (HomomorphicEncryption.org tables).

    Raises
    ------
    TypeError
        A setting of the wrong type.
    ValueError
        A setting out of range, or ``client_weighting=False`` (with ``weighted``) under
        ``preset="aggregation"``.

    Notes
    -----
    The parameters of a run are fixed before the first round. Let ``m`` be the clients
    sampled per round, ``W`` the largest weight (the largest client's example count when
    ``weighted``, else 1) and ``D`` the smallest total weight a round can have (the sum of
    the ``m`` smallest example counts when ``weighted``, else ``m``). A client sends at
    most ``B = W bound`` per coordinate (its weight applied), and the round's decrypted
    sum has an error of at most ``e`` (:func:`ppml_fast.ckks.error_bound` over the ``P``
    coordinates and ``m`` clients); the mean update's error is at most ``e / D``. The
    aggregation preset picks the smallest parameters with ``e <= precision D`` whose
    scale holds ``m B`` (:func:`ppml_fast.ckks.aggregation_parameters`); the general
    preset checks the same two conditions for its fixed parameters. The records'
    ``packing_factor`` is the values per ciphertext (N/2).

    Unlike the other modes, a seeded run is reproducible only within ``precision``:
    TenSEAL draws every encryption's randomness from its own CSPRNG, never from the
    run's seed, so two runs (or a thread-pool run and a Dask run) differ by the
    encryption error.

    Security
    --------
    The server learns the layout (the number of parameters), the weights and the
    average; not an individual update (CKKS is IND-CPA secure under RLWE at the checked
    parameters). In this simulation the key holder runs in the server's process and
    decrypts only each round's average. With ``symmetric`` every client holds the secret
    key and could decrypt any other client's ciphertexts: it fits clients that trust each
    other facing an untrusted server. A CKKS decryption carries its error term, which
    leaks about the secret key when the decrypted value is published (Li and Micciancio,
    2021); the simulation applies it to the model, as FedAvg does.
    """

    preset: Literal["aggregation", "general"] = "aggregation"
    symmetric: bool = False
    precision: float = 1e-6
    bound: float = 100.0
    weighted: bool = True
    client_weighting: bool = True
    security: int = 128

    def __post_init__(self) -> None:
        check_choice(self.preset, "preset", ("aggregation", "general"))
        # Stored as plain Python values (numpy scalars and 0-d arrays are accepted).
        values = {
            "symmetric": check_bool(self.symmetric, "symmetric"),
            "precision": check_scalar(self.precision, "precision", POSITIVE),
            "bound": check_scalar(self.bound, "bound", POSITIVE),
            "weighted": check_bool(self.weighted, "weighted"),
            "client_weighting": check_bool(self.client_weighting, "client_weighting"),
            "security": check_int(self.security, "security"),
        }
        if values["security"] not in ckks.MAX_COEFF_BITS:
            raise ValueError(f"security must be 128, 192 or 256, got {values['security']}")
        for name, value in values.items():
            object.__setattr__(self, name, value)
        if self.preset == "aggregation" and self.weighted and not self.client_weighting:
            raise ValueError(
                "CKKSAggregation: client_weighting=False (the server multiplies by the "
                "weights) needs a multiplicative level, which preset='aggregation' does not "
                "have: use preset='general' or client_weighting=True"
            )


class _CKKSRun(NamedTuple):
    """A run's CKKS parameters and the error they guarantee.

    Attributes
    ----------
    params : ckks.CKKSParameters
    mean_error : float
        The bound on a coordinate's error in a round's mean update (at most the
        aggregator's ``precision``).
    server_weights : bool
        The server multiplies by the weights (``client_weighting=False``, weighted).
    """

    params: ckks.CKKSParameters
    mean_error: float
    server_weights: bool


def _ckks_run(agg: CKKSAggregation, per_round: int, counts: np.ndarray, dim: int) -> _CKKSRun:
    """The run's CKKS parameters, chosen or checked for ``precision`` and ``bound``.

    Parameters
    ----------
    agg : CKKSAggregation
    per_round : int
        ``m``, the clients sampled per round.
    counts : ndarray
        Every client's example count (the weights when ``agg.weighted``).
    dim : int
        ``P``, the number of model parameters (the slots the error bound covers).

    Raises
    ------
    ValueError
        No parameters meet ``precision`` (aggregation preset), or the general preset's
        fixed parameters do not (messages name the setting).

    Notes
    -----
    See :class:`CKKSAggregation` for ``W``, ``D`` and ``B``. With server-side weights the
    sum is ``ref * sum_k (w_k / ref) Enc(x_k)``, ``ref`` the weight the largest group of
    equal weights keeps as a public factor (:func:`ppml_fast.ckks.sum_updates`): each of at
    most ``m`` groups costs one multiplication and rescale, whose errors ``ref <= W``
    scales, and the multiplied plaintexts are group sums of magnitude at most ``m bound``.
    Its error is therefore at most ``W`` times :func:`ppml_fast.ckks.error_bound` with
    the weights ``w_k / W`` of the ``m`` largest clients and that bound.
    """
    m = per_round
    enc = "symmetric" if agg.symmetric else "asymmetric"
    w = np.sort(np.asarray(counts, np.float64)) if agg.weighted else np.ones(max(m, 1))
    big = float(w[-1]) if w.size else 1.0
    total_min = float(w[:m].sum()) if agg.weighted else float(m)
    server_weights = agg.weighted and not agg.client_weighting
    sent = agg.bound if server_weights else agg.bound * big  # B: what one client encrypts
    name = (
        f"CKKSAggregation(preset={agg.preset!r}, precision={agg.precision:g}, bound={agg.bound:g})"
    )
    if agg.preset == "aggregation":
        try:
            params = ckks.aggregation_parameters(
                m,
                bound=sent,
                precision=agg.precision * total_min,
                values=dim,
                security=agg.security,
                encryption=enc,
            )
        except ValueError as e:
            raise ValueError(
                f"{name} has no parameters for {m} clients per round, {dim} parameters and "
                f"a largest weight of {big:g}: {e}"
            ) from None
    else:
        params = ckks.general_parameters(agg.security)
        # The sum (and, with server weights, each weighted group sum) must stay below the
        # largest value a slot holds, with a factor 2 of margin as in the aggregation preset.
        peak = m * agg.bound * big
        if 2.0 * peak > params.max_value:
            raise ValueError(
                f"{name}: the round's sum can reach {peak:g} ({m} clients x bound x largest "
                f"weight {big:g}), above half the {params.max_value:g} the general preset "
                "holds: lower bound or the clients per round"
            )
    if server_weights:
        sum_error = big * ckks.error_bound(
            params,
            values=dim,
            encryption=enc,
            weights=(w[-m:] / big).tolist(),
            bound=m * agg.bound,
        )
    else:
        sum_error = ckks.error_bound(params, values=dim, encryption=enc, clients=m)
    mean_error = sum_error / total_min
    if mean_error > agg.precision:
        raise ValueError(
            f"{name}: the parameters guarantee a mean-update error of {mean_error:.3g}, above "
            f"precision: raise precision or use preset='aggregation'"
        )
    return _CKKSRun(params, mean_error, server_weights)


#: How the server combines the sampled clients' updates.
Aggregator = FedAvg | DPFedAvg | SecureAggregation | PaillierAggregation | CKKSAggregation

_AGGREGATORS: dict[str, Callable[[], Aggregator]] = {
    "fedavg": FedAvg,
    "dp-fedavg": DPFedAvg,
    "secagg": SecureAggregation,
    "secagg+": functools.partial(SecureAggregation, neighbors="auto"),
    "paillier": PaillierAggregation,
    "ckks": CKKSAggregation,
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
    if not isinstance(
        aggregator,
        (FedAvg, DPFedAvg, SecureAggregation, PaillierAggregation, CKKSAggregation),
    ):
        raise TypeError(
            "aggregator must be a name or FedAvg, DPFedAvg, SecureAggregation, "
            f"PaillierAggregation or CKKSAggregation, got {type(aggregator).__name__}"
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
    decrypt_s : float or None
        Under Paillier and CKKS, the seconds the decryptor spent decrypting the aggregate
        (part of the aggregation phase).
    """

    mean: np.ndarray | None
    survivors: int
    bytes_per_client: int | None
    event: dict[str, float] | None = None
    decrypt_s: float | None = None


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
    counts : ndarray, optional
        Every client's example count (the weights of weighted Paillier and CKKS
        aggregation, whose largest sizes the packed layout and the CKKS parameters);
        default: all 1.

    Attributes
    ----------
    packing : _PackedLayout or None
        The clients' packed Paillier layout (None without packing).
    packing_factor : int or None
        Values per ciphertext under Paillier (1 without packing) and CKKS (N/2), else
        None.
    ckks_run : _CKKSRun or None
        Under CKKS, the run's parameters and the error bound they guarantee.
    ckks_client : _CKKSClient or None
        Under CKKS, what a client needs to encrypt (the context that can encrypt, as
        bytes: tasks must pickle).
    ckks_public : tenseal.Context or None
        Under CKKS, the aggregator's context: no secret key.

    Raises
    ------
    ValueError
        A packed layout that does not fit (:func:`_packed_layout`, or the key).

    Security
    --------
    Under :class:`PaillierAggregation` the server also plays the decryptor: it
    generates the key pair (from the OS CSPRNG, whatever the seed) and hands out only
    :attr:`public_key`. Under :class:`CKKSAggregation` it also plays the key holder: it
    makes the context (TenSEAL draws the keys from its own CSPRNG), aggregates with
    :attr:`ckks_public` only and decrypts with the secret context only the average.
    """

    def __init__(
        self,
        agg: Aggregator,
        n_clients: int,
        fraction: float,
        dim: int,
        counts: np.ndarray | None = None,
    ) -> None:
        self.agg = agg
        self.n_clients = n_clients
        self.fraction = fraction
        self.dim = dim
        self.public_key: paillier.PaillierPublicKey | None = None
        self._private_key: paillier.PaillierPrivateKey | None = None
        self.packing: _PackedLayout | None = None
        self.packing_factor: int | None = None
        self.ckks_run: _CKKSRun | None = None
        self.ckks_client: _CKKSClient | None = None
        self.ckks_public: Any = None
        self._ckks_secret: Any = None
        weights = np.ones(n_clients) if counts is None else np.asarray(counts, np.float64)
        if isinstance(agg, CKKSAggregation):
            self._setup_ckks(agg, weights)
        if isinstance(agg, PaillierAggregation):
            self.packing = _packed_layout(agg, self.per_round, weights)
            self.public_key, self._private_key = paillier.generate_paillier_keypair(
                n_length=agg.key_bits
            )
            self.packing_factor = 1
            if self.packing is not None:
                self.packing_factor = self._probe_layout(agg, self.packing)

    def _setup_ckks(self, agg: CKKSAggregation, counts: np.ndarray) -> None:
        """The key holder's context, the aggregator's public one and the clients' part."""
        from ..ckks.context import worker_context_bytes

        run = _ckks_run(agg, self.per_round, counts, self.dim)
        # Galois keys are tens of MB and aggregation never rotates.
        secret = ckks.make_context(run.params, symmetric=agg.symmetric, galois_keys=False)
        self._ckks_secret = secret
        self.ckks_public = ckks.public_context(secret)
        # The smallest context that can encrypt: the public key, or the secret key when
        # the clients hold it.
        data = worker_context_bytes(secret, agg.symmetric)
        self.ckks_client = _CKKSClient(data, agg.symmetric, float(agg.bound), agg.security)
        self.ckks_run = run
        self.packing_factor = run.params.slots

    def _probe_layout(self, agg: PaillierAggregation, layout: _PackedLayout) -> int:
        """Check the packed layout against the key (an empty encryption); its slots."""
        assert self.public_key is not None
        try:
            probe = paillier.encrypt_packed(
                self.public_key,
                np.zeros(0),
                bits=layout.bits,
                clients=layout.clients,
                clip=layout.bound,
            )
        except ValueError as e:
            raise ValueError(
                f"PaillierAggregation(clip={agg.clip}, bits={agg.bits}, key_bits="
                f"{agg.key_bits}) has no packed layout for {layout.clients} clients per "
                f"round and a largest weight of {layout.bound / layout.clip:g}: {e}"
            ) from None
        return probe.slots

    @property
    def per_round(self) -> int:
        """The clients sampled per round (the expected number under DP-FedAvg)."""
        return max(1, round(self.fraction * self.n_clients))

    def client_scale(self, count: float) -> float:
        """What a client multiplies its update by: its example count for weighted
        Paillier aggregation and for CKKS with ``client_weighting`` (the decryptor divides
        the sum by the total count)."""
        agg = self.agg
        if isinstance(agg, PaillierAggregation) and agg.weighted:
            return count
        if isinstance(agg, CKKSAggregation) and agg.weighted and agg.client_weighting:
            return count
        return 1.0

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
        return np.sort(gen.choice(n, self.per_round, replace=False))

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
        if isinstance(agg, CKKSAggregation):
            return self._ckks(results, counts, sent)
        assert self._private_key is not None
        if self.packing is not None:
            packed = paillier.sum_packed(
                [cast(paillier.EncryptedPackedArray, r.update) for r in results]
            )
            t0 = time.perf_counter()
            plain = paillier.decrypt_packed(self._private_key, packed)
        else:
            total = functools.reduce(
                operator.add, [cast(paillier.EncryptedArray, r.update) for r in results]
            )
            t0 = time.perf_counter()
            plain = np.asarray(self._private_key.decrypt_batch(total), dtype=np.float64)
        decrypt_s = time.perf_counter() - t0
        denom = float(counts.sum()) if agg.weighted else float(len(results))
        return _Outcome(plain / denom, len(results), sent, decrypt_s=decrypt_s)

    def _ckks(self, results: list[_ClientResult], counts: np.ndarray, sent: int) -> _Outcome:
        """CKKS: the aggregator averages the ciphertexts under the public context only;
        the key holder decrypts the average."""
        assert self.ckks_run is not None and self._ckks_secret is not None
        # A result that crossed a process boundary arrives without a context (it pickles
        # as bytes); one from a thread still holds the client's. Either way the
        # aggregation sees only the public context.
        ups = [cast(ckks.EncryptedUpdate, r.update).link(self.ckks_public) for r in results]
        weights = counts if self.ckks_run.server_weights else None
        average = aggregation.encrypted_fedavg(ups, weights)
        t0 = time.perf_counter()
        mean = np.asarray(average.decrypt(self._ckks_secret), dtype=np.float64)
        decrypt_s = time.perf_counter() - t0
        return _Outcome(mean, len(results), sent, decrypt_s=decrypt_s)

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
