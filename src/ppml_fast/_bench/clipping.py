"""Benchmark rows for :mod:`ppml_fast.clipping` on the issue's DP-SGD batch: G = 256
examples x 10^6 parameters, float32 (1 GB), C = 1, σ = 1.1, mean over 256.

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
from . import Case, Target

B, D = 256, 1_000_000
C, SIGMA = 1.0, 1.1
SIZE = "256 x 1e6 f32"

Call = Callable[[], Any]


def _torch() -> Any:
    try:
        return importlib.import_module("torch")
    except ImportError:
        return None


def _ref() -> Any:
    return importlib.import_module("ppml_fast.reference.clipping")


class _Shrinking:
    """Call ``fn(c)`` with ``c`` 0.1% smaller each time (every row is rescaled)."""

    def __init__(self, fn: Callable[[float], Any]) -> None:
        self.fn, self.c = fn, C

    def __call__(self) -> Any:
        self.c *= 0.999
        return self.fn(self.c)


def _targets(ratio_name: str, peers: dict[str, Call]) -> tuple[Target, list[Target]]:
    """The issue's goals for a row; a peer's goal only when the peer is installed."""
    main = Target("speed-up", 10.0, f">= 10x the plain numpy pipeline ({ratio_name})")
    more = [
        Target("vs numpy tuned", 2.0, ">= 2x hand-tuned numpy"),
        Target("vs torch", 2.0, ">= 2x the best torch variant"),
        Target("vs read probe", 0.7, ">= 70% of the measured read bandwidth"),
    ]
    return main, [t for t in more if t.metric.removeprefix("vs ") in peers]


class _Data:
    """The arrays, made on first use (``collect`` builds every area's cases up front)."""

    def __init__(self) -> None:
        self._g: np.ndarray | None = None
        self._copies: dict[str, Any] = {}

    @property
    def g(self) -> np.ndarray:
        if self._g is None:
            self._g = np.random.default_rng().random((B, D), dtype=np.float32)
            self._g -= 0.5
        return self._g

    def copy(self, name: str, torch: Any = None) -> Any:
        """A private copy of ``g`` (a torch tensor with ``torch``) for in-place rows."""
        if name not in self._copies:
            c = self.g.copy()
            self._copies[name] = c if torch is None else torch.from_numpy(c)
        return self._copies[name]


def cases(full: bool) -> list[Case]:
    ref = _ref()
    data = _Data()
    nthreads = _config.get_num_threads()
    probe: Call = lambda: _kernels.read_probe(data.g, nthreads)  # noqa: E731
    torch = _torch()
    pcg = np.random.Generator(np.random.PCG64())

    def tuned_dp() -> Any:
        total = ref.numpy_tuned_sum(data.g, C)
        total += pcg.standard_normal(D, dtype=np.float32) * np.float32(SIGMA * C)
        total /= np.float32(B)
        return total

    sum_peers: dict[str, Call] = {"numpy tuned": lambda: ref.numpy_tuned_sum(data.g, C)}
    dp_peers: dict[str, Call] = {"numpy tuned": tuned_dp}
    inplace_peers: dict[str, Call] = {}
    if torch is not None:

        def torch_sum() -> Any:
            t = torch.from_numpy(data.g)
            norms = torch.linalg.vector_norm(t, dim=1)
            return torch.mv(t.t(), (C / norms).clamp(max=1.0))

        def torch_dp() -> Any:
            total = torch_sum()
            total += torch.normal(0.0, SIGMA * C, size=(D,))
            return total / B

        def torch_clip(x: Any, c: float) -> Any:
            norms = torch.linalg.vector_norm(x, dim=1)
            return x.mul_((c / norms).clamp(max=1.0)[:, None])

        sum_peers["torch"] = torch_sum
        dp_peers["torch"] = torch_dp
        inplace_peers["torch"] = _Shrinking(lambda c: torch_clip(data.copy("torch", torch), c))
    sum_peers["read probe"] = probe
    dp_peers["read probe"] = probe
    inplace_peers["read probe"] = probe

    nbytes = B * D * 4
    main, more = _targets("norm, scale, multiply, sum", sum_peers)
    out = [
        Case(
            "clip_and_sum",
            SIZE,
            native=lambda: clipping.clip_and_sum(data.g, C),
            reference=lambda: ref.numpy_plain_sum(data.g, C),
            reference_name="numpy",
            peers=sum_peers,
            nbytes=nbytes,
            target=main,
            more_targets=more,
        )
    ]
    main, more = _targets("norm, scale, multiply, sum, noise, mean", dp_peers)
    out.append(
        Case(
            "dp_aggregate",
            SIZE,
            native=lambda: clipping.dp_aggregate(data.g, C, SIGMA, expected_batch_size=B),
            reference=lambda: ref.numpy_pipeline(data.g, C, SIGMA, pcg, float(B)),
            reference_name="numpy",
            peers=dp_peers,
            nbytes=nbytes,
            target=main,
            more_targets=more,
        )
    )
    out.append(
        Case(
            "clip_per_sample in place",
            SIZE,
            native=_Shrinking(
                lambda c: clipping.clip_per_sample(data.copy("mine"), c, out=data.copy("mine"))
            ),
            reference=_Shrinking(lambda c: ref.numpy_clip_inplace(data.copy("numpy"), c)),
            reference_name="numpy",
            peers=inplace_peers,
            nbytes=nbytes,
            target=Target("speed-up", 3.0, ">= 3x numpy (norm, then *=)"),
        )
    )
    # a float64 batch of small rows, 4 layers, flat clipping: no target, for the record
    gen = np.random.default_rng()
    layers = [gen.standard_normal((512, *s)) for s in ((64, 32), (64,), (10, 64), (10,))]
    out.append(
        Case(
            "clip_and_sum 4 layers",
            "512 x 2762 f64",
            native=lambda: clipping.clip_and_sum(layers, C),
            reference=lambda: ref.clip_and_sum(layers, C),
            reference_name="per-example loop",
            nbytes=sum(x.nbytes for x in layers),
        )
    )
    return out
