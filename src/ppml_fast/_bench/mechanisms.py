"""Benchmark cases for :mod:`ppml_fast.mechanisms`: native (secure AES-CTR stream, noise
added inside the sampler's loop) against the plain-numpy reference on numpy's PCG64, and
diffprivlib when installed (per-value ``randomise``, 10^4 values only).

The exponential mechanism's reference is the fastest plain numpy sampler: one softmax,
one cumulative sum and one uniform per row, vectorised (inverse CDF); the Gumbel-max
trick in numpy and a ``Generator.choice`` loop over the rows are peers.

The Laplace and Gaussian rows carry the bare sampler (``noise.laplace`` /
``noise.gaussian`` on the same size) in the peer column ``bare sampler``: its "vs" ratio is
sampler time / mechanism time, the target being >= 1/1.2 at 10^6 (mechanism within 1.2x
of the sampler).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from .. import mechanisms, noise
from ..reference import mechanisms as ref
from ..rng import default_rng
from . import Case, Data, Target, select

_EPS, _DELTA = 1.0, 1e-5

#: "within 1.2x of the bare sampler": bare / mechanism >= 1 / 1.2.
_WITHIN_BARE = Target("vs bare sampler", 1 / 1.2, "time <= 1.2x the bare sampler's")


def _diffprivlib(kind: str, data: Data, n: int) -> dict[str, Any]:
    if n > 10**4:
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

    def call() -> list[float]:
        values = data.get(f"list{n}", lambda: np.linspace(-1.0, 1.0, n).tolist())
        return [mech.randomise(v) for v in values]

    return {"diffprivlib": call}


def _additive(data: Data, n: int, full: bool) -> list[Case]:
    secure = default_rng()  # the stream rng=None would use, passed explicitly: no warning
    pcg = np.random.Generator(np.random.PCG64())
    sigma = mechanisms.gaussian_sigma(_EPS, _DELTA)

    def x() -> np.ndarray:
        return data.get(f"x{n}", lambda: np.linspace(-1.0, 1.0, n))

    return [
        Case(
            "laplace_mechanism",
            f"{n:.0e}",
            native=lambda: mechanisms.laplace_mechanism(x(), 1.0, _EPS, rng=secure),
            reference=lambda: ref.laplace_mechanism(x(), 1.0, _EPS, rng=pcg),
            reference_name="numpy PCG64",
            peers={
                "bare sampler": partial(noise.laplace, 1.0 / _EPS, n, rng=secure),
                **_diffprivlib("laplace", data, n),
            },
            items=n,
            target=_WITHIN_BARE if n == 10**6 else None,
            full=full,
            data=data,
            check=lambda y: np.shape(y) == (n,),
        ),
        Case(
            "gaussian_mechanism",
            f"{n:.0e}",
            native=lambda: mechanisms.gaussian_mechanism(x(), 1.0, _EPS, _DELTA, rng=secure),
            reference=lambda: ref.gaussian_mechanism(x(), 1.0, _EPS, _DELTA, rng=pcg),
            reference_name="numpy PCG64",
            peers={
                "bare sampler": partial(noise.gaussian, sigma, n, rng=secure),
                **_diffprivlib("gaussian", data, n),
            },
            items=n,
            target=_WITHIN_BARE if n == 10**6 else None,
            full=full,
            data=data,
            check=lambda y: np.shape(y) == (n,),
        ),
    ]


def _exponential(data: Data, rows: int, k: int, full: bool) -> Case:
    secure = default_rng()
    pcg = np.random.Generator(np.random.PCG64())

    def u() -> np.ndarray:
        return data.get(f"u{rows}x{k}", lambda: np.random.default_rng(0).normal(size=(rows, k)))

    return Case(
        "exponential_mechanism",
        f"{rows}x{k}",
        native=lambda: mechanisms.exponential_mechanism(u(), _EPS, 1.0, rng=secure),
        reference=lambda: ref.exponential_mechanism_cumsum(u(), _EPS, 1.0, rng=pcg),
        reference_name="numpy softmax cumsum + 1 uniform/row, vectorised",
        peers={
            "numpy Gumbel-max": lambda: ref.exponential_mechanism_gumbel(u(), _EPS, 1.0, rng=pcg),
            "Generator.choice loop": lambda: ref.exponential_mechanism(u(), _EPS, 1.0, rng=pcg),
        },
        items=rows * k,
        full=full,
        data=data,
        check=lambda y: np.shape(y) == (rows,),
    )


def _randomized_response(data: Data, n: int, full: bool) -> Case:
    secure = default_rng()
    pcg = np.random.Generator(np.random.PCG64())

    def bits() -> np.ndarray:
        return data.get(f"bits{n}", lambda: np.random.default_rng(0).random(n) < 0.5)

    return Case(
        "randomized_response",
        f"{n:.0e}",
        native=lambda: mechanisms.randomized_response(bits(), _EPS, rng=secure),
        reference=lambda: ref.randomized_response(bits(), _EPS, rng=pcg),
        reference_name="numpy PCG64",
        items=n,
        full=full,
        data=data,
        check=lambda y: np.shape(y) == (n,),
    )


def cases(full: bool) -> list[Case]:
    """The mechanism rows; ``full`` adds the large sizes.

    Parameters
    ----------
    full : bool
        Include the rows marked ``full``.

    Returns
    -------
    list of Case
        Laplace and Gaussian mechanisms at 10^4 (diffprivlib) and 10^6 (the target);
        the exponential mechanism on 1000 x 1000 utilities; randomized response on 10^6
        bits. ``full`` adds 10^5 and 10^7, the exponential mechanism on 100 x 100,
        10^5 x 10 and 10 x 10^5, and randomized response on 10^7.
    """
    data = Data()
    out: list[Case] = []
    for n, large in ((10**4, False), (10**5, True), (10**6, False), (10**7, True)):
        out += _additive(data, n, large)
    for rows, k, large in (
        (100, 100, True),
        (1000, 1000, False),
        (10**5, 10, True),
        (10, 10**5, True),
    ):
        out.append(_exponential(data, rows, k, large))
    out += [_randomized_response(data, 10**6, False), _randomized_response(data, 10**7, True)]
    return select(out, full)
