"""Benchmark rows for :mod:`ppml_fast.mechanisms`: native (secure AES-CTR stream, noise
added inside the sampler's loop) against the plain-numpy reference on numpy's PCG64, and
diffprivlib when installed (per-value ``randomise``, small sizes only).

The Laplace and Gaussian rows carry the bare sampler (``noise.laplace`` /
``noise.gaussian`` on the same size) in the peer column ``bare sampler``: its "vs" ratio is
sampler time / mechanism time, the issue's target being >= 1/1.2 (mechanism within 1.2x
of the sampler).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from .. import mechanisms, noise
from ..reference import mechanisms as ref
from ..rng import default_rng
from . import Case, Target

_EPS, _DELTA = 1.0, 1e-5


def _diffprivlib(kind: str, values: np.ndarray) -> dict[str, Any]:
    if values.size > 10**4:
        return {}
    try:
        from diffprivlib.mechanisms import Gaussian, Laplace
    except ImportError:
        return {}
    mech = (
        Laplace(epsilon=_EPS, sensitivity=1.0)
        if kind == "laplace"
        else Gaussian(epsilon=_EPS, delta=_DELTA, sensitivity=1.0)
    )
    data = values.tolist()
    return {"diffprivlib": lambda: [mech.randomise(v) for v in data]}


#: "within 1.2x of the bare sampler": bare / mechanism >= 1 / 1.2.
_WITHIN_BARE = Target("vs bare sampler", 1 / 1.2, "time <= 1.2x the bare sampler's")


def cases(full: bool) -> list[Case]:
    sizes = [10**4, 10**6] if not full else [10**4, 10**5, 10**6, 10**7]
    out = []
    secure = default_rng()  # the stream rng=None would use, passed explicitly: no warning
    for n in sizes:
        x = np.linspace(-1.0, 1.0, n)
        pcg = np.random.Generator(np.random.PCG64())
        sigma = mechanisms.gaussian_sigma(_EPS, _DELTA)
        out.append(
            Case(
                "laplace_mechanism",
                f"{n:.0e}",
                native=partial(mechanisms.laplace_mechanism, x, 1.0, _EPS, rng=secure),
                reference=partial(ref.laplace_mechanism, x, 1.0, _EPS, rng=pcg),
                reference_name="numpy PCG64",
                peers={
                    "bare sampler": partial(noise.laplace, 1.0 / _EPS, n, rng=secure),
                    **_diffprivlib("laplace", x),
                },
                items=n,
                target=_WITHIN_BARE if n == 10**6 else None,
            )
        )
        out.append(
            Case(
                "gaussian_mechanism",
                f"{n:.0e}",
                native=partial(mechanisms.gaussian_mechanism, x, 1.0, _EPS, _DELTA, rng=secure),
                reference=partial(ref.gaussian_mechanism, x, 1.0, _EPS, _DELTA, rng=pcg),
                reference_name="numpy PCG64",
                peers={
                    "bare sampler": partial(noise.gaussian, sigma, n, rng=secure),
                    **_diffprivlib("gaussian", x),
                },
                items=n,
                target=_WITHIN_BARE if n == 10**6 else None,
            )
        )
    shapes = (
        [(1000, 1000), (10**5, 10)]
        if not full
        else [(100, 100), (1000, 1000), (10**5, 10), (10, 10**5)]
    )
    for rows, k in shapes:
        u = np.random.default_rng(0).normal(size=(rows, k))
        pcg = np.random.Generator(np.random.PCG64())
        out.append(
            Case(
                "exponential_mechanism",
                f"{rows}x{k}",
                native=partial(mechanisms.exponential_mechanism, u, _EPS, 1.0, rng=secure),
                reference=partial(ref.exponential_mechanism, u, _EPS, 1.0, rng=pcg),
                reference_name="softmax + Generator.choice",
                items=rows * k,
            )
        )
    n = 10**6 if not full else 10**7
    bits = np.random.default_rng(0).random(n) < 0.5
    out.append(
        Case(
            "randomized_response",
            f"{n:.0e}",
            native=partial(mechanisms.randomized_response, bits, _EPS, rng=secure),
            reference=partial(
                ref.randomized_response, bits, _EPS, rng=np.random.Generator(np.random.PCG64())
            ),
            reference_name="numpy PCG64",
            items=n,
        )
    )
    return out
