"""Client inputs of the aggregators: ``n`` clients' updates to one (n, D) form and back.

The aggregators of :mod:`.fedavg` and :mod:`.robust` accept an ``(n, ...)`` array, a list
of ``n`` arrays, or a list of ``n`` lists of per-layer arrays (see
:mod:`ppml_fast.aggregation`); :class:`Clients` validates that input once and hands the
kernels what they read -- per-layer stacks, (n, D) row views, or one (n, D) matrix -- and
:meth:`Clients.wrap` / :class:`FlatOut` turn a flat (D,) result back into the input's
structure (or into a caller's ``out``). :func:`as_layers` does the same for one client's
array or parameter list (FedProx, :class:`~.fedavg.StreamingFedAvg`);
:func:`float64_rows` is the stricter (n, D) form that secure aggregation quantises.

Nothing here computes an aggregate; every check raises the error a public function
documents, with the argument's name in it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._types import ArrayLike, UpdatesLike
from .._validation import as_finite_array, as_float_array, asarray

__all__ = [
    "Clients",
    "FlatOut",
    "as_flat",
    "as_layers",
    "check_out",
    "check_weights",
    "float64_rows",
    "overlaps",
    "row_view",
    "same_elements",
]


def row_view(a: np.ndarray) -> np.ndarray:
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


def as_flat(a: np.ndarray) -> np.ndarray:
    """``a`` as a 1-d C-contiguous array (a view when it already is one)."""
    return np.ascontiguousarray(a).reshape(-1)


class Clients:
    """``updates`` normalised and validated (the input forms of :mod:`ppml_fast.aggregation`).

    Parameters
    ----------
    updates : UpdatesLike
        An ``(n, ...)`` float array, a list of ``n`` arrays of one shape, or a list of
        ``n`` lists of per-layer arrays with one set of layer shapes; one dtype (float32
        or float64) throughout.
    allow_empty : bool
        Accept an ``(0, ...)`` array (an empty round); a list must never be empty.

    Raises
    ------
    TypeError
        A client or layer that is not a float32/float64 array, a dtype that differs from
        ``updates[0]``'s, or a client that is an array where ``updates[0]`` is a list of
        layers (or the reverse).
    ValueError
        An array with fewer than two dimensions, no client, a client without layers, or
        a shape (or layer count) that differs from ``updates[0]``'s.

    Notes
    -----
    ``kind`` is ``"matrix"`` (one (n, ...) array), ``"arrays"`` (a list of arrays) or
    ``"layers"`` (a list of parameter lists); ``shapes`` the result's per-layer shapes
    (one entry unless ``"layers"``), ``sizes`` their element counts, ``offsets`` where
    each layer starts in the flat (D,) result, and ``items[i][l]`` client ``i``'s layer
    ``l`` for the list kinds. Nothing is copied until a method needs it.
    """

    kind: str
    n: int
    dtype: np.dtype[Any]
    shapes: list[tuple[int, ...]]

    def __init__(self, updates: UpdatesLike, *, allow_empty: bool = False) -> None:
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
        self.offsets: list[int] = (
            np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64).tolist()
        )
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
        return [row_view(a) for a in self.layer_stacks()]

    def matrix(self) -> np.ndarray:
        """All layers as one (n, D) matrix with contiguous rows (a copy for lists)."""
        if self._matrix is None:
            if self.kind == "matrix":
                self._matrix = row_view(self.layer_stacks()[0])
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

    def first_nonfinite(self, rows: Sequence[int] | np.ndarray) -> int | None:
        """The first client among ``rows`` holding NaN or inf (error paths only)."""
        for i in rows:
            if self.kind == "matrix":
                if not np.isfinite(self.matrix()[i]).all():
                    return int(i)
            elif not all(np.isfinite(x).all() for x in self.items[i]):
                return int(i)
        return None

    def where(self, j: int) -> str:
        """Flat coordinate ``j`` in words (with its layer for parameter lists)."""
        if self.kind != "layers":
            return f"coordinate {j}"
        layer = int(np.searchsorted(self.offsets, j, side="right")) - 1
        return f"layer {layer}, coordinate {j - self.offsets[layer]}"

    def wrap(self, flat: np.ndarray) -> Any:
        """The flat (D,) result in the input's structure (views of ``flat``): an array,
        or a list of per-layer arrays for parameter lists."""
        parts = [
            flat[self.offsets[j] : self.offsets[j + 1]].reshape(s)
            for j, s in enumerate(self.shapes)
        ]
        return parts if self.kind == "layers" else parts[0]


def as_layers(x: Any, name: str, *, allow_empty: bool = False) -> tuple[list[np.ndarray], bool]:
    """One client's array or list of per-layer arrays as ``(arrays, is_list)``.

    Each layer goes through :func:`~ppml_fast._validation.as_float_array` under the name
    ``name[j]`` (or ``name`` for a single array). An empty list raises ``ValueError``
    unless ``allow_empty`` (the caller then compares it with a known structure).
    """
    is_list = isinstance(x, (list, tuple))
    parts = list(x) if is_list else [x]
    if is_list and not parts and not allow_empty:
        raise ValueError(f"{name} must hold at least one layer, got an empty list")
    arrays = [as_float_array(p, f"{name}[{j}]" if is_list else name) for j, p in enumerate(parts)]
    return arrays, is_list


def check_out(
    out: Any,
    is_list: bool,
    dtype: np.dtype[Any],
    shapes: Sequence[tuple[int, ...]],
    what: str,
) -> list[np.ndarray]:
    """``out`` validated against the result's structure: one array per layer.

    ``what`` names the input whose structure the result has (for the messages).
    """
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


def overlaps(a: np.ndarray, arrays: list[np.ndarray]) -> bool:
    """Whether ``a`` may share memory with any non-empty array of ``arrays``."""
    return a.size > 0 and any(x.size and np.may_share_memory(a, x) for x in arrays)


def same_elements(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` and ``b`` are the same C-contiguous run of memory element for element
    (an elementwise kernel may then read and write it in place)."""
    return bool(
        a.flags.c_contiguous
        and b.flags.c_contiguous
        and a.size == b.size
        and a.dtype == b.dtype
        and a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
    )


class FlatOut:
    """A flat (D,) target of the result's dtype, and the public result afterwards.

    Writes go straight into ``out`` when it is one C-contiguous array that shares no
    memory with the inputs; otherwise into a scratch array copied into ``out`` by
    :meth:`result`.
    """

    def __init__(self, out: Any, clients: Clients) -> None:
        self.clients = clients
        self.out = out
        self.outs: list[np.ndarray] = []
        if out is None:
            self.flat = np.empty(clients.d, dtype=clients.dtype)
            return
        self.outs = check_out(
            out, clients.kind == "layers", clients.dtype, clients.shapes, "updates"
        )
        only = self.outs[0]
        if len(self.outs) == 1 and only.flags.c_contiguous and not overlaps(only, clients.arrays()):
            self.flat = only.reshape(-1)
            self.outs = []
        else:
            self.flat = np.empty(clients.d, dtype=clients.dtype)

    def result(self) -> Any:
        """The result in the input's structure: ``out`` itself when it was given."""
        if self.out is None:
            return self.clients.wrap(self.flat)
        for j, o in enumerate(self.outs):
            lo, hi = self.clients.offsets[j], self.clients.offsets[j + 1]
            np.copyto(o, self.flat[lo:hi].reshape(o.shape))
        return self.out


def check_weights(weights: ArrayLike, n: int, name: str = "weights") -> np.ndarray:
    """``weights`` as a float64 (n,) array, finite and >= 0 (the sum is the caller's)."""
    w = as_finite_array(weights, name, np.float64)
    if w.shape != (n,):
        raise ValueError(f"{name} must have shape (n_clients,) = ({n},), got {w.shape}")
    if n and w.min() < 0:
        i = int(np.argmin(w))
        raise ValueError(f"{name} must be >= 0, got {w[i]} at index {i}")
    return np.ascontiguousarray(w)


def float64_rows(updates: UpdatesLike) -> np.ndarray:
    """``updates`` as an (n, D) float64 matrix: an (n, D) array of any real dtype, or a
    list of ``n`` 1-D arrays of one length (stacked).

    The form :func:`~ppml_fast.aggregation.secure_aggregate` quantises: its fixed-point
    encoding reads any real dtype, and a client's update is one vector (no layers). NaN
    passes (the quantiser rejects it).

    Raises
    ------
    ValueError
        A listed update that is not 1-D of the first one's length, or a result that is
        not two-dimensional with at least two clients.
    """
    if isinstance(updates, (list, tuple)):
        rows = [asarray(u, f"updates[{k}]", np.float64) for k, u in enumerate(updates)]
        if any(r.ndim != 1 or r.shape != rows[0].shape for r in rows):
            raise ValueError("updates: every client's update must be 1-D of one length")
        x = np.stack(rows) if rows else np.zeros((0, 0))
    else:
        x = asarray(updates, "updates", np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"updates must be (n_clients >= 2, D), got shape {x.shape}")
    return x
