"""The distance-correlation plumbing of :mod:`ppml_fast.split`: input checks, the kernel
call and its per-thread workspace, shared by :mod:`.nopeek` and :mod:`.leakage` (whose
errors name their own parameters)."""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

from .. import _config
from .._native import split as _kernels
from .._validation import as_float_array, check_allocation, row_view

#: Workspaces up to this many bytes are kept for the next call on the same thread (fresh
#: memory costs a page fault per 4 KiB page on first touch, which is a large part of a
#: small call); larger ones are freed after each call.
_KEEP_BYTES = 64 << 20
_local = threading.local()


def _workspace(size: int) -> np.ndarray:
    """A float64 buffer of at least ``size`` elements, reused across calls of one thread."""
    buf: np.ndarray | None = getattr(_local, "work", None)
    if buf is not None and buf.size >= size:
        return buf
    check_allocation(8 * size, "x", "the distance matrices of the batch")
    buf = np.empty(max(size, 1), dtype=np.float64)
    if 8 * size <= _KEEP_BYTES:
        _local.work = buf
    return buf


def _rows(a: np.ndarray) -> np.ndarray:
    """``a`` as (B, d) with contiguous, read-only rows: a view when possible, else a copy."""
    return row_view(a, writeable=False)


def _batch(v: Any, name: str) -> np.ndarray:
    a = as_float_array(v, name)
    if a.ndim < 1:
        raise ValueError(f"{name} must have at least 1 dimension (B, ...), got a scalar")
    if a.shape[0] < 2:
        raise ValueError(
            f"{name} must hold at least 2 examples (rows), got {a.shape[0]}: distance "
            "correlation compares the examples of a batch with each other"
        )
    return a


def batch_inputs(
    x: Any, z: Any, names: tuple[str, str] = ("x", "z")
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x rows, z rows, z as an array), checked; errors call them ``names``."""
    xn, zn = names
    xa, za = _batch(x, xn), _batch(z, zn)
    if xa.shape[0] != za.shape[0]:
        raise ValueError(
            f"{zn} has {za.shape[0]} rows but {xn} has {xa.shape[0]}: {xn} and {zn} need "
            "one row per example of the same batch"
        )
    return _rows(xa), _rows(za), za


def run_kernel(
    xr: np.ndarray,
    zr: np.ndarray,
    grad: np.ndarray | None,
    names: tuple[str, str] = ("x", "z"),
) -> tuple[float, ...]:
    n, dx, dz = xr.shape[0], xr.shape[1], zr.shape[1]
    work = _workspace(_kernels.work_size(n, dx, dz, grad is not None))
    rc, dcov2, vx, vz, r = _kernels.dcor(xr, zr, grad, work, _config.omp_threads())
    if rc:
        name = names[0] if rc == _kernels.NONFINITE_X else names[1]
        raise ValueError(f"{name} must contain only finite values (it holds NaN or inf)")
    return dcov2, vx, vz, r


def named_distance_correlation(x: Any, z: Any, names: tuple[str, str]) -> float:
    """:func:`ppml_fast.split.nopeek.distance_correlation`; errors call the inputs ``names``."""
    xr, zr, _ = batch_inputs(x, z, names)
    return math.sqrt(float(run_kernel(xr, zr, None, names)[3]))
