"""Per-sample clipping at every ISA level the CPU offers: each level is really in force
(``ppml_fast.get_isa()`` and the extension's own ``_get_isa()``), matches the reference
loop and the bit-exact model of the documented summation order (``test_clipping._model``),
and all levels give the same bits for ``clip_per_sample`` (a new array and in place),
``clip_and_sum``, ``dp_aggregate`` (seeded noise) and ``per_sample_norms``.

Row lengths around the vector widths (1, 3, 7, 8, 9, 31, 33, ...) and the chunk length,
float32 and float64, rows that are not contiguous with each other (reversed, every other
row, Fortran order), several layers (flat and per-layer thresholds) and edge values (rows
whose squares overflow or underflow, scales below the smallest normal number, zero rows,
non-finite rows dropped with ``nonfinite="zero"``). Random data on a fixed seed and on one
fresh seed per run (``FRESH``, printed in the messages; rerun with ``PPML_TEST_SEED``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest

import ppml_fast
from ppml_fast._native import LEVELS
from ppml_fast._native import clipping as kernels
from ppml_fast.clipping import clip_and_sum, clip_per_sample, dp_aggregate, per_sample_norms

from .test_clipping import FRESH, _check_case, _model, _odd_layout, _random_case

pytestmark = pytest.mark.filterwarnings("ignore::ppml_fast.InsecureRandomnessWarning")

ISAS = ppml_fast.available_isas()
SEEDS = [0, FRESH]
CHUNK = kernels.CHUNK
ROW_LENGTHS = [1, 3, 7, 8, 9, 31, 33, 100, 1000, CHUNK - 1, CHUNK + 5, 2 * CHUNK + 129]


@contextlib.contextmanager
def _at(level: str) -> Iterator[None]:
    """Run the block at ``level``, asserting that the clipping kernels really use it."""
    with ppml_fast.isa(level):
        assert ppml_fast.get_isa() == level
        assert kernels._get_isa() == LEVELS.index(level)
        yield


def _layout(kind: int, a: np.ndarray) -> np.ndarray:
    """The same values as ``a`` with rows laid out in one of four ways."""
    if kind == 1:
        return a[::-1].copy()[::-1]  # negative row stride
    if kind == 2:
        big = np.zeros((2 * a.shape[0], *a.shape[1:]), dtype=a.dtype)
        big[::2] = a
        return big[::2]  # every other row
    if kind == 3:
        return np.asfortranarray(a)  # copied by the wrapper
    return a


def _cases(seed: int) -> list[tuple[list[np.ndarray], list[float], bool]]:
    """(layers, thresholds, per_layer): about half of each batch's rows get clipped."""
    rng = np.random.default_rng([seed, 14])
    out = []
    for dtype in (np.float32, np.float64):
        for i, n in enumerate(ROW_LENGTHS):
            b = int(rng.choice([1, 2, 5, 17])) if n > CHUNK else int(rng.integers(1, 40))
            c = float(10 ** rng.uniform(-1, 1))
            norms = c * 10 ** rng.uniform(-1, 1, b)
            norms[rng.random(b) < 0.1] = 0.0
            x = rng.standard_normal((b, n)) * (norms / np.sqrt(n))[:, None]
            a = x.astype(dtype)
            if n % 3 == 0 and n > 3:
                a = a.reshape(b, 3, n // 3)
            out.append(([_layout(i % 4, a)], [c], False))
        for per_layer in (False, True):
            for _ in range(3):
                layers, thresholds = _random_case(rng, dtype, per_layer, max_elems=60_000)
                out.append((layers, thresholds, per_layer))
        # a long row cut into layers that are not multiples of any vector width
        sizes = [CHUNK + 3, 7, 1, 33]
        layers = [rng.standard_normal((3, s)).astype(dtype) for s in sizes]
        out.append(([_odd_layout(rng, a) for a in layers], [2.0], False))
        out.append((layers, [1.0, 0.5, 0.1, 3.0], True))
    return out


def _edge_cases() -> list[tuple[np.ndarray, float]]:
    """(grads, C): overflowing and underflowing squares, tiny scales, zero and bad rows."""
    f32, f64 = np.float32, np.float64
    n = 37
    rows64 = np.stack(
        [
            np.full(n, 1e200),  # squares overflow float64
            np.full(n, 1e-170),  # squares underflow float64
            np.full(n, 1.5e308) * np.resize([1.0, -1.0], n),  # norm beyond DBL_MAX
            np.zeros(n),
            np.full(n, np.nan),  # dropped
            np.linspace(-3, 3, n),
        ]
    ).astype(f64)
    rows32 = np.stack(
        [
            np.full(n, 3.3e38),  # norm beyond float32
            np.full(n, 1e-30),  # tiny, exact in double
            np.zeros(n),
            np.where(np.arange(n) == 5, np.inf, 1.0),  # dropped
            np.linspace(-3, 3, n),
        ]
    ).astype(f32)
    return [(rows64, 1.0), (rows64, 1e-300), (rows32, 1.0), (rows32, 1e-5)]


def _items(x) -> list:
    """A result as a list of arrays (one per layer)."""
    return list(x) if isinstance(x, list) else [x]


def _outputs(layers: list[np.ndarray], thresholds: list[float], per_layer: bool) -> list:
    """Every clipping entry point on one case (arrays, compared bit for bit)."""
    as_list = len(layers) > 1 or per_layer
    grads = layers if as_list else layers[0]
    max_norm = thresholds if per_layer else thresholds[0]
    clipped, norms = clip_per_sample(grads, max_norm, return_norms=True)
    inplace = [np.array(a) for a in layers]
    target = inplace if as_list else inplace[0]
    clip_per_sample(target, max_norm, out=target)
    total, sum_norms = clip_and_sum(grads, max_norm, return_norms=True)
    dp = dp_aggregate(grads, max_norm, 1.1, rng=1234, expected_batch_size=7)
    return [
        *_items(clipped),
        norms,
        *inplace,
        *_items(total),
        sum_norms,
        *_items(dp.gradient),
        dp.norms,
        per_sample_norms(grads),
    ]


def _row_norms(x: np.ndarray) -> np.ndarray:
    """float64 row norms without overflow or underflow (each row scaled by its max)."""
    x = np.asarray(x, dtype=np.float64)
    m = np.abs(x).max(axis=1)
    safe = np.where(m > 0, m, 1.0)
    return m * np.sqrt(((x / safe[:, None]) ** 2).sum(axis=1))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("level", ISAS)
def test_each_level_matches_the_reference_and_the_model(level, seed):
    with _at(level):
        for k, (layers, thresholds, per_layer) in enumerate(_cases(seed)):
            msg = (
                f"level={level} seed={seed} case={k} dtype={layers[0].dtype} "
                f"shapes={[a.shape for a in layers]} C={thresholds}"
            )
            _check_case(layers, thresholds, per_layer, msg)
            # dp_aggregate without noise: the model's sum divided by the batch size
            if not per_layer:
                grads = layers if len(layers) > 1 else layers[0]
                got = dp_aggregate(grads, thresholds[0], 0.0).gradient
                _, m_sum, _ = _model([np.asarray(a) for a in layers], thresholds)
                b = layers[0].dtype.type(layers[0].shape[0])
                for g, m in zip(_items(got), m_sum, strict=True):
                    np.testing.assert_array_equal(g, m / b, err_msg=msg)


@pytest.mark.parametrize("seed", SEEDS)
def test_all_levels_give_the_same_bits(seed):
    before = ppml_fast.get_isa()
    cases = _cases(seed)
    first = None
    for level in ISAS:
        with _at(level):
            results = [_outputs(*case) for case in cases]
            for grads, c in _edge_cases():
                results.append(
                    [
                        *clip_per_sample(grads, c, return_norms=True, nonfinite="zero"),
                        clip_and_sum(grads, c, nonfinite="zero"),
                        dp_aggregate(grads, c, 0.5, rng=99, nonfinite="zero").gradient,
                    ]
                )
        if first is None:
            first = results
            continue
        for k, (xs, ys) in enumerate(zip(first, results, strict=True)):
            for j, (x, y) in enumerate(zip(xs, ys, strict=True)):
                assert x.dtype == y.dtype and x.shape == y.shape, (level, k, j)
                assert x.tobytes() == y.tobytes(), (
                    f"{ISAS[0]} and {level} differ: case {k} item {j} seed={seed}"
                )
    assert ppml_fast.get_isa() == before


@pytest.mark.parametrize("level", ISAS)
def test_edge_values_at_each_level(level):
    """The careful paths (rescaled norms, tiny scales) and dropped rows at each level."""
    with _at(level):
        for grads, c in _edge_cases():
            clipped, norms = clip_per_sample(grads, c, return_norms=True, nonfinite="zero")
            bad = ~np.isfinite(grads).all(axis=1)
            assert np.isnan(norms[bad]).all() and not np.isnan(norms[~bad]).any()
            assert not clipped[bad].any()
            eps = float(np.finfo(grads.dtype).eps)
            assert np.all(_row_norms(clipped[~bad]) <= c * (1 + 8 * eps)), (level, grads.dtype, c)
            total = clip_and_sum(grads, c, nonfinite="zero")
            np.testing.assert_array_equal(total, np.add.reduce(clipped, axis=0, dtype=grads.dtype))
