"""Federated averaging, FedProx and DP-FedAvg, vectorised over clients.

The server side of a federated round that averages: ``n`` clients each send an update (a
model delta or gradient) and the server combines them into their (weighted) mean.

- :func:`fedavg` -- the weighted mean ``Σ_i w_i Δ_i / Σ_i w_i`` (McMahan et al. 2017),
  weights typically the clients' sample counts; also the server side of FedProx;
- :class:`StreamingFedAvg` -- the same mean, one client at a time in O(D) memory;
- :func:`fedprox_gradient` -- the client-side FedProx gradient (Li et al. 2020);
- :func:`dp_fedavg` -- clipped, noised federated averaging (McMahan et al. 2018), with
  the clipping kernels of :mod:`ppml_fast.clipping` and optionally its adaptive clipping
  norm (Andrew et al. 2021).

The Byzantine-robust aggregators (median, trimmed mean, Krum) are in :mod:`.robust`;
``updates`` takes the forms described in :mod:`ppml_fast.aggregation`.

Numerics
--------
Means are accumulated in float64 and rounded once to the data's dtype. Every
coordinate is computed by one thread in a fixed order (client order), so FedAvg,
FedProx and the DP-FedAvg sum are bit-for-bit the same on any number of threads, and
:func:`fedavg` and :class:`StreamingFedAvg` agree exactly.

Threads: the Numba kernels run serially on column ranges handed out by one shared
thread pool (they release the GIL), with ``ppml_fast.set_num_threads`` threads. Numba's
own ``prange`` was avoided: its default "workqueue" layer aborts the process when two
Python threads run parallel kernels at once, which simulations on a thread pool do.

On error, ``out`` may have been partly written; everything else is left as it was.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import numpy as np

from .._native import aggregation as _kernels
from .._noise_fill import GAUSSIAN, fill, max_scale
from .._pool import run_columns
from .._types import ArrayLike, RngLike, UpdatesLike
from .._validation import NON_NEGATIVE, POSITIVE, RATE, check_choice, check_scalar
from ..clipping import AdaptiveClipping, per_sample_norms
from ..rng import resolve_for_dp
from ._inputs import (
    Clients,
    FlatOut,
    as_flat,
    as_layers,
    check_out,
    check_weights,
    same_elements,
)

__all__ = [
    "DPFedAvgResult",
    "StreamingFedAvg",
    "dp_fedavg",
    "fedavg",
    "fedprox_gradient",
]

# ----------------------------------------------------------------------------- FedAvg


def _sequential_sum(w: np.ndarray) -> float:
    """``w[0] + w[1] + ...`` left to right (as :class:`StreamingFedAvg` adds them)."""
    with np.errstate(over="ignore"):  # an infinite sum is reported by the caller
        return float(np.cumsum(w)[-1]) if w.size else 0.0


def _accumulate(acc: np.ndarray, parts: list[np.ndarray], w: np.ndarray) -> None:
    """``acc += w[0] parts[0] + w[1] parts[1] + ...`` in that order, eight clients per
    sweep over ``acc`` (float64 accumulator, 1-d contiguous parts of one dtype)."""
    d = acc.shape[0]
    zero = None
    for start in range(0, len(parts), 8):
        group = parts[start : start + 8]
        gw = np.zeros(8)
        gw[: len(group)] = w[start : start + 8]
        if len(group) < 8:
            if zero is None:
                zero = np.zeros(d, dtype=group[0].dtype)
            group = group + [zero] * (8 - len(group))
        run_columns(_kernels._acc8, d, 8 * d, acc, *group, gw)


def fedavg(
    updates: UpdatesLike,
    weights: ArrayLike | None = None,
    *,
    out: np.ndarray | Sequence[np.ndarray] | None = None,
) -> Any:
    """Federated averaging: the weighted mean of the clients' updates.

    ``Σ_i w_i Δ_i / Σ_i w_i`` (McMahan et al. 2017, "Communication-Efficient Learning of
    Deep Networks from Decentralized Data", Algorithm 1), where ``w_i`` is usually client
    ``i``'s number of training examples. This is also the server step of FedProx (Li et
    al. 2020), whose change is on the clients (:func:`fedprox_gradient`).

    Parameters
    ----------
    updates : array (n, ...), list of n arrays, or list of n parameter lists
        Their forms: :mod:`ppml_fast.aggregation`. NaN or inf in a client with a
        positive weight raises ``ValueError`` naming the client.
    weights : array-like of n non-negative numbers, optional
        ``w_i``; default equal weights. Their sum must be positive. A client with weight
        0 contributes nothing and is not read.
    out : array, or list of per-layer arrays, optional
        Where to write the result (same shape(s) and dtype as one client's update).

    Returns
    -------
    ndarray (or list of per-layer arrays)
        The mean, in the updates' dtype; ``out`` when given.

    Raises
    ------
    ValueError
        Weights that are negative, non-finite, of the wrong length or of sum 0 (or an
        infinite sum), NaN or inf in a client with a positive weight, a mean that
        overflows the dtype, or updates of mismatched shapes.
    TypeError
        ``updates`` or ``out`` of the wrong type, dtype or structure (see
        :mod:`ppml_fast.aggregation`).

    Notes
    -----
    One pass over the (n, D) matrix: each thread owns a range of coordinates and sweeps
    it in blocks that stay in cache, adding sixteen clients per sweep into a float64 sum,
    in client order (lists: eight clients per sweep, without stacking them); then
    divides by ``Σ w_i`` (itself summed in client order) and rounds once. The result is
    bit-for-bit what :class:`StreamingFedAvg` returns for the same clients and weights,
    on any number of threads. Non-finite inputs are detected from the result (a NaN or
    inf in a client makes its coordinate non-finite), so they cost no extra pass.
    """
    clients = Clients(updates)
    n = clients.n
    if weights is None:
        w = np.ones(n)
    else:
        w = check_weights(weights, n)
    total = _sequential_sum(w)
    if not total > 0:
        raise ValueError(f"weights must have a positive sum, got {total}")
    if not math.isfinite(total):
        raise ValueError("weights must have a finite sum, got inf")
    rows = np.flatnonzero(w).astype(np.int64)
    target = FlatOut(out, clients)
    flat = target.flat
    if clients.kind == "matrix":
        x = clients.matrix()
        bad = sum(
            run_columns(
                _kernels._wsum_rows,
                clients.d,
                rows.size * clients.d,
                x,
                rows,
                w[rows],
                total,
                flat,
                _kernels.WSUM_BLOCK,
            )
        )
    else:
        acc = np.zeros(clients.d)
        for j in range(len(clients.shapes)):
            lo, hi = clients.offsets[j], clients.offsets[j + 1]
            _accumulate(acc[lo:hi], [as_flat(clients.items[i][j]) for i in rows], w[rows])
        bad = sum(run_columns(_kernels._finish, clients.d, clients.d, acc, total, flat))
    if bad:
        raise _sum_error(clients, rows, "the weighted sum")
    return target.result()


def _sum_error(clients: Clients, rows: np.ndarray, what: str) -> ValueError:
    i = clients.first_nonfinite(rows)
    if i is not None:
        return ValueError(f"updates[{i}] must contain only finite values (found NaN or inf)")
    return ValueError(f"{what} overflowed {clients.dtype}: the updates are too large")


class StreamingFedAvg:
    """FedAvg over clients that arrive one at a time, in O(D) memory.

    Keeps ``Σ_i w_i Δ_i`` in a float64 accumulator and ``Σ_i w_i``; :meth:`result` is
    their quotient rounded to the updates' dtype -- bit-for-bit what :func:`fedavg`
    returns for the same clients, weights and order.

    The first :meth:`add` fixes the structure (an array's shape, or a parameter list's
    layer shapes) and the dtype; later updates must match. Not thread-safe: use one
    instance per thread.

    Examples
    --------
    >>> agg = StreamingFedAvg()
    >>> for update, n_examples in stream:  # doctest: +SKIP
    ...     agg.add(update, weight=n_examples)
    >>> new_delta = agg.result()  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every update (the next :meth:`add` may have a new structure)."""
        self._acc: list[np.ndarray] | None = None
        self._shapes: list[tuple[int, ...]] = []
        self._dtype: np.dtype | None = None
        self._is_list = False
        self._count = 0
        self._total = 0.0

    @property
    def count(self) -> int:
        """The number of updates added (weight-0 updates included)."""
        return self._count

    @property
    def total_weight(self) -> float:
        """``Σ_i w_i`` over the updates added, summed in order."""
        return self._total

    def add(self, update: ArrayLike | Sequence[ArrayLike], weight: float = 1.0) -> None:
        """Add one client's update with weight ``w >= 0`` (e.g. its example count).

        Parameters
        ----------
        update : array, or list of per-layer arrays
            float32 or float64, with the first update's structure, shapes and dtype.
        weight : float >= 0
            ``w_i``. An update with weight 0 is checked for structure only.

        Raises
        ------
        ValueError
            NaN or inf in an update with a positive weight (raised before anything is
            added, so the accumulator stays usable), a shape or layer count unlike the
            first update's, or a weight that makes :attr:`total_weight` overflow.
        TypeError
            A dtype unlike the first update's, or an array where the first update was a
            list of layers (or the reverse).
        """
        w = check_scalar(weight, "weight", NON_NEGATIVE)
        arrays, is_list = as_layers(update, "update", allow_empty=self._acc is not None)
        if self._acc is None:
            dtype = arrays[0].dtype
            for j, a in enumerate(arrays):
                if a.dtype != dtype:
                    raise TypeError(
                        f"update[{j}] has dtype {a.dtype}, update[0] has {dtype}: "
                        "all layers must share one dtype"
                    )
            shapes = [a.shape for a in arrays]
        else:
            self._check_like(arrays, is_list)
            dtype, shapes = arrays[0].dtype, self._shapes
        if w > 0:
            flats = [as_flat(a) for a in arrays]
            for j, f in enumerate(flats):
                if not all(run_columns(_kernels._all_finite, f.size, f.size, f)):
                    where = f"update[{j}]" if is_list else "update"
                    raise ValueError(
                        f"{where} must contain only finite values (found NaN or "
                        "inf); nothing was added"
                    )
            new_total = self._total + w
            if not math.isfinite(new_total):
                raise ValueError("weight makes total_weight overflow")
        if self._acc is None:
            self._acc = [np.zeros(math.prod(s)) for s in shapes]
            self._shapes, self._dtype, self._is_list = shapes, dtype, is_list
        if w > 0:
            for acc, f in zip(self._acc, flats, strict=True):
                run_columns(_kernels._axpy, f.size, f.size, acc, f, w)
            self._total = new_total
        self._count += 1

    def _check_like(self, arrays: list[np.ndarray], is_list: bool) -> None:
        if is_list != self._is_list:
            want = "a list of layers" if self._is_list else "an array"
            raise TypeError(f"update must be {want} like the first update")
        if len(arrays) != len(self._shapes):
            raise ValueError(
                f"update has {len(arrays)} layers, the first update had {len(self._shapes)}"
            )
        for j, a in enumerate(arrays):
            label = f"update[{j}]" if is_list else "update"
            if a.dtype != self._dtype:
                raise TypeError(f"{label} has dtype {a.dtype}, the first update had {self._dtype}")
            if a.shape != self._shapes[j]:
                raise ValueError(
                    f"{label} has shape {a.shape}, the first update had {self._shapes[j]}"
                )

    def result(self, *, out: np.ndarray | Sequence[np.ndarray] | None = None) -> Any:
        """The weighted mean so far, ``Σ_i w_i Δ_i / Σ_i w_i``.

        Parameters
        ----------
        out : array, or list of per-layer arrays, optional
            Where to write the result (the updates' shape(s) and dtype).

        Returns
        -------
        ndarray (or list of per-layer arrays)
            In the updates' dtype and structure; ``out`` when given.

        Raises
        ------
        ValueError
            Before any update, while the total weight is 0, or when the mean overflows
            the updates' dtype.
        """
        if self._acc is None or self._dtype is None:
            raise ValueError("no update was added: call add() first")
        if not self._total > 0:
            raise ValueError(
                "total_weight must be > 0 for a mean, got 0.0 (every update had weight 0)"
            )
        if out is None:
            outs = [np.empty(s, dtype=self._dtype) for s in self._shapes]
        else:
            outs = check_out(out, self._is_list, self._dtype, self._shapes, "the updates")
        for acc, o in zip(self._acc, outs, strict=True):
            direct = o.flags.c_contiguous
            target = o.reshape(-1) if direct else np.empty(o.size, o.dtype)
            if sum(run_columns(_kernels._finish, acc.size, acc.size, acc, self._total, target)):
                raise ValueError(f"the mean overflowed {self._dtype}: the updates are too large")
            if not direct:
                np.copyto(o, target.reshape(o.shape))
        if out is not None:
            return out
        return outs if self._is_list else outs[0]


# ----------------------------------------------------------------------------- FedProx


def fedprox_gradient(
    grad: ArrayLike | Sequence[ArrayLike],
    weights: ArrayLike | Sequence[ArrayLike],
    global_weights: ArrayLike | Sequence[ArrayLike],
    mu: float,
    *,
    out: np.ndarray | Sequence[np.ndarray] | None = None,
) -> Any:
    """The FedProx client gradient ``∇F(w) + μ (w - w_global)`` (Li et al. 2020,
    "Federated Optimization in Heterogeneous Networks", Eq. 2).

    The gradient of the local objective ``F(w) + (μ/2) ||w - w_global||²``: the proximal
    term pulls the client's weights toward the global model. The server side of FedProx
    is :func:`fedavg`.

    Parameters
    ----------
    grad, weights, global_weights : array or list of per-layer arrays
        ``∇F(w)``, the client's current weights ``w`` and the round's global weights,
        with one structure, shapes and dtype (float32 or float64). NaN and inf propagate
        (as they would in the gradient itself, e.g. for a loss scaler to see).
    mu : float >= 0
        The proximal coefficient ``μ`` (0 gives plain FedAvg).
    out : array or list of arrays, optional
        Where to write the result; may be ``grad`` (or ``weights``) itself.

    Returns
    -------
    ndarray (or list of per-layer arrays)
        In ``grad``'s dtype; ``out`` when given. Computed in float64 and rounded once.

    Raises
    ------
    ValueError
        A negative ``mu``, an empty layer list, or ``weights`` / ``global_weights``
        unlike ``grad`` in structure or shape.
    TypeError
        Inputs that are not float32/float64, dtypes unlike ``grad``'s, or an ``out`` of
        the wrong type, dtype or structure.
    """
    mu_f = check_scalar(mu, "mu", NON_NEGATIVE)
    g, is_list = as_layers(grad, "grad")
    w, w_list = as_layers(weights, "weights")
    wg, wg_list = as_layers(global_weights, "global_weights")
    for name, arrays, lst in (("weights", w, w_list), ("global_weights", wg, wg_list)):
        if lst != is_list or len(arrays) != len(g):
            raise ValueError(
                f"{name} must have grad's structure ({len(g)} {'layers' if is_list else 'array'})"
            )
        for j, (a, b) in enumerate(zip(arrays, g, strict=True)):
            label = f"{name}[{j}]" if is_list else name
            if a.dtype != b.dtype:
                raise TypeError(
                    f"{label} has dtype {a.dtype}, grad has {b.dtype}: one dtype for all three"
                )
            if a.shape != b.shape:
                raise ValueError(f"{label} has shape {a.shape}, grad has {b.shape}")
    shapes = [a.shape for a in g]
    if out is None:
        outs = [np.empty(s, dtype=a.dtype) for s, a in zip(shapes, g, strict=True)]
    else:
        outs = check_out(out, is_list, g[0].dtype, shapes, "grad")
    inputs = [*g, *w, *wg]
    for j, o in enumerate(outs):
        fg, fw, fwg = as_flat(g[j]), as_flat(w[j]), as_flat(wg[j])
        direct = o.flags.c_contiguous and not any(
            o.size and np.may_share_memory(o, a) and not same_elements(o, a) for a in inputs
        )
        target = o.reshape(-1) if direct else np.empty(o.size, dtype=o.dtype)
        run_columns(_kernels._prox, o.size, o.size, fg, fw, fwg, mu_f, target)
        if not direct:
            np.copyto(o, target.reshape(o.shape))
    if out is not None:
        return out
    return outs if is_list else outs[0]


# --------------------------------------------------------------------------- DP-FedAvg


class DPFedAvgResult(NamedTuple):
    """The result of :func:`dp_fedavg`: the private update and the round's accounting.

    Record the round with ``accountant.step(**result.accounting)`` (needs ``sample_rate``).
    """

    update: Any
    """The noisy average (an array, or a list of per-layer arrays)."""
    noise_std: float
    """The standard deviation of the noise in each coordinate of ``update``:
    ``σ_Δ · clip_norm / denominator``."""
    clip_norm: float
    """``C``, the L2 bound each client's update was clipped to this round."""
    n_clients: int
    """The number of updates received this round (private under client sampling)."""
    noise_multiplier: float
    """The total noise multiplier ``z`` that the accountant records (with adaptive
    clipping, more than the update's own ``σ_Δ``)."""
    sample_rate: float | None
    """The client sampling rate ``q``, when it was given."""
    denominator: float
    """What the noisy sum was divided by."""

    @property
    def accounting(self) -> dict[str, float]:
        """Keyword arguments for ``RDPAccountant.step``: ``noise_multiplier``,
        ``sample_rate``."""
        if self.sample_rate is None:
            raise ValueError("sample_rate was not given to dp_fedavg: pass it to record the round")
        return {"noise_multiplier": self.noise_multiplier, "sample_rate": self.sample_rate}


def dp_fedavg(
    updates: UpdatesLike,
    clip_norm: float | None,
    noise_multiplier: float,
    *,
    weights: ArrayLike | None = None,
    rng: RngLike = None,
    adaptive: AdaptiveClipping | None = None,
    expected_clients: float | None = None,
    sample_rate: float | None = None,
    nonfinite: Literal["raise", "zero"] = "raise",
) -> DPFedAvgResult:
    """DP-FedAvg, server side (McMahan, Ramage, Talwar & Zhang 2018, "Learning
    Differentially Private Recurrent Language Models", Algorithm 1).

    Each client's update is clipped to L2 norm ``C`` (over all layers together),
    ``clip(Δ) = Δ min(1, C / ||Δ||)``; the clipped updates are summed (weighted by
    ``w_i``), Gaussian noise ``N(0, (σ C)² I)`` is added to the sum and the result is
    divided by ``m``:

        Δ̃ = (Σ_i w_i clip(Δ_i) + N(0, σ² C² I)) / m.

    Privacy is at the level of clients (user-level DP): adding or removing one client
    changes the weighted sum by at most ``C`` in L2 (weights are at most 1), so each
    round is the Gaussian mechanism with noise multiplier ``σ`` on that sum; with clients
    sampled at rate ``q`` an accountant composes the rounds
    (``accountant.step(**result.accounting)``).

    Parameters
    ----------
    updates : array (n, ...), list of n arrays, or list of n parameter lists
        The round's updates (their forms: :mod:`ppml_fast.aggregation`); an (0, ...)
        array is an empty round (pure noise; needs ``expected_clients``).
    clip_norm : float > 0, or None with ``adaptive``
        ``C``.
    noise_multiplier : float >= 0
        ``σ`` (with ``adaptive``: the total ``z > 0``, split between the update and the
        private quantile estimate).
    weights : array-like of n numbers in [0, 1], optional
        The capped weights ``w_i = min(n_i / ŵ, 1)`` of McMahan et al. (a weight above 1
        would raise the sensitivity above ``C``). Default: every client 1.
    rng : None, int or Generator
        Noise source: ``None`` is the secure stream (with ``adaptive``: its stream); an
        int seed is reproducible (tests only; warns once).
    adaptive : clipping.AdaptiveClipping, optional
        Adaptive clipping (Andrew, Thakkar, McMahan & Ramaswamy 2021): this round clips
        at ``adaptive.clip_norm``, spends ``z`` as ``σ_Δ`` on the update and the rest on
        the noisy fraction of unclipped clients, then moves ``adaptive``'s norm toward its
        target quantile. Its ``expected_batch_size`` is the expected number of clients.
    expected_clients : float > 0, optional
        The fixed denominator ``m``: under client sampling the expected number of clients
        per round ``q N`` (with weights, the expected total weight ``q W``), as in
        McMahan et al.'s estimator ``f̃_f``: dividing by the realised number would depend
        on who took part. Default: the number of updates (or ``Σ w_i`` with weights) --
        right only for a fixed number of clients per round.
    sample_rate : float in (0, 1], optional
        ``q``, clients per round / total clients, carried into ``accounting``.
    nonfinite : {"raise", "zero"}
        NaN or inf in an update raises, or (``"zero"``) drops that client's update (it
        then counts as clipped for ``adaptive``).

    Returns
    -------
    DPFedAvgResult
        ``update``, ``noise_std`` (per coordinate of ``update``), ``clip_norm``,
        ``n_clients``, ``noise_multiplier``, ``sample_rate``, ``denominator`` and
        ``accounting``.

    Raises
    ------
    ValueError
        A non-positive ``clip_norm`` (or one given with ``adaptive``), an out-of-range
        ``noise_multiplier``, ``sample_rate``, ``expected_clients`` or weights (above 1
        included), no ``expected_clients`` for an empty round, NaN or inf in an update (with
        ``nonfinite="raise"``), noise too large for the dtype, an overflowing sum, or
        updates of mismatched shapes.
    TypeError
        ``clip_norm=None`` without ``adaptive``, an ``adaptive`` that is not an
        :class:`~ppml_fast.clipping.AdaptiveClipping`, or ``updates`` of the wrong type
        or dtype.

    Notes
    -----
    The pipeline of :func:`ppml_fast.clipping.dp_aggregate`, with client weights: the
    norms come from clipping's kernel (:func:`~ppml_fast.clipping.per_sample_norms`,
    one pass, flat over layers), the clipped weighted sum from the FedAvg kernel with
    per-client scales ``w_i min(1, C / ||Δ_i||)`` (a second pass, accumulated in
    float64: the clipped updates are never materialised), the noise from the same
    sampler as ``dp_aggregate`` (one pass over the sum), then the division by ``m`` and
    one rounding to the updates' dtype. With ``adaptive``, the split of ``z`` and the
    norm update are :meth:`AdaptiveClipping.gradient_noise_multiplier` and
    :meth:`AdaptiveClipping.update` -- exactly what :meth:`AdaptiveClipping.aggregate`
    does for DP-SGD.

    Security
    --------
    ``n_clients`` describes the realised (private) round: do not publish it. The noise is
    floating-point Gaussian noise, with the least-significant-bit weakness described in
    :mod:`ppml_fast.noise`.
    """
    check_choice(nonfinite, "nonfinite", ("raise", "zero"))
    clients = Clients(updates, allow_empty=True)
    if adaptive is not None:
        if not isinstance(adaptive, AdaptiveClipping):
            raise TypeError(
                "adaptive must be a ppml_fast.clipping.AdaptiveClipping, got "
                f"{type(adaptive).__name__}"
            )
        if clip_norm is not None:
            raise ValueError(
                "clip_norm must be None when adaptive is given (the round clips "
                f"at adaptive.clip_norm = {adaptive.clip_norm:g})"
            )
        c = adaptive.clip_norm
        z = check_scalar(noise_multiplier, "noise_multiplier", POSITIVE)
        sigma = adaptive.gradient_noise_multiplier(z)
        m_adaptive = float(adaptive.expected_batch_size)
        if (
            expected_clients is not None
            and check_scalar(expected_clients, "expected_clients", POSITIVE) != m_adaptive
        ):
            raise ValueError(
                f"expected_clients must equal adaptive.expected_batch_size = "
                f"{adaptive.expected_batch_size} (both are the expected clients per round), "
                f"got {expected_clients}"
            )
        expected_clients = m_adaptive
    else:
        if clip_norm is None:
            raise TypeError("clip_norm must be a positive number (None only with adaptive)")
        c = check_scalar(clip_norm, "clip_norm", POSITIVE)
        z = sigma = check_scalar(noise_multiplier, "noise_multiplier", NON_NEGATIVE)
    q = None
    if sample_rate is not None:
        q = check_scalar(sample_rate, "sample_rate", RATE)
    w = None
    if weights is not None:
        w = check_weights(weights, clients.n)
        if clients.n and w.max() > 1:
            i = int(np.argmax(w))
            raise ValueError(
                f"weights must be <= 1 (capped weights; a larger one would "
                f"raise the sensitivity above clip_norm), got {w[i]} at "
                f"index {i}"
            )
    if expected_clients is not None:
        denominator = check_scalar(expected_clients, "expected_clients", POSITIVE)
    else:
        denominator = float(clients.n) if w is None else _sequential_sum(w)
        if denominator == 0:
            raise ValueError(
                "expected_clients must be given when the round has no clients "
                "(or all weights are 0)"
            )
    std = sigma * c
    if std > max_scale(clients.dtype):
        raise ValueError(
            f"noise_multiplier * clip_norm = {std:g} is too large for {clients.dtype} output"
        )
    # an adaptive instance's own stream (resolved once, so a seed gives one stream for all
    # rounds) unless rng overrides it, as AdaptiveClipping.aggregate does
    gen = adaptive._gen if adaptive is not None and rng is None else resolve_for_dp(rng)
    update, norms = _dp_sum(
        clients, np.ones(clients.n) if w is None else w, c, std, denominator, nonfinite, gen
    )
    if adaptive is not None:
        adaptive.update(norms, rng=gen)
    return DPFedAvgResult(
        update=update,
        noise_std=std / denominator,
        clip_norm=c,
        n_clients=clients.n,
        noise_multiplier=z,
        sample_rate=q,
        denominator=denominator,
    )


def _dp_sum(
    clients: Clients,
    w: np.ndarray,
    c: float,
    std: float,
    denominator: float,
    nonfinite: str,
    gen: np.random.Generator,
) -> tuple[Any, np.ndarray]:
    """``(Σ_i w_i clip_C(Δ_i) + N(0, std² I)) / denominator`` in float64, rounded once;
    and the clients' norms before clipping (NaN for a non-finite update)."""
    stacks = clients.layer_stacks()
    norms = (
        per_sample_norms(stacks if clients.kind == "layers" else stacks[0])
        if clients.n
        else np.empty(0)
    )
    bad = np.isnan(norms)
    if bad.any() and nonfinite == "raise":
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"updates[{i}] must contain only finite values (found NaN or inf; "
            "pass nonfinite='zero' to drop such clients)"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = w * np.where(norms > c, c / norms, 1.0)
    scale[bad] = 0.0
    rows = np.flatnonzero(scale).astype(np.int64)
    acc = np.zeros(clients.d)
    for j, x in enumerate(clients.layer_rows()):
        lo, hi = clients.offsets[j], clients.offsets[j + 1]
        run_columns(
            _kernels._wsum_rows,
            hi - lo,
            rows.size * (hi - lo),
            x,
            rows,
            scale[rows],
            1.0,
            acc[lo:hi],
            _kernels.WSUM_BLOCK,
        )
    if acc.size and std > 0 and not fill(GAUSSIAN, gen, std, acc, acc):
        raise ValueError(f"the noisy sum overflowed: clip_norm {c:g} is too large")
    flat = np.empty(clients.d, dtype=clients.dtype)
    if sum(run_columns(_kernels._finish, clients.d, clients.d, acc, denominator, flat)):
        raise ValueError(f"the noisy mean overflowed {clients.dtype}")
    return clients.wrap(flat), norms
