"""Benchmark cases for :mod:`ppml_fast.split`: the NoPeek distance correlation.

Inputs like a split-learning client's: ``x`` a batch of B images (784 values in [0, 1)),
``z`` its cut-layer activations (``tanh`` of a random projection to 512 values), float64.
Reference: the numpy version in ``ppml_fast.reference.split`` (Gram matrices ``x xᵀ``
through BLAS, norms from their diagonals, element-wise double centring; the gradient as
one more matrix product). Peer: the ``dcor`` package's ``distance_correlation`` when it is
installed (its distances by differences, no gradient).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from ..reference import split as ref
from ..split import nopeek
from . import Case, Data, Target, select

DX, DZ = 784, 512

Call = Callable[[], Any]


def _dcor() -> Any:
    try:
        return importlib.import_module("dcor")
    except ImportError:
        return None


def _rows(b: int, full: bool) -> list[Case]:
    data = Data()
    size = f"B={b}, {DX} -> {DZ} f64"

    def xz() -> tuple[np.ndarray, np.ndarray]:
        def make() -> tuple[np.ndarray, np.ndarray]:
            g = np.random.default_rng(b)
            x = g.random((b, DX))
            z = np.tanh(x @ (g.standard_normal((DX, DZ)) / np.sqrt(DX)))
            return x, z

        return data.get("xz", make)  # type: ignore[no-any-return]

    def out() -> np.ndarray:
        return data.get("out", lambda: np.empty((b, DZ)))  # type: ignore[no-any-return]

    dcor = _dcor()
    peers: dict[str, Call] = {}
    if dcor is not None:
        peers["dcor"] = lambda: dcor.distance_correlation(*xz())

    def is_dcor(v: Any) -> bool:
        return isinstance(v, float) and 0.0 <= v <= 1.0

    def is_pair(r: Any) -> bool:
        return is_dcor(r[0]) and np.shape(r[1]) == (b, DZ)

    targets: dict[str, Any] = {}
    if b == 256:
        targets = {
            "target": Target("vs dcor", 150.0, ">= 150x dcor") if dcor is not None else None,
            "more_targets": [Target("speed-up", 3.0, ">= 3x the numpy Gram-matrix version")],
        }
    return [
        Case(
            "distance correlation",
            size,
            native=lambda: nopeek.distance_correlation(*xz()),
            reference=lambda: ref.distance_correlation(*xz()),
            reference_name="numpy Gram matrices",
            peers=peers,
            items=b * b,
            full=full,
            data=data,
            check=is_dcor,
            **targets,
        ),
        Case(
            "distance correlation + gradient",
            size,
            native=lambda: nopeek.distance_correlation_gradient(*xz(), out=out()),
            reference=lambda: ref.distance_correlation_gradient(*xz()),
            reference_name="numpy Gram matrices",
            items=b * b,
            full=full,
            data=data,
            check=is_pair,
        ),
    ]


def cases(full: bool) -> list[Case]:
    """The distance-correlation rows; ``full`` adds B = 1024.

    Parameters
    ----------
    full : bool
        Include the rows marked ``full``.

    Returns
    -------
    list of Case
        Value, and value plus gradient, at B = 64 and 256 (and 1024), 784 -> 512 float64.
    """
    out = [*_rows(64, False), *_rows(256, False), *_rows(1024, True)]
    return select(out, full)
