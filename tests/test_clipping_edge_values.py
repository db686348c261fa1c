"""Per-sample clipping at the edges of floating point and memory layout: clipped norms stay
within C when the scale is subnormal in the data type, tiny or huge C keeps the noise's
sensitivity right, in-place clipping of rows that share memory, non-native byte order,
and the reference oracle at float64 extremes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ppml_fast.clipping import clip_and_sum, clip_per_sample, dp_aggregate, per_sample_norms
from ppml_fast.reference import clipping as ref

pytestmark = pytest.mark.filterwarnings("ignore::ppml_fast.InsecureRandomnessWarning")


def _norm64(x: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(x, dtype=np.float64).reshape(-1)))


# (dtype, row, C): rows whose scale C / ||g|| is below the dtype's smallest normal number,
# so the scale rounded to the dtype (a subnormal) is off by up to 2x.
SUBNORMAL_SCALE_CASES = [
    pytest.param(np.float32, np.full(1800, 3.3e38, np.float32), 1e-5, id="float32"),
    pytest.param(np.float64, np.array([1.5e308, 0.0, 0.0]), 1.5e308 * 0.75 * 5e-324, id="float64"),
]


@pytest.mark.parametrize(("dtype", "row", "c"), SUBNORMAL_SCALE_CASES)
def test_clipped_norm_stays_within_c_when_the_scale_is_subnormal(dtype, row, c):
    g = np.stack([row, row]).astype(dtype)
    bound = c * (1 + 8 * float(np.finfo(dtype).eps))
    clipped = clip_per_sample(g, c)
    for k in range(g.shape[0]):
        assert _norm64(clipped[k]) <= bound
    # the fused sum of one row is that row clipped: same bound
    assert _norm64(clip_and_sum(g[:1], c)) <= bound


@pytest.mark.parametrize("max_norm", [1e-170, [1e-170, 1e-170]], ids=["flat", "per_layer"])
def test_dp_aggregate_adds_noise_for_a_tiny_max_norm(max_norm):
    g = np.random.default_rng(0).standard_normal((8, 5)) * 1e-160
    grads = [g, g.copy()] if isinstance(max_norm, list) else g
    cs = max_norm if isinstance(max_norm, list) else [max_norm]
    expected = 1.0 * math.hypot(*cs)
    res = dp_aggregate(grads, max_norm, 1.0, rng=0, reduction="sum")
    assert res.noise_std == pytest.approx(expected, rel=1e-12, abs=0)
    assert res.max_norm == pytest.approx(math.hypot(*cs), rel=1e-12, abs=0)
    clean = clip_and_sum(grads, max_norm)
    for noisy, s in zip(
        res.gradient if isinstance(grads, list) else [res.gradient],
        clean if isinstance(grads, list) else [clean],
        strict=True,
    ):
        assert not np.array_equal(noisy, s)


def test_dp_aggregate_large_float64_max_norm_is_not_infinite():
    g = np.random.default_rng(1).standard_normal((4, 3)) * 1e150
    res = dp_aggregate(g, 1e160, 1.0, rng=0, reduction="sum")
    assert res.max_norm == 1e160
    assert res.noise_std == 1e160


def test_in_place_on_rows_sharing_memory():
    base = np.array([3.0, 4.0])
    g = np.lib.stride_tricks.as_strided(base, shape=(4, 2), strides=(0, 8))
    assert g.flags.writeable
    try:
        res = clip_per_sample(g, 1.0, out=g)
    except ValueError:
        return  # rejecting such an out is an acceptable fix
    np.testing.assert_allclose(res, np.tile([0.6, 0.8], (4, 1)), rtol=1e-12)


@pytest.mark.parametrize("dtype", ["<f4", "<f8"])
def test_non_native_byte_order_is_accepted(dtype):
    g = np.random.default_rng(2).standard_normal((6, 5)).astype(dtype) * 2
    swapped = g.astype(np.dtype(dtype).newbyteorder(">"))
    np.testing.assert_array_equal(per_sample_norms(swapped), per_sample_norms(g))
    np.testing.assert_array_equal(clip_per_sample(swapped, 1.0), clip_per_sample(g, 1.0))
    np.testing.assert_array_equal(clip_and_sum(swapped, 1.0), clip_and_sum(g, 1.0))


def test_reference_oracle_handles_extreme_float64_rows():
    big = np.array([[3e200, 4e200]])
    tiny = np.array([[3e-170, 4e-170]])
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        big_norm = ref.per_sample_norms(big)
        big_clip = ref.clip_per_sample(big, 1.0)
        tiny_clip = ref.clip_per_sample(tiny, 1e-170)
    np.testing.assert_allclose(big_norm, [5e200], rtol=1e-15)
    np.testing.assert_allclose(big_clip, [[0.6, 0.8]], rtol=1e-15)
    np.testing.assert_allclose(tiny_clip, [[0.6e-170, 0.8e-170]], rtol=1e-15)


def test_out_entries_sharing_memory_are_rejected():
    g = np.random.default_rng(3).standard_normal((4, 3))
    o = np.empty((4, 3))
    with pytest.raises(ValueError, match="must not share memory"):
        clip_per_sample([g, g.copy()], 1.0, out=[o, o])


def test_out_object_is_returned():
    g = [np.ones((3, 2)), np.ones((3, 4))]
    out = [np.empty((3, 2)), np.empty((3, 4))]
    assert clip_per_sample(g, 1.0, out=out) is out
    sums = [np.empty(2), np.empty(4)]
    assert clip_and_sum(g, 1.0, out=sums) is sums


def test_dp_aggregate_without_noise_rejects_an_overflowed_sum():
    g = np.full((4, 1), 3e38, dtype=np.float32)
    with pytest.raises(ValueError, match="overflowed"):
        dp_aggregate(g, 3e38, 0.0, reduction="sum")


def test_tiny_scale_sum_and_clip_agree_with_exact_products():
    """A float32 row of 3.3e38 values clipped to C = 1e-5: the scale (~1e-46) is below
    float32's smallest normal; each product must be the exactly rounded x * C / ||g||."""
    g = np.full((2, 1800), 3.3e38, dtype=np.float32)
    c = 1e-5
    clipped = clip_per_sample(g, c)
    want = ref.clip_per_sample(g, c)
    np.testing.assert_array_equal(clipped, want)
    assert math.isclose(_norm64(clipped[0]), c, rel_tol=1e-6)
