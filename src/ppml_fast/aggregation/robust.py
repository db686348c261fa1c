"""Federated averaging, Byzantine-robust aggregation and DP-FedAvg, vectorised over clients.

The server side of a federated round: ``n`` clients each send an update (a model delta or
gradient) and the server combines them into one.

- :func:`fedavg` -- the weighted mean ``Σ_i w_i Δ_i / Σ_i w_i`` (McMahan et al. 2017),
  weights typically the clients' sample counts; also the server side of FedProx;
- :class:`StreamingFedAvg` -- the same mean, one client at a time in O(D) memory;
- :func:`coordinate_median`, :func:`trimmed_mean` -- coordinate-wise robust statistics
  (Yin et al. 2018);
- :func:`krum`, :func:`multi_krum` -- Blanchard et al. 2017's distance-based selection;
- :func:`fedprox_gradient` -- the client-side FedProx gradient (Li et al. 2020);
- :func:`dp_fedavg` -- clipped, noised federated averaging (McMahan et al. 2018), with
  the clipping kernels of :mod:`ppml_fast.clipping` and optionally its adaptive clipping
  norm (Andrew et al. 2021).

Inputs
------
``updates`` is one of

- an array of shape ``(n, ...)``: row ``i`` is client ``i``'s update; the result has
  shape ``updates.shape[1:]``;
- a list (or tuple) of ``n`` arrays of one shape: client ``i``'s update; the result has
  that shape;
- a list of ``n`` lists of per-layer arrays (parameter lists, as a model's
  ``parameters()`` gives them), every client with the same layer shapes; the result is a
  list of per-layer arrays. Distances and norms are taken over all layers together.

A list or tuple is always a list of clients, and a client given as a list is always a
list of layers (pass ``np.asarray(nested_list)`` for a matrix). float32 and float64 are
supported, one dtype for every client and layer; results have that dtype. Torch CPU
tensors and anything else ``np.asarray`` can view are read without a copy; an (n, D)
matrix whose rows are each contiguous is the fastest input (lists are stacked into one
where an aggregator needs all clients at once).

Numerics
--------
Means are accumulated in float64 and rounded once to the data's dtype. Every
coordinate is computed by one thread in a fixed order (client order for FedAvg, sorted
order for the trimmed mean), so FedAvg, the median, the trimmed mean, FedProx and the
DP-FedAvg sum are bit-for-bit the same on any number of threads, and :func:`fedavg` and
:class:`StreamingFedAvg` agree exactly. Krum's distances come from BLAS, whose
summation order may change their last bits with its thread count.

Threads: the Numba kernels run serially on column ranges handed out by one shared
thread pool (they release the GIL), with ``ppml_fast.set_num_threads`` threads. Numba's
own ``prange`` was avoided: its default "workqueue" layer aborts the process when two
Python threads run parallel kernels at once, which simulations on a thread pool do.

On error, ``out`` may have been partly written; everything else is left as it was.
"""

from __future__ import annotations

import functools
import math
import numbers
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, NamedTuple

import numpy as np

from .. import _config
from .._native import aggregation as _kernels
from .._pool import run_columns
from .._validation import (
    NON_NEGATIVE,
    POSITIVE,
    as_finite_array,
    as_float_array,
    check_int,
    check_scalar,
)
from ..clipping import AdaptiveClipping, per_sample_norms
from .._noise_fill import GAUSSIAN, fill, max_scale
from ..rng import resolve_for_dp

__all__ = [
    "DPFedAvgResult",
    "KrumResult",
    "StreamingFedAvg",
    "coordinate_median",
    "dp_fedavg",
    "fedavg",
    "fedprox_gradient",
    "krum",
    "multi_krum",
    "trimmed_mean",
]

Updates = Any  # (n, ...) array, list of n arrays, or list of n lists of per-layer arrays
NanPolicy = Literal["raise", "omit"]

# ----------------------------------------------------------------------------- inputs


def _row_view(a: np.ndarray) -> np.ndarray:
    """``a`` of shape (n, ...) as (n, D) with contiguous rows: a view when the elements
    of each row are one C-order run (any row stride), else a copy."""
    n = a.shape[0]
    d = math.prod(a.shape[1:])
    if n == 0 or d == 0:
        return np.zeros((n, d), dtype=a.dtype)
    expected = a.itemsize
    inner = True
    for size, stride in zip(a.shape[:0:-1], a.strides[:0:-1], strict=True):
        if size != 1:
            if stride != expected:
                inner = False
                break
            expected *= size
    if inner:
        return np.lib.stride_tricks.as_strided(
            a, shape=(n, d), strides=(a.strides[0], a.itemsize), writeable=False
        )
    return np.ascontiguousarray(a).reshape(n, d)


def _flat(a: np.ndarray) -> np.ndarray:
    """``a`` as a 1-d C-contiguous array (a view when it already is one)."""
    return np.ascontiguousarray(a).reshape(-1)


class _Clients:
    """``updates`` normalised and validated (see the module docstring).

    ``kind`` is ``"matrix"`` (one (n, ...) array), ``"arrays"`` (a list of arrays) or
    ``"layers"`` (a list of parameter lists); ``shapes`` the result's per-layer shapes
    (one entry unless ``"layers"``); ``items[i][l]`` client ``i``'s layer ``l`` for the
    list kinds.
    """

    def __init__(self, updates: Updates, *, allow_empty: bool = False) -> None:
        self.items: list[list[np.ndarray]] = []
        self._layer_stacks: list[np.ndarray] | None = None
        self._matrix: np.ndarray | None = None
        if isinstance(updates, (list, tuple)):
            self._from_list(list(updates))
        else:
            a = as_float_array(updates, "updates")
            if a.ndim < 2:
                raise ValueError(
                    "updates must have shape (n_clients, ...) with at least 2 dimensions, "
                    f"got shape {a.shape} (pass a list for clients with scalar updates)"
                )
            if a.shape[0] == 0 and not allow_empty:
                raise ValueError(f"updates must hold at least one client, got shape {a.shape}")
            self.kind = "matrix"
            self.n = a.shape[0]
            self.dtype = a.dtype
            self.shapes = [a.shape[1:]]
            self._layer_stacks = [a]
        self.sizes = [math.prod(s) for s in self.shapes]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64).tolist()
        self.d = self.offsets[-1]

    def _from_list(self, clients: list[Any]) -> None:
        if not clients:
            raise ValueError("updates must hold at least one client, got an empty list")
        layered = isinstance(clients[0], (list, tuple))
        self.kind = "layers" if layered else "arrays"
        n_layers = len(clients[0]) if layered else 1
        if layered and n_layers == 0:
            raise ValueError("updates[0] must hold at least one layer, got an empty list")
        for i, c in enumerate(clients):
            if isinstance(c, (list, tuple)) != layered:
                what = "a list of layers" if layered else "an array"
                raise TypeError(
                    f"updates[{i}] must be {what} like updates[0], got {type(c).__name__}"
                )
            if layered and len(c) != n_layers:
                raise ValueError(
                    f"updates[{i}] has {len(c)} layers, updates[0] has {n_layers}: every "
                    "client must send the same layers"
                )
            parts = list(c) if layered else [c]
            arrays = []
            for j, x in enumerate(parts):
                label = f"updates[{i}][{j}]" if layered else f"updates[{i}]"
                arrays.append(as_float_array(x, label))
            self.items.append(arrays)
        first = self.items[0]
        self.dtype = first[0].dtype
        self.shapes = [x.shape for x in first]
        for i, arrays in enumerate(self.items):
            for j, x in enumerate(arrays):
                label = f"updates[{i}][{j}]" if layered else f"updates[{i}]"
                ref = f"updates[0][{j}]" if layered else "updates[0]"
                if x.dtype != self.dtype:
                    raise TypeError(
                        f"{label} has dtype {x.dtype}, updates[0] has {self.dtype}: all "
                        "updates must share one dtype"
                    )
                if x.shape != self.shapes[j]:
                    raise ValueError(
                        f"{label} has shape {x.shape}, {ref} has {self.shapes[j]}: every "
                        "client's update must have the same shape"
                    )
        self.n = len(self.items)

    def layer_stacks(self) -> list[np.ndarray]:
        """One (n, *shape_l) array per layer (stacked from the list on first use)."""
        if self._layer_stacks is None:
            self._layer_stacks = [
                np.stack([c[j] for c in self.items]) for j in range(len(self.shapes))
            ]
        return self._layer_stacks

    def layer_rows(self) -> list[np.ndarray]:
        """One (n, D_l) view with contiguous rows per layer."""
        return [_row_view(a) for a in self.layer_stacks()]

    def matrix(self) -> np.ndarray:
        """All layers as one (n, D) matrix with contiguous rows (a copy for lists)."""
        if self._matrix is None:
            if self.kind == "matrix":
                self._matrix = _row_view(self.layer_stacks()[0])
            else:
                m = np.empty((self.n, self.d), dtype=self.dtype)
                for i, c in enumerate(self.items):
                    for j, x in enumerate(c):
                        m[i, self.offsets[j] : self.offsets[j + 1]] = x.reshape(-1)
                self._matrix = m
        return self._matrix

    def arrays(self) -> list[np.ndarray]:
        """Every input array (for overlap checks with ``out``)."""
        if self.kind == "matrix":
            return self.layer_stacks()
        return [x for c in self.items for x in c]

    def where(self, j: int) -> str:
        """Flat coordinate ``j`` in words (with its layer for parameter lists)."""
        if self.kind != "layers":
            return f"coordinate {j}"
        layer = int(np.searchsorted(self.offsets, j, side="right")) - 1
        return f"layer {layer}, coordinate {j - self.offsets[layer]}"

    def wrap(self, flat: np.ndarray) -> Any:
        """The flat (D,) result in the input's structure (views of ``flat``)."""
        parts = [
            flat[self.offsets[j] : self.offsets[j + 1]].reshape(s)
            for j, s in enumerate(self.shapes)
        ]
        return parts if self.kind == "layers" else parts[0]


def _check_out(
    out: Any, is_list: bool, dtype: np.dtype, shapes: list[tuple[int, ...]], what: str
) -> list[np.ndarray]:
    """``out`` validated against the result's structure: one array per layer."""
    if is_list:
        if not isinstance(out, (list, tuple)) or len(out) != len(shapes):
            raise TypeError(f"out must be a list of {len(shapes)} arrays (one per layer of {what})")
        items = list(out)
    else:
        if isinstance(out, (list, tuple)):
            raise TypeError(f"out must be an array when {what} is not a list of layers")
        items = [out]
    arrays = []
    for j, o in enumerate(items):
        label = f"out[{j}]" if is_list else "out"
        if not isinstance(o, np.ndarray):
            raise TypeError(f"{label} must be a numpy.ndarray, got {type(o).__name__}")
        if o.dtype != dtype:
            raise TypeError(f"{label} must have dtype {dtype}, got {o.dtype}")
        if o.shape != tuple(shapes[j]):
            raise ValueError(f"{label} must have shape {tuple(shapes[j])}, got {o.shape}")
        if not o.flags.writeable:
            raise ValueError(f"{label} must be writeable")
        arrays.append(o)
    return arrays


def _overlaps(a: np.ndarray, arrays: list[np.ndarray]) -> bool:
    return a.size > 0 and any(x.size and np.may_share_memory(a, x) for x in arrays)


class _FlatOut:
    """A flat (D,) target of the result's dtype, and the public result afterwards.

    Writes go straight into ``out`` when it is one C-contiguous array that shares no
    memory with the inputs; otherwise into a scratch array copied into ``out`` by
    :meth:`result`.
    """

    def __init__(self, out: Any, clients: _Clients) -> None:
        self.clients = clients
        self.out = out
        self.outs: list[np.ndarray] = []
        if out is None:
            self.flat = np.empty(clients.d, dtype=clients.dtype)
            return
        self.outs = _check_out(
            out, clients.kind == "layers", clients.dtype, clients.shapes, "updates"
        )
        only = self.outs[0]
        if (
            len(self.outs) == 1
            and only.flags.c_contiguous
            and not _overlaps(only, clients.arrays())
        ):
            self.flat = only.reshape(-1)
            self.outs = []
        else:
            self.flat = np.empty(clients.d, dtype=clients.dtype)

    def result(self) -> Any:
        if self.out is None:
            return self.clients.wrap(self.flat)
        for j, o in enumerate(self.outs):
            lo, hi = self.clients.offsets[j], self.clients.offsets[j + 1]
            np.copyto(o, self.flat[lo:hi].reshape(o.shape))
        return self.out


def _check_weights(weights: Any, n: int, name: str = "weights") -> np.ndarray:
    """``weights`` as a float64 (n,) array, finite and >= 0 (the sum is the caller's)."""
    w = as_finite_array(weights, name, np.float64)
    if w.shape != (n,):
        raise ValueError(f"{name} must have shape (n_clients,) = ({n},), got {w.shape}")
    if n and w.min() < 0:
        i = int(np.argmin(w))
        raise ValueError(f"{name} must be >= 0, got {w[i]} at index {i}")
    return np.ascontiguousarray(w)


def _sequential_sum(w: np.ndarray) -> float:
    """``w[0] + w[1] + ...`` left to right (as :class:`StreamingFedAvg` adds them)."""
    with np.errstate(over="ignore"):  # an infinite sum is reported by the caller
        return float(np.cumsum(w)[-1]) if w.size else 0.0


def _first_nonfinite(clients: _Clients, rows: Sequence[int] | np.ndarray) -> int | None:
    """The first client among ``rows`` holding NaN or inf (error paths only)."""
    for i in rows:
        if clients.kind == "matrix":
            if not np.isfinite(clients.matrix()[i]).all():
                return int(i)
        elif not all(np.isfinite(x).all() for x in clients.items[i]):
            return int(i)
    return None


# ----------------------------------------------------------------------------- FedAvg


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


def fedavg(updates: Updates, weights: Any = None, *, out: Any = None) -> Any:
    """Federated averaging: the weighted mean of the clients' updates.

    ``Σ_i w_i Δ_i / Σ_i w_i`` (McMahan et al. 2017, "Communication-Efficient Learning of
    Deep Networks from Decentralized Data", Algorithm 1), where ``w_i`` is usually client
    ``i``'s number of training examples. This is also the server step of FedProx (Li et
    al. 2020), whose change is on the clients (:func:`fedprox_gradient`).

    Parameters
    ----------
    updates : array (n, ...), list of n arrays, or list of n parameter lists
        See the module docstring. NaN or inf in a client with a positive weight raises
        ``ValueError`` naming the client.
    weights : array-like of n non-negative numbers, optional
        ``w_i``; default equal weights. Their sum must be positive. A client with weight
        0 contributes nothing and is not read.
    out : array, or list of per-layer arrays, optional
        Where to write the result (same shape(s) and dtype as one client's update).

    Returns
    -------
    ndarray (or list of per-layer arrays): the mean, in the updates' dtype; ``out`` when
    given.

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
    clients = _Clients(updates)
    n = clients.n
    if weights is None:
        w = np.ones(n)
    else:
        w = _check_weights(weights, n)
    total = _sequential_sum(w)
    if not total > 0:
        raise ValueError(f"weights must have a positive sum, got {total}")
    if not math.isfinite(total):
        raise ValueError("weights must have a finite sum, got inf")
    rows = np.flatnonzero(w).astype(np.int64)
    target = _FlatOut(out, clients)
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
            _accumulate(acc[lo:hi], [_flat(clients.items[i][j]) for i in rows], w[rows])
        bad = sum(run_columns(_kernels._finish, clients.d, clients.d, acc, total, flat))
    if bad:
        raise _sum_error(clients, rows, "the weighted sum")
    return target.result()


def _sum_error(clients: _Clients, rows: np.ndarray, what: str) -> ValueError:
    i = _first_nonfinite(clients, rows)
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

    def add(self, update: Any, weight: float = 1.0) -> None:
        """Add one client's update with weight ``w >= 0`` (e.g. its example count).

        ``update`` is an array or a list of per-layer arrays. NaN or inf in an update with
        a positive weight raises ``ValueError`` before anything is added, so the
        accumulator stays usable; an update with weight 0 is checked for structure only.
        """
        w = check_scalar(weight, "weight", NON_NEGATIVE)
        is_list = isinstance(update, (list, tuple))
        parts = list(update) if is_list else [update]
        arrays = []
        for j, x in enumerate(parts):
            arrays.append(as_float_array(x, f"update[{j}]" if is_list else "update"))
        if self._acc is None:
            if is_list and not arrays:
                raise ValueError("update must hold at least one layer, got an empty list")
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
            flats = [_flat(a) for a in arrays]
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

    def result(self, *, out: Any = None) -> Any:
        """The weighted mean so far, in the updates' dtype and structure (``out`` when
        given). Raises ``ValueError`` before any update, or while the total weight is 0."""
        if self._acc is None or self._dtype is None:
            raise ValueError("no update was added: call add() first")
        if not self._total > 0:
            raise ValueError(
                "total_weight must be > 0 for a mean, got 0.0 (every update had weight 0)"
            )
        if out is None:
            outs = [np.empty(s, dtype=self._dtype) for s in self._shapes]
        else:
            outs = _check_out(out, self._is_list, self._dtype, self._shapes, "the updates")
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


# ------------------------------------------------------------------ median, trimmed mean


def _check_nan(nan: Any) -> bool:
    """True for ``nan="omit"``."""
    if nan not in ("raise", "omit"):
        raise ValueError(f"nan must be 'raise' or 'omit', got {nan!r}")
    return nan == "omit"


@functools.lru_cache(maxsize=64)
def _network(n: int) -> np.ndarray:
    """Batcher's odd-even merge sort network for ``n`` inputs, as (P, 2) int64 pairs
    ``a < b`` (compare-exchange: the smaller value to row ``a``).

    Built for the next power of two and pruned of every comparator that touches a
    position ``>= n`` -- those positions would hold +inf padding, which such a
    comparator never moves -- so it sorts any ``n`` (Knuth, TAOCP vol. 3, 5.3.4).
    About ``n log₂² n / 4`` comparators; read-only (shared between calls).
    """
    size = 1
    while size < n:
        size *= 2
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    a = i + j
                    b = a + k
                    if a // (2 * p) == b // (2 * p) and b < n:
                        pairs.append((a, b))
            k //= 2
        p *= 2
    net = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    net.flags.writeable = False
    return net


def _column_stat(
    clients: _Clients, out: Any, mode: int, frac: float, count: int, omit: bool, name: str
) -> Any:
    x = clients.matrix()
    target = _FlatOut(out, clients)
    n = clients.n
    net = _network(n)
    bad = sum(
        run_columns(
            _kernels._column_stat,
            clients.d,
            clients.d * max(n, net.shape[0]),
            x,
            target.flat,
            net,
            mode,
            frac,
            count,
            omit,
        )
    )
    if bad:
        j = int(np.flatnonzero(np.isnan(target.flat))[0])
        raise _column_error(clients, x, j, omit, mode, frac, count, name)
    return target.result()


def _column_error(
    clients: _Clients,
    x: np.ndarray,
    j: int,
    omit: bool,
    mode: int,
    frac: float,
    count: int,
    name: str,
) -> ValueError:
    col = x[:, j].astype(np.float64)
    where = clients.where(j)
    nans = np.flatnonzero(np.isnan(col))
    if nans.size and not omit:
        return ValueError(
            f"updates must not contain NaN: updates[{int(nans[0])}] holds NaN at {where} "
            "(pass nan='omit' to ignore NaNs)"
        )
    m = col.size - nans.size
    if m == 0:
        return ValueError(f"updates holds NaN for every client at {where}: nothing to aggregate")
    if mode != _kernels.MEDIAN:
        k = int(frac * m) if mode == _kernels.TRIM_FRACTION else count
        if m <= 2 * k:
            return ValueError(
                f"trim must leave a value to average: updates has only {m} "
                f"non-NaN values at {where}, and trim cuts {k} from each side"
            )
    return ValueError(f"the {name} at {where} is undefined: it averages -inf and +inf")


def coordinate_median(updates: Updates, *, nan: NanPolicy = "raise", out: Any = None) -> Any:
    """Coordinate-wise median of the clients' updates (Yin et al. 2018, "Byzantine-Robust
    Distributed Learning: Towards Optimal Statistical Rates").

    Coordinate ``j`` of the result is the median of ``{Δ_i[j]}``: the middle value for an
    odd count, the mean of the two middle values for an even one (as ``numpy.median``).
    Up to ``⌈n/2⌉ - 1`` arbitrary (Byzantine) clients cannot move it outside the range
    of the honest values.

    Parameters
    ----------
    updates : array (n, ...), list of n arrays, or list of n parameter lists
        See the module docstring. ±inf are ordinary (extreme) values.
    nan : {"raise", "omit"}
        ``"raise"``: a NaN raises ``ValueError`` naming the client and coordinate.
        ``"omit"``: each coordinate's median is over its non-NaN values (as
        ``numpy.nanmedian``); a coordinate that is NaN for every client raises.
    out : array, or list of per-layer arrays, optional
        Where to write the result.

    Returns
    -------
    ndarray (or list of per-layer arrays) in the updates' dtype; ``out`` when given.

    Notes
    -----
    Each thread gathers a block of columns into a float64 buffer and sorts each column;
    the mean of the two middle values is ``(a + b) / 2`` in float64 (``a/2 + b/2`` if
    ``a + b`` overflows), rounded once. A median of ``-inf`` and ``+inf`` raises.
    """
    omit = _check_nan(nan)
    clients = _Clients(updates)
    return _column_stat(clients, out, _kernels.MEDIAN, 0.0, 0, omit, "median")


def trimmed_mean(
    updates: Updates, trim: float | int = 0.1, *, nan: NanPolicy = "raise", out: Any = None
) -> Any:
    """Coordinate-wise trimmed mean (Yin et al. 2018): per coordinate, drop the ``k``
    smallest and ``k`` largest values and average the rest.

    ``mean(sorted(Δ_1[j], ..., Δ_n[j])[k : n - k])``. With a fraction ``β`` in
    ``[0, 0.5)``, ``k = ⌊β n⌋`` (the cut of ``scipy.stats.trim_mean``); with an int,
    ``k`` itself. Tolerates up to ``k`` Byzantine clients per side.

    Parameters
    ----------
    updates : array (n, ...), list of n arrays, or list of n parameter lists
        See the module docstring. ±inf are ordinary values (trimmed away, or making the
        mean infinite; a mean of -inf and +inf raises).
    trim : float in [0, 0.5), or int >= 0 with 2 * trim < n
        A fraction of the clients to cut per side, or a count per side.
    nan : {"raise", "omit"}
        ``"raise"``: a NaN raises ``ValueError``. ``"omit"``: each coordinate uses its
        ``m`` non-NaN values, cutting ``⌊β m⌋`` (or ``trim``) per side; it raises where
        ``m <= 2k``.
    out : array, or list of per-layer arrays, optional
        Where to write the result.

    Returns
    -------
    ndarray (or list of per-layer arrays) in the updates' dtype; ``out`` when given.

    Notes
    -----
    The kept values are added in sorted order in float64, divided by their number and
    rounded once (values whose sum overflows are divided first).
    """
    omit = _check_nan(nan)
    clients = _Clients(updates)
    if isinstance(trim, (bool, np.bool_)):
        raise TypeError("trim must be a float fraction or an int count, got bool")
    if isinstance(trim, numbers.Integral):
        k = check_int(trim, "trim", minimum=0)
        if 2 * k >= clients.n:
            raise ValueError(
                f"trim must be < n_clients / 2 = {clients.n / 2:g} as a count per side, got {k}"
            )
        return _column_stat(clients, out, _kernels.TRIM_COUNT, 0.0, k, omit, "trimmed mean")
    frac = check_scalar(trim, "trim", (lambda t: 0 <= t < 0.5, "in [0, 0.5)"))
    return _column_stat(clients, out, _kernels.TRIM_FRACTION, frac, 0, omit, "trimmed mean")


# ------------------------------------------------------------------------------- Krum


class KrumResult(NamedTuple):
    """The result of :func:`krum` / :func:`multi_krum`."""

    update: Any
    """The selected update (m = 1) or the mean of the m selected updates."""
    indices: np.ndarray
    """The selected clients (int64), best score first."""
    scores: np.ndarray
    """Every client's Krum score (float64, (n,)); +inf for excluded (non-finite) ones."""


#: Target size in bytes of one float64 block of the blocked Gram matrix.
_GRAM_BLOCK_BYTES = 1 << 20


def _gram(x: np.ndarray) -> np.ndarray:
    """Centred Gram matrix ``(X - μ)(X - μ)ᵀ`` of the (n, D) ``x`` in float64.

    Column blocks are converted to float64, centred on their own column means (distances
    do not change under a translation, and centring removes the cancellation in
    ``|a|² + |b|² - 2 a·b`` when the updates share a large common part), and added with
    one BLAS ``syrk``-shaped product each.
    """
    n, d = x.shape
    g = np.zeros((n, n))
    if n == 0 or d == 0:
        return g
    width = max(64, _GRAM_BLOCK_BYTES // (8 * n))
    buf = np.empty((n, min(width, d)))
    mean = np.empty(buf.shape[1])
    part = np.empty((n, n))
    with np.errstate(over="ignore", invalid="ignore"):  # the caller checks for inf/NaN
        for j0 in range(0, d, width):
            j1 = min(d, j0 + width)
            b = buf if j1 - j0 == buf.shape[1] else np.empty((n, j1 - j0))
            # on the calling thread: OpenBLAS's threads still spin after the last block
            _kernels._center(x, j0, j1, b, mean)
            np.matmul(b, b.T, out=part)
            g += part
        return (g + g.T) * 0.5


def _sq_distances(g: np.ndarray) -> np.ndarray:
    """Pairwise squared distances from a Gram matrix (clamped at 0; diagonal +inf)."""
    diag = np.diag(g)
    with np.errstate(over="ignore", invalid="ignore"):
        d = diag[:, None] + diag[None, :] - 2.0 * g
        np.maximum(d, 0.0, out=d)
    np.fill_diagonal(d, np.inf)
    return d


def _krum(
    updates: Updates, n_byzantine: Any, m: Any, nonfinite: Any, out: Any, default_m: bool
) -> KrumResult:
    if nonfinite not in ("raise", "exclude"):
        raise ValueError(f"nonfinite must be 'raise' or 'exclude', got {nonfinite!r}")
    clients = _Clients(updates)
    n = clients.n
    f = check_int(n_byzantine, "n_byzantine", minimum=0)
    if n <= 2 * f + 2:
        raise ValueError(
            f"n_byzantine must satisfy n_clients > 2 * n_byzantine + 2 (Blanchard et al. "
            f"2017), got n_clients = {n} and n_byzantine = {f}"
        )
    m = n - f if default_m and m is None else check_int(m, "m", minimum=1)
    if m > n:
        raise ValueError(f"m must be <= n_clients = {n}, got {m}")
    x = clients.matrix()
    d = _sq_distances(_gram(x))
    if not np.isfinite(d[~np.eye(n, dtype=bool)]).all():
        bad = np.array([not np.isfinite(x[i]).all() for i in range(n)])
        if not bad.any():
            raise ValueError("updates are too large: their squared distances overflow float64")
        if nonfinite == "raise":
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"updates[{i}] must contain only finite values (found NaN or "
                "inf; pass nonfinite='exclude' to give such clients an "
                "infinite score)"
            )
        good = np.flatnonzero(~bad)
        d = np.full((n, n), np.inf)
        d[np.ix_(good, good)] = _sq_distances(_gram(x[good]))
    k = n - f - 2
    scores = np.sort(d, axis=1)[:, :k].sum(axis=1)
    order = np.argsort(scores, kind="stable")
    chosen = order[:m].astype(np.int64)
    if not np.isfinite(scores[chosen]).all():
        raise ValueError(
            f"m must be <= the number of clients with a finite score "
            f"({int(np.isfinite(scores).sum())}), got {m}"
        )
    target = _FlatOut(out, clients)
    rows = np.sort(chosen)
    run_columns(
        _kernels._wsum_rows,
        clients.d,
        rows.size * clients.d,
        x,
        rows,
        np.ones(rows.size),
        float(rows.size),
        target.flat,
        _kernels.WSUM_BLOCK,
    )
    return KrumResult(target.result(), chosen, scores)


def krum(
    updates: Updates,
    n_byzantine: int,
    *,
    m: int = 1,
    nonfinite: Literal["raise", "exclude"] = "raise",
    out: Any = None,
) -> KrumResult:
    """Krum (Blanchard, El Mhamdi, Guerraoui & Stainer 2017, "Machine Learning with
    Adversaries: Byzantine Tolerant Gradient Descent").

    Client ``i``'s score is ``s(i) = Σ_{j ∈ N_i} ||Δ_i - Δ_j||²`` over its ``n - f - 2``
    nearest other clients; Krum selects the client with the smallest score (ties: the
    lowest index), and with ``m > 1`` averages the ``m`` best (Multi-Krum, their
    Section 5). Tolerates ``f`` Byzantine clients when ``n > 2f + 2``.

    Parameters
    ----------
    updates : array (n, ...), list of n arrays, or list of n parameter lists
        See the module docstring; distances are over all layers together.
    n_byzantine : int >= 0
        ``f``, the number of Byzantine clients to tolerate; ``n > 2f + 2`` is required.
    m : int in [1, n]
        How many of the best-scoring clients to average (``m <= n - f`` keeps every
        selected update within reach of the honest ones).
    nonfinite : {"raise", "exclude"}
        ``"raise"``: NaN or inf in an update raises ``ValueError``. ``"exclude"``: such
        a client is at infinite distance from all others (score +inf, never selected).
    out : array, or list of per-layer arrays, optional
        Where to write the selected (mean) update.

    Returns
    -------
    KrumResult
        ``update``, ``indices`` (the selected clients, best first) and ``scores``.

    Notes
    -----
    All pairwise squared distances come from one Gram matrix,
    ``||a - b||² = |a|² + |b|² - 2 a·b``, built block by block in float64 with BLAS after
    centring each block on its mean (see :func:`_gram`): one read of the updates and
    ``n² D`` multiply-adds instead of ``n²/2`` difference vectors. The selected updates
    are averaged in client order in float64.
    """
    return _krum(updates, n_byzantine, m, nonfinite, out, default_m=False)


def multi_krum(
    updates: Updates,
    n_byzantine: int,
    m: int | None = None,
    *,
    nonfinite: Literal["raise", "exclude"] = "raise",
    out: Any = None,
) -> KrumResult:
    """Multi-Krum: the mean of the ``m`` clients with the best Krum scores (default
    ``m = n - f``). See :func:`krum` for the scores and the parameters."""
    return _krum(updates, n_byzantine, m, nonfinite, out, default_m=True)


# ----------------------------------------------------------------------------- FedProx


def _layers_of(x: Any, name: str) -> tuple[list[np.ndarray], bool]:
    is_list = isinstance(x, (list, tuple))
    parts = list(x) if is_list else [x]
    if is_list and not parts:
        raise ValueError(f"{name} must hold at least one layer, got an empty list")
    arrays = [as_float_array(p, f"{name}[{j}]" if is_list else name) for j, p in enumerate(parts)]
    return arrays, is_list


def fedprox_gradient(
    grad: Any, weights: Any, global_weights: Any, mu: float, *, out: Any = None
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
    ndarray (or list of per-layer arrays) in ``grad``'s dtype; ``out`` when given.
    Computed in float64 and rounded once.
    """
    mu_f = check_scalar(mu, "mu", NON_NEGATIVE)
    g, is_list = _layers_of(grad, "grad")
    w, w_list = _layers_of(weights, "weights")
    wg, wg_list = _layers_of(global_weights, "global_weights")
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
        outs = _check_out(out, is_list, g[0].dtype, shapes, "grad")
    inputs = [*g, *w, *wg]
    for j, o in enumerate(outs):
        fg, fw, fwg = _flat(g[j]), _flat(w[j]), _flat(wg[j])
        direct = o.flags.c_contiguous and not any(
            o.size and np.may_share_memory(o, a) and not _same_elements(o, a) for a in inputs
        )
        target = o.reshape(-1) if direct else np.empty(o.size, dtype=o.dtype)
        run_columns(_kernels._prox, o.size, o.size, fg, fw, fwg, mu_f, target)
        if not direct:
            np.copyto(o, target.reshape(o.shape))
    if out is not None:
        return out
    return outs if is_list else outs[0]


def _same_elements(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` and ``b`` are the same C-contiguous run of memory element for element
    (an elementwise kernel may then read and write it in place)."""
    return (
        a.flags.c_contiguous
        and b.flags.c_contiguous
        and a.size == b.size
        and a.dtype == b.dtype
        and a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
    )


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
    updates: Updates,
    clip_norm: float | None,
    noise_multiplier: float,
    *,
    weights: Any = None,
    rng: Any = None,
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
        The round's updates (see the module docstring); an (0, ...) array is an empty
        round (pure noise; needs ``expected_clients``).
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
    if nonfinite not in ("raise", "zero"):
        raise ValueError(f"nonfinite must be 'raise' or 'zero', got {nonfinite!r}")
    clients = _Clients(updates, allow_empty=True)
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
        q = check_scalar(sample_rate, "sample_rate", (lambda x: 0 < x <= 1, "in (0, 1]"))
    w = None
    if weights is not None:
        w = _check_weights(weights, clients.n)
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
    clients: _Clients,
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
