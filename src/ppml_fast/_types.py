"""Named type aliases for the public signatures (instead of bare ``Any``).

``ArrayLike`` is anything numpy converts (lists, scalars, arrays, torch CPU tensors);
``RngLike`` is what every ``rng=`` parameter accepts (see :mod:`ppml_fast.rng`);
``UpdatesLike`` is what the aggregators accept for ``n`` clients' updates; ``SizeLike``
is the ``size=`` of the batched samplers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

__all__ = ["ArrayLike", "DTypeLike", "RngLike", "SizeLike", "UpdatesLike"]

#: Anything ``numpy.asarray`` accepts.
ArrayLike: TypeAlias = npt.ArrayLike
#: A dtype or anything ``numpy.dtype`` accepts.
DTypeLike: TypeAlias = npt.DTypeLike
#: ``None`` (the secure stream), an int seed or ``SeedSequence`` (reproducible, for tests),
#: or a numpy ``Generator`` / ``BitGenerator`` used as given.
RngLike: TypeAlias = (
    int | np.random.SeedSequence | np.random.Generator | np.random.BitGenerator | None
)
#: ``size=`` of a batched sampler: ``None`` (one scalar), an int or a shape tuple.
SizeLike: TypeAlias = int | tuple[int, ...] | None
#: ``n`` clients' updates: an ``(n, ...)`` array, a list of ``n`` arrays, or a list of
#: ``n`` lists of per-layer arrays.
UpdatesLike: TypeAlias = npt.ArrayLike | Sequence[npt.ArrayLike] | Sequence[Sequence[npt.ArrayLike]]
