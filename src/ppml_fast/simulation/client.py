"""The simulation's client side: local training, DP-SGD, and what a client sends.

A client task (:class:`_ClientTask`) is a pure function of its inputs and of its own seed:
local SGD (or DP-SGD, :class:`DPSGD`) from the round's global model on the client's
rows, returning the model delta -- scaled by the client's weight and encrypted when the
server aggregates under Paillier (clipped, quantised and packed, :class:`_PackedLayout`,
by default) or CKKS (clipped and packed into ciphertexts, :class:`_CKKSClient`) -- with
the number of steps and the sample rate the accountant needs (:class:`_ClientResult`).
(Under CKKS the ciphertexts also carry TenSEAL's own encryption randomness; what they
decrypt to is still a function of the task.) Tasks hold no reference to the server, so
any :class:`concurrent.futures.Executor`, a Dask cluster's included, can run them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import threading
import time
from typing import Any, NamedTuple

import numpy as np

from .. import ckks, clipping, paillier
from .. import rng as _rng
from .._validation import NON_NEGATIVE, OPEN_UNIT, POSITIVE, check_scalar
from .models import Model

__all__ = ["DPSGD"]


def _check_dp(noise_multiplier: float, norm_name: str, norm: float, delta: float) -> None:
    """Check the settings every DP mode shares: σ >= 0, a clipping norm > 0, δ in (0, 1).

    Raises
    ------
    ValueError
        A setting out of range (the message names it).
    """
    check_scalar(noise_multiplier, "noise_multiplier", NON_NEGATIVE)
    check_scalar(norm, norm_name, POSITIVE)
    check_scalar(delta, "delta", OPEN_UNIT)


@dataclasses.dataclass(frozen=True)
class DPSGD:
    """Client-side DP-SGD (Abadi et al. 2016).

    Every step Poisson-samples a batch at rate ``q = batch_size / n_k`` from the client's
    ``n_k`` rows, clips each example's gradient to ``max_grad_norm`` and adds Gaussian
    noise of standard deviation ``noise_multiplier * max_grad_norm`` to the sum
    (:func:`ppml_fast.clipping.dp_aggregate`).

    Parameters
    ----------
    noise_multiplier : float >= 0
        σ.
    max_grad_norm : float > 0
        The per-example clipping norm ``C``.
    delta : float in (0, 1)
        The δ at which ε is reported (example-level, for the worst client).

    Raises
    ------
    ValueError
        A setting out of range.
    """

    noise_multiplier: float = 1.0
    max_grad_norm: float = 1.0
    delta: float = 1e-5

    def __post_init__(self) -> None:
        _check_dp(self.noise_multiplier, "max_grad_norm", self.max_grad_norm, self.delta)


@dataclasses.dataclass(frozen=True)
class _PackedLayout:
    """A run's packed Paillier layout (:class:`~.server.PaillierAggregation` with packing).

    Attributes
    ----------
    bits : int
        The width of one quantised value.
    clients : int
        The most contributions a sum holds: the clients sampled per round.
    clip : float
        Each coordinate of a client's update is clipped to ``[-clip, clip]`` before it is
        weighted.
    bound : float
        ``clip`` times the largest weight: every weighted coordinate lies in
        ``[-bound, bound]``, the range the quantisation covers.
    """

    bits: int
    clients: int
    clip: float
    bound: float


@dataclasses.dataclass(frozen=True)
class _CKKSClient:
    """What a client needs to encrypt under CKKS (:class:`~.server.CKKSAggregation`).

    Attributes
    ----------
    context : bytes
        The serialised TenSEAL context that can encrypt: the public key, or the secret
        key when ``symmetric``. Bytes, because TenSEAL contexts do not pickle and a task
        may run in another process.
    symmetric : bool
        Encrypt with the secret key (seeded ciphertexts).
    bound : float
        Every coordinate of the update is clipped to ``[-bound, bound]`` before it is
        weighted and encrypted.
    security : int
        The security level the context is checked at when it is loaded.
    """

    context: bytes = dataclasses.field(repr=False)
    symmetric: bool
    bound: float
    security: int = 128


# One deserialised encryption context per process: every client of a run uses the same
# bytes, so the tasks after the first skip TenSEAL's deserialisation and the checks.
_context_cache: dict[bytes, Any] = {}
_context_lock = threading.Lock()


def _ckks_context(spec: _CKKSClient) -> Any:
    """The TenSEAL context of ``spec.context``, loaded (and checked) once per process."""
    key = hashlib.sha256(spec.context).digest()
    with _context_lock:
        ctx = _context_cache.get(key)
        if ctx is None:
            ctx = ckks.load_context(spec.context, security=spec.security)
            _context_cache.clear()
            _context_cache[key] = ctx
        return ctx


@dataclasses.dataclass(frozen=True)
class _ClientTask:
    """Everything one client needs for one round (picklable, for process executors).

    Attributes
    ----------
    model : Model
    params : ndarray, shape (P,)
        The round's global model.
    X, y : ndarray
        The client's rows and labels.
    epochs, batch_size, lr
        Local SGD (see :func:`_client_update`).
    dp : DPSGD or None
        DP-SGD settings, or ``None`` for plain SGD.
    seed : SeedSequence or None
        The client's stream for this round; ``None`` draws from the secure stream.
    scale : float
        The update is multiplied by this before it is sent (weighted Paillier: the
        client's example count).
    public_key : PaillierPublicKey or None
        Encrypt the update under this key before it is sent.
    precision : float
        The Paillier encoding's precision (without packing).
    packing : _PackedLayout or None
        With a public key: pack the update (:func:`ppml_fast.paillier.encrypt_packed`)
        in this layout instead of encrypting each coordinate.
    ckks : _CKKSClient or None
        Clip the update, multiply it by ``scale`` and encrypt it under CKKS.
    """

    model: Model
    params: np.ndarray
    X: np.ndarray
    y: np.ndarray
    epochs: int
    batch_size: int
    lr: float
    dp: DPSGD | None
    seed: np.random.SeedSequence | None
    scale: float
    public_key: paillier.PaillierPublicKey | None
    precision: float
    packing: _PackedLayout | None = None
    ckks: _CKKSClient | None = None


class _ClientResult(NamedTuple):
    """What a client sends the server, and what the accountant needs from it.

    Attributes
    ----------
    update : ndarray of float64, shape (P,), EncryptedArray, EncryptedPackedArray or \
EncryptedUpdate
        The (scaled) model delta, encrypted under Paillier (packed with a layout) or CKKS.
    steps : int
        Local SGD steps taken.
    sample_rate : float or None
        DP-SGD's Poisson rate ``q`` (``None`` without DP-SGD).
    nbytes : int
        The size of ``update`` on the wire.
    clipped : int or None
        Under CKKS, the coordinates the bound clipped (``None`` in the other modes).
    encrypt_s : float or None
        Under Paillier and CKKS, the seconds the client spent encrypting.
    """

    update: (
        np.ndarray | paillier.EncryptedArray | paillier.EncryptedPackedArray | ckks.EncryptedUpdate
    )
    steps: int
    sample_rate: float | None
    nbytes: int
    clipped: int | None = None
    encrypt_s: float | None = None


def _client_update(task: _ClientTask) -> _ClientResult:
    """Local training on one client's data; returns the (encrypted) model delta.

    Without DP: ``epochs`` passes over the rows in shuffled batches of ``batch_size``.
    With DP-SGD: ``ceil(epochs n_k / B)`` steps on Poisson batches of expected size
    ``B = min(batch_size, n_k)``, each a noisy clipped gradient.

    Parameters
    ----------
    task : _ClientTask

    Returns
    -------
    _ClientResult
    """
    gen = _rng.default_rng(task.seed)
    model, X, y = task.model, task.X, task.y
    params = task.params.copy()
    n = y.size
    q: float | None
    if task.dp is None:
        steps = 0
        for _ in range(task.epochs):
            order = gen.permutation(n)
            for start in range(0, n, task.batch_size):
                batch = order[start : start + task.batch_size]
                params -= task.lr * model.gradient(params, X[batch], y[batch])
                steps += 1
        q = None
    else:
        expected = min(task.batch_size, n)
        q = expected / n
        steps = max(1, math.ceil(task.epochs * n / expected))
        for _ in range(steps):
            batch = np.flatnonzero(gen.random(n) < q)
            grads = model.per_example_gradients(params, X[batch], y[batch])
            step = clipping.dp_aggregate(
                grads,
                task.dp.max_grad_norm,
                task.dp.noise_multiplier,
                rng=gen,
                expected_batch_size=expected,
                sample_rate=q,
            )
            params -= task.lr * step.gradient
    update = params - task.params
    if task.ckks is not None:
        return _encrypt_ckks(update, task.scale, task.ckks, steps, q)
    if task.public_key is not None and task.packing is not None:
        t0 = time.perf_counter()
        packed = _encrypt_packed(update, task.scale, task.public_key, task.packing)
        return _ClientResult(packed, steps, q, packed.nbytes, encrypt_s=time.perf_counter() - t0)
    if task.scale != 1.0:
        update *= task.scale
    if task.public_key is None:
        return _ClientResult(update, steps, q, update.nbytes)
    t0 = time.perf_counter()
    enc = task.public_key.encrypt_batch(update, precision=task.precision)
    return _ClientResult(enc, steps, q, enc.nbytes, encrypt_s=time.perf_counter() - t0)


def _encrypt_ckks(
    update: np.ndarray, scale: float, spec: _CKKSClient, steps: int, q: float | None
) -> _ClientResult:
    """A client's CKKS ciphertexts of ``scale * clip(update, bound)``.

    The clip comes first (the parameters hold ``bound`` times the largest weight); the
    weight is applied by :func:`ppml_fast.ckks.encrypt` and recorded in the update, so
    the server only adds. ``workers=1``: the task already is one client's share of the
    work, and in a Dask worker (a daemon process) a process pool could not start.
    """
    clipped = int(np.count_nonzero(np.abs(update) > spec.bound))
    x = np.clip(update, -spec.bound, spec.bound) if clipped else update
    ctx = _ckks_context(spec)
    t0 = time.perf_counter()
    enc = ckks.encrypt(ctx, x, symmetric=spec.symmetric, weight=scale, workers=1)
    nbytes = enc.nbytes
    encrypt_s = time.perf_counter() - t0
    return _ClientResult(enc, steps, q, nbytes, clipped=clipped, encrypt_s=encrypt_s)


def _encrypt_packed(
    update: np.ndarray,
    scale: float,
    public_key: paillier.PaillierPublicKey,
    layout: _PackedLayout,
) -> paillier.EncryptedPackedArray:
    """A client's packed ciphertexts: ``scale * clip(update)``, quantised and packed.

    Every coordinate is clipped to ``[-layout.clip, layout.clip]`` first (out-of-range
    values saturate, they never wrap), then multiplied by the client's weight
    ``scale <= W``; the product lies in ``[-layout.bound, layout.bound]`` (floating-point
    products are monotone, so ``fl(scale |x|) <= fl(W clip)``), the range the layout's
    ``bits`` and ``clients`` headroom are sized for.
    """
    x = np.clip(update, -layout.clip, layout.clip)
    if scale != 1.0:
        x *= scale
    return paillier.encrypt_packed(
        public_key, x, bits=layout.bits, clients=layout.clients, clip=layout.bound
    )
