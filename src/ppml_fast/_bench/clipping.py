"""Benchmark cases for :mod:`ppml_fast.clipping` on a DP-SGD batch of G = 256 examples,
float32, C = 1, σ = 1.1, mean over 256: 10^5 parameters (100 MB) in the quick run, 10^6
(1 GB, where the targets are) with ``full``.

Reference: the plain numpy pipeline (``np.linalg.norm`` → scales → clipped matrix → sum
→ noise → mean; ``ppml_fast.reference.clipping``). Peers, all on the same array:
"numpy tuned" (``einsum`` norms and one ``scale @ G`` matrix-vector product, no
temporary of G's size), "torch" (the fastest torch CPU variant measured here:
``vector_norm`` + ``mv``, which is also Opacus' einsum without the 1e-6; with
``torch.normal`` noise for the DP rows) when torch is installed, and "read probe": one
plain read of G on all threads (``_native.clipping.read_probe``: 64-bit sums with
software prefetch, the fastest read this build knows), so ``vs read probe`` is the
fraction of the machine's read bandwidth, measured in the same run, that a row reaches
(1.0 = the time of one read of G).

The in-place row clips with a threshold that shrinks by 0.1% per call, so that every
call really rescales every row (a second call at the same threshold would find nothing
to do); numpy and torch clip the same way.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _config, clipping
from .._native import clipping as _kernels
from ..reference import clipping as ref
from . import Case, Data, Target, select

B = 256
C, SIGMA = 1.0, 1.1

Call = Callable[[], Any]


def _torch() -> Any:
    try:
        return importlib.import_module("torch")
    except ImportError:
        return None


class _Shrinking:
    """Call ``fn(c)`` with ``c`` 0.1% smaller each time (every row is rescaled)."""

    def __init__(self, fn: Callable[[float], Any]) -> None:
        self.fn, self.c = fn, C

    def __call__(self) -> Any:
        self.c *= 0.999
        return self.fn(self.c)


def _targets(ratio_name: str, peers: dict[str, Call]) -> tuple[Target, list[Target]]:
    """The goals for a row; a peer's goal only when the peer is installed."""
    main = Target("speed-up", 10.0, f">= 10x the plain numpy pipeline ({ratio_name})")
    more = [
        Target("vs numpy tuned", 2.0, ">= 2x hand-tuned numpy"),
        Target("vs torch", 2.0, ">= 2x the best torch variant"),
        Target("vs read probe", 0.7, ">= 70% of the measured read bandwidth"),
        # Clipping needs each row's norm before the row can be scaled into the sum: one
        # pass only where a row stays in cache between the two uses; otherwise the
        # matrix is read twice, and the floor is the time of two reads.
        Target("vs read probe", 1 / 2.2, "time within 1.1x of two reads of the matrix"),
    ]
    return main, [t for t in more if t.metric.removeprefix("vs ") in peers]


def _batch(d: int, full: bool) -> list[Case]:
    """The three rows on a 256 x ``d`` float32 batch (targets on d = 10^6)."""
    data = Data()
    size = f"{B} x {d:.0e} f32"
    pcg = np.random.Generator(np.random.PCG64())
    torch = _torch()

    def g() -> np.ndarray:
        def make() -> np.ndarray:
            x = np.random.default_rng().random((B, d), dtype=np.float32)
            x -= 0.5
            return x

        return data.get("g", make)

    def copy(name: str) -> Any:
        """A private copy of G (a torch tensor for ``"torch"``) for the in-place rows."""

        def make() -> Any:
            x = g().copy()
            return torch.from_numpy(x) if name == "torch" else x

        return data.get(name, make)

    def probe() -> Any:
        return _kernels.read_probe(g(), _config.omp_threads())

    def tuned_dp() -> Any:
        total = ref.numpy_tuned_sum(g(), C)
        total += pcg.standard_normal(d, dtype=np.float32) * np.float32(SIGMA * C)
        total /= np.float32(B)
        return total

    sum_peers: dict[str, Call] = {"numpy tuned": lambda: ref.numpy_tuned_sum(g(), C)}
    dp_peers: dict[str, Call] = {"numpy tuned": tuned_dp}
    inplace_peers: dict[str, Call] = {}
    if torch is not None:

        def torch_sum() -> Any:
            t = torch.from_numpy(g())
            norms = torch.linalg.vector_norm(t, dim=1)
            return torch.mv(t.t(), (C / norms).clamp(max=1.0))

        def torch_dp() -> Any:
            total = torch_sum()
            total += torch.normal(0.0, SIGMA * C, size=(d,))
            return total / B

        def torch_clip(x: Any, c: float) -> Any:
            norms = torch.linalg.vector_norm(x, dim=1)
            return x.mul_((c / norms).clamp(max=1.0)[:, None])

        sum_peers["torch"] = torch_sum
        dp_peers["torch"] = torch_dp
        inplace_peers["torch"] = _Shrinking(lambda c: torch_clip(copy("torch"), c))
    sum_peers["read probe"] = probe
    dp_peers["read probe"] = probe
    inplace_peers["read probe"] = probe

    def targets(ratio_name: str, peers: dict[str, Call]) -> dict[str, Any]:
        if not full:
            return {}
        main, more = _targets(ratio_name, peers)
        return {"target": main, "more_targets": more}

    def is_vector(x: Any) -> bool:
        return np.shape(x) == (d,)

    common: dict[str, Any] = {"reference_name": "numpy", "nbytes": B * d * 4, "full": full}
    return [
        Case(
            "clip_and_sum",
            size,
            native=lambda: clipping.clip_and_sum(g(), C),
            reference=lambda: ref.numpy_plain_sum(g(), C),
            peers=sum_peers,
            data=data,
            check=is_vector,
            **common,
            **targets("norm, scale, multiply, sum", sum_peers),
        ),
        Case(
            "dp_aggregate",
            size,
            native=lambda: clipping.dp_aggregate(g(), C, SIGMA, expected_batch_size=B).gradient,
            reference=lambda: ref.numpy_pipeline(g(), C, SIGMA, pcg, float(B)),
            peers=dp_peers,
            data=data,
            check=is_vector,
            **common,
            **targets("norm, scale, multiply, sum, noise, mean", dp_peers),
        ),
        Case(
            "clip_per_sample in place",
            size,
            native=_Shrinking(
                lambda c: clipping.clip_per_sample(copy("mine"), c, out=copy("mine"))
            ),
            reference=_Shrinking(lambda c: ref.numpy_clip_inplace(copy("numpy"), c)),
            peers=inplace_peers,
            data=data,
            check=lambda x: np.shape(x) == (B, d),
            target=Target("speed-up", 3.0, ">= 3x numpy (norm, then *=)") if full else None,
            **common,
        ),
    ]


def _layers() -> list[Case]:
    """A float64 batch of small rows, 4 layers, with flat clipping (one C over all
    layers) and per-layer clipping (one C per layer): no target, for the record.
    Reference: vectorised numpy (``einsum`` norms, one ``gemv`` per layer); peer: the
    per-example loop of the oracle."""
    data = Data()
    per_layer = [C, 0.5 * C, 2.0 * C, 0.25 * C]

    def layers() -> list[np.ndarray]:
        def make() -> list[np.ndarray]:
            gen = np.random.default_rng()
            return [gen.standard_normal((512, *s)) for s in ((64, 32), (64,), (10, 64), (10,))]

        return list(data.get("layers", make))

    def is_sums(out: Any) -> bool:
        return [np.shape(a) for a in out] == [a.shape[1:] for a in layers()]

    def row(operation: str, c: float | list[float]) -> Case:
        return Case(
            operation,
            "512 x 2762 f64",
            native=lambda: clipping.clip_and_sum(layers(), c),
            reference=lambda: ref.numpy_clip_and_sum_layers(layers(), c),
            reference_name="numpy einsum norms, gemv per layer",
            peers={"per-example loop": lambda: ref.clip_and_sum(layers(), c)},
            nbytes=512 * 2762 * 8,
            data=data,
            check=is_sums,
        )

    return [
        row("clip_and_sum 4 layers", C),
        row("clip_and_sum 4 layers, per-layer C", per_layer),
    ]


def cases(full: bool) -> list[Case]:
    """The clipping rows; ``full`` adds the 256 x 10^6 batch (1 GB) and its targets.

    Parameters
    ----------
    full : bool
        Include the rows marked ``full``.

    Returns
    -------
    list of Case
        clip_and_sum, dp_aggregate and in-place clip_per_sample on 256 x 10^5 float32,
        and clip_and_sum over a 4-layer float64 batch (flat and per-layer thresholds).
    """
    out = [*_batch(10**5, False), *_layers(), *_batch(10**6, True)]
    return select(out, full)
