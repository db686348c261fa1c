"""Reference samplers: numpy's own Generator methods, the baseline every kernel must beat.

The exact discrete samplers' oracle lives in :mod:`ppml_fast.reference.noise_discrete`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def laplace(scale: float, size: Any = None, *, rng: Any = None, dtype: Any = np.float64) -> Any:
    """Laplace(0, scale) from ``numpy.random.Generator.laplace`` (inverse CDF on PCG64)."""
    gen = np.random.default_rng(rng)
    return np.asarray(gen.laplace(0.0, scale, size)).astype(dtype, copy=False)


def gaussian(sigma: float, size: Any = None, *, rng: Any = None, dtype: Any = np.float64) -> Any:
    """N(0, sigma²) from ``numpy.random.Generator.normal`` (numpy's ziggurat on PCG64)."""
    gen = np.random.default_rng(rng)
    return np.asarray(gen.normal(0.0, sigma, size)).astype(dtype, copy=False)


def ziggurat_tables(r: float, v: float, f: Any, finv: Any, n: int = 256) -> Any:
    """Marsaglia & Tsang's (2000) layer edges X[0..n] and heights F[0..n], in plain Python.

    The native kernels build the same tables in C; tests compare the two.
    """
    x = [0.0] * (n + 1)
    x[0] = v / f(r)
    x[1] = r
    for i in range(1, n - 1):
        y = v / x[i] + f(x[i])
        x[i + 1] = finv(y) if y < 1.0 else 0.0
    heights = [f(xi) for xi in x]
    heights[0] = f(r)
    return np.array(x), np.array(heights)


# --- the ziggurat samplers in plain Python, word for word as the kernel consumes them ---

_TWO_M53 = 2.0**-53
_R_EXP, _V_EXP = 7.69711747013104972, 3.949659822581572e-3
_R_NORM, _V_NORM = 3.6541528853610088, 4.92867323399e-3


def _layers(r: float, v: float, f: Any, finv: Any) -> tuple[list, list, list, list]:
    x, heights = ziggurat_tables(r, v, f, finv)
    w = [float(xi) * _TWO_M53 for xi in x[:-1]]
    k = [int((float(x[i + 1]) / float(x[i])) * 9007199254740992.0) for i in range(len(x) - 1)]
    return [float(h) for h in heights], w, k, [float(xi) for xi in x]


def _exp_layers() -> tuple[list, list, list, list]:
    return _layers(_R_EXP, _V_EXP, lambda t: math.exp(-t), lambda y: -math.log(y))


def _norm_layers() -> tuple[list, list, list, list]:
    return _layers(
        _R_NORM, _V_NORM, lambda t: math.exp(-0.5 * t * t), lambda y: math.sqrt(-2.0 * math.log(y))
    )


def ziggurat_from_stream(kind: str, scale: float, n: int, bit_generator: Any) -> np.ndarray:
    """``n`` draws of ``kind`` ("laplace", "gaussian", "exponential", "gumbel") at ``scale``,
    computed in Python from ``bit_generator``'s raw 64-bit words in the kernel's order.

    The oracle for bit-exact tests of the native ziggurat kernels on one block.
    """

    def word() -> int:
        return int(bit_generator.random_raw())

    def unit() -> float:
        return (word() >> 11) * _TWO_M53

    def unit_open0() -> float:
        return ((word() >> 11) + 1) * _TWO_M53

    fe, we, ke, _ = _exp_layers()
    fn, wn, kn, _ = _norm_layers()

    def exp_from(u: int) -> float:
        base = 0.0
        while True:
            i, j = u & 0xFF, u >> 11
            if j < ke[i]:
                return base + j * we[i]
            if i == 0:
                base += _R_EXP
            else:
                x = j * we[i]
                if fe[i] + unit() * (fe[i + 1] - fe[i]) < math.exp(-x):
                    return base + x
            u = word()

    def norm_from(u: int) -> float:
        while True:
            i, j = u & 0xFF, u >> 11
            if j < kn[i]:
                return j * wn[i]
            if i == 0:
                while True:
                    x = -math.log(unit_open0()) / _R_NORM
                    y = -math.log(unit_open0())
                    if y + y > x * x:
                        return _R_NORM + x
            x = j * wn[i]
            if fn[i] + unit() * (fn[i + 1] - fn[i]) < math.exp(-0.5 * x * x):
                return x
            u = word()

    out = np.empty(n)
    for t in range(n):
        u = word()
        if kind == "gaussian":
            out[t] = (-scale if (u >> 8) & 1 else scale) * norm_from(u)
        elif kind == "laplace":
            out[t] = (-scale if (u >> 8) & 1 else scale) * exp_from(u)
        elif kind == "exponential":
            out[t] = scale * exp_from(u)
        elif kind == "gumbel":
            z = exp_from(u)
            while z == 0.0:
                z = exp_from(word())
            out[t] = -scale * math.log(z)
        else:
            raise ValueError(f"kind must be laplace, gaussian, exponential or gumbel, got {kind!r}")
    return out
