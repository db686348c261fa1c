"""Benchmark cases for :mod:`ppml_fast.split`: the NoPeek distance correlation, DP on the
cut layer, and one SplitFed round.

Distance correlation.

Inputs like a split-learning client's: ``x`` a batch of B images (784 values in [0, 1)),
``z`` its cut-layer activations (``tanh`` of a random projection to 512 values), float64.
Reference: the numpy version in ``ppml_fast.reference.split`` (Gram matrices ``x xᵀ``
through BLAS, norms from their diagonals, element-wise double centring; the gradient as
one more matrix product). Peer: the ``dcor`` package's ``distance_correlation`` when it is
installed (its distances by differences, no gradient).

Cut-layer DP: :func:`ppml_fast.split.cut_layer_dp` (the clipping kernel, then the noise
fill into ``out``) against the best plain numpy (norms by ``einsum``, one scaled copy,
PCG64 normals added in place) on float32 activations.

SplitFed round: one round of :func:`ppml_fast.simulation.run_split_simulation`
(``split="splitfed"``, the digits MLP cut after its first layer, DP on the cut layer) of
100 clients on the default thread pool, against the same round on one worker thread; the
items are clients.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from .. import split as _split
from ..reference import split as ref
from ..split import nopeek
from . import Case, Data, Target, select

DX, DZ = 784, 512
#: The cut-layer DP rows' clipping norm and noise multiplier.
CUT_C, CUT_SIGMA = 1.0, 1.0

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


# ---------------------------------------------------------------- cut-layer DP rows


def _cut_layer_dp(shape: tuple[int, int], full: bool) -> Case:
    """Clip each example's activations to C and add N(0, (σC)²): native vs numpy."""
    data = Data()
    b, d = shape
    pcg = np.random.Generator(np.random.PCG64())

    def z() -> np.ndarray:
        return data.get("z", lambda: np.random.default_rng().standard_normal(shape, np.float32))

    def out() -> np.ndarray:
        return data.get("out", lambda: np.empty(shape, np.float32))

    def native() -> Any:
        return _split.cut_layer_dp(z(), CUT_C, CUT_SIGMA, rng=pcg, out=out()).values

    def numpy_dp() -> np.ndarray:
        # the best plain numpy: norms by einsum, one scaled copy, noise added in place
        a = z()
        norms = np.sqrt(np.einsum("ij,ij->i", a, a))
        scale = np.minimum(np.float32(1.0), np.float32(CUT_C) / np.maximum(norms, 1e-30))
        res = a * scale[:, None]
        res += pcg.standard_normal(shape, dtype=np.float32) * np.float32(CUT_SIGMA * CUT_C)
        return res

    def check(res: Any) -> bool:
        r = np.asarray(res)
        return r.shape == shape and bool(np.isfinite(r).all())

    return Case(
        "cut-layer DP (clip + noise)",
        f"{b} x {d} f32",
        native=native,
        reference=numpy_dp,
        items=b * d,
        full=full,
        data=data,
        check=check,
    )


# -------------------------------------------------------------------- SplitFed round


def _splitfed_round(n_clients: int, full: bool) -> Case | None:
    """One SplitFed round of ``n_clients`` clients: the thread pool vs one thread."""
    if importlib.util.find_spec("sklearn") is None:
        return None  # the bundled digits data ships with scikit-learn
    from .. import simulation as sim  # an application: imported only for this row

    data = Data()
    pools: dict[int, ThreadPoolExecutor] = {}

    def pool(workers: int) -> ThreadPoolExecutor:
        if workers not in pools:
            pools[workers] = ThreadPoolExecutor(workers)
            atexit.register(pools[workers].shutdown)
        return pools[workers]

    def run(workers: int | None) -> Call:
        def call() -> Any:
            return sim.run_split_simulation(
                data.get("digits", lambda: sim.load_dataset("digits")),
                split="splitfed",
                clients=n_clients,
                rounds=1,
                activation_noise=1.0,
                seed=0,
                executor=None if workers is None else pool(workers),
                progress=False,
            )

        return call

    return Case(
        "SplitFed round (cut-layer DP), threads vs 1 thread",
        f"digits MLP, {n_clients} clients",
        native=run(None),
        reference=run(1),
        reference_name="1 thread",
        items=n_clients,
        full=full,
        data=data,
        check=lambda result: len(result.history) == 1,
    )


def cases(full: bool) -> list[Case]:
    """The distance-correlation, cut-layer DP and SplitFed rows.

    Parameters
    ----------
    full : bool
        Include the rows marked ``full``.

    Returns
    -------
    list of Case
        Distance correlation, value and value plus gradient, at B = 64 and 256 (``full``:
        1024), 784 -> 512 float64; cut-layer DP on 256 x 512 and 256 x 16384 float32
        (``full``: 256 x 262144); one SplitFed round of 100 clients (with scikit-learn).
    """
    out = [*_rows(64, False), *_rows(256, False), *_rows(1024, True)]
    out += [
        _cut_layer_dp((256, 512), False),
        _cut_layer_dp((256, 16384), False),
        _cut_layer_dp((256, 262144), True),
    ]
    fed = _splitfed_round(100, False)
    if fed is not None:
        out.append(fed)
    return select(out, full)
