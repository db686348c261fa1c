"""The noise fill behind every continuous DP mechanism: ``out = loc + scale * Z``.

Shared plumbing of :mod:`ppml_fast.noise`, :mod:`ppml_fast.mechanisms`,
:mod:`ppml_fast.stats`, :mod:`ppml_fast.clipping` and :mod:`ppml_fast.aggregation`: each
validates its own arguments, then calls :func:`fill` with one of the kinds below. The
ziggurat kernels live in :mod:`ppml_fast._native.noise`.
"""

from __future__ import annotations

import numpy as np

from . import _config
from ._native import noise as _kernels
from ._streams import split

__all__ = ["GAUSSIAN", "GUMBEL", "LAPLACE", "fill", "max_scale"]

#: Standard Laplace variates (density ``exp(-|z|) / 2``).
LAPLACE: int = _kernels.KIND_LAPLACE
#: Standard normal variates.
GAUSSIAN: int = _kernels.KIND_GAUSSIAN
#: Standard Gumbel variates (report-noisy-max with the exponential mechanism).
GUMBEL: int = _kernels.KIND_GUMBEL


def fill(
    kind: int,
    gen: np.random.Generator,
    scale: float,
    out: np.ndarray,
    loc: np.ndarray | None = None,
) -> bool:
    """``out = loc + scale * Z`` (``loc`` optional, same shape/dtype, may alias ``out``).

    ``out`` is C-contiguous float32 or float64 and ``scale`` is finite and at most
    :func:`max_scale` of its dtype (the caller checks). ``Z`` comes from ``gen`` split
    into fixed blocks, so a seeded stream gives the same array on any thread count.
    Returns False when some ``loc + scale * Z`` is NaN or infinite (a non-finite ``loc``
    or an overflow), found in the same pass.
    """
    flat = out.reshape(-1)
    flat_loc = None if loc is None else loc.reshape(-1)
    with split(gen, flat.size) as (bit_generators, block):
        return _kernels.fill(
            kind, bit_generators, block, scale, flat, flat_loc, _config.omp_threads()
        )


def max_scale(dtype: np.dtype) -> float:
    """Largest scale whose samples stay finite in ``dtype``: the dtype's maximum / 2**10.

    A standard Laplace or normal variate beyond 2**10 has probability below e**-1000,
    which the 53-bit uniforms of the ziggurat cannot even produce.
    """
    return float(np.finfo(dtype).max) / 1024.0
