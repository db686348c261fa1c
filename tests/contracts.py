"""The size/out/dtype contract every batched sampler honours, written once.

``check_sampler_contract(sample, dtypes)`` runs one sampler (a callable taking
``size=, rng=, dtype=, out=`` and, where ``dtypes`` has one entry, no ``dtype``) through
the shapes, ``out=`` rules and layout errors every batched function promises
(ARCHITECTURE.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest


def check_sampler_contract(sample: Callable[..., Any], dtypes: list[Any]) -> None:
    kw = (lambda dt: {"dtype": dt}) if len(dtypes) > 1 else (lambda dt: {})
    for dt in dtypes:
        dt = np.dtype(dt)
        scalar = sample(size=None, rng=1, **kw(dt))
        assert np.ndim(scalar) == 0 and np.asarray(scalar).dtype == dt
        assert sample(size=0, rng=1, **kw(dt)).shape == (0,)
        assert sample(size=(0, 3), rng=1, **kw(dt)).shape == (0, 3)
        a = sample(size=(3, 4), rng=1, **kw(dt))
        assert a.shape == (3, 4) and a.dtype == dt
        assert sample(size=np.int64(5), rng=1, **kw(dt)).shape == (5,)

        out = np.empty((3, 4), dtype=dt)
        res = sample(size=None, rng=1, out=out, **kw(dt))
        assert res is out and np.array_equal(out, a)  # same seed, same numbers
        res = sample(size=(3, 4), rng=1, out=out, **kw(dt))
        assert res is out

        with pytest.raises(ValueError, match="out must have shape"):
            sample(size=(4, 3), rng=1, out=out, **kw(dt))
        with pytest.raises(ValueError, match="out must be C-contiguous"):
            sample(size=None, rng=1, out=np.empty((4, 6), dtype=dt)[:, ::2], **kw(dt))
        ro = np.empty(3, dtype=dt)
        ro.flags.writeable = False
        with pytest.raises(ValueError, match="out must be writeable"):
            sample(size=None, rng=1, out=ro, **kw(dt))
        wrong = np.float32 if dt != np.float32 else np.float64
        with pytest.raises(TypeError, match="out must have dtype"):
            sample(size=None, rng=1, out=np.empty(3, dtype=wrong), **kw(dt))
        with pytest.raises(TypeError, match=r"out must be a numpy\.ndarray"):
            sample(size=None, rng=1, out=[0.0, 0.0], **kw(dt))

    with pytest.raises(ValueError, match="size must be >= 0"):
        sample(size=-1, rng=1)
    with pytest.raises(TypeError, match="size must be"):
        sample(size=2.5, rng=1)
    with pytest.raises(TypeError, match="size must be"):
        sample(size="3", rng=1)
