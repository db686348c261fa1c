"""Regression tests for inputs that used to be accepted and give a wrong or silent result.

Each test pins one refusal: the error type, the parameter named in the message, and that
nothing the caller passed in (an ``out=`` buffer) was modified before the error.
"""

from __future__ import annotations

import numpy as np
import pytest

from ppml_fast import stats
from ppml_fast.clipping import clip_and_sum, clip_per_sample

# ----------------------------------------------------------------------------- clipping


def test_clip_and_sum_rejects_one_buffer_for_two_layers():
    g = np.ones((4, 3))
    buf = np.full(3, 7.0)
    with pytest.raises(ValueError, match=r"out\[0\] and out\[1\] must not share memory"):
        clip_and_sum([g, g], 10.0, out=[buf, buf])
    assert (buf == 7.0).all()


def test_clip_and_sum_rejects_overlapping_slices_of_one_buffer():
    g = [np.ones((4, 3)), np.ones((4, 3))]
    buf = np.full(5, 7.0)
    with pytest.raises(ValueError, match="must not share memory"):
        clip_and_sum(g, 10.0, out=[buf[:3], buf[2:]])
    assert (buf == 7.0).all()


def test_clip_and_sum_rejects_an_out_whose_elements_alias():
    g = np.ones((4, 3))
    base = np.full(1, 7.0)
    out = np.lib.stride_tricks.as_strided(base, shape=(3,), strides=(0,))
    with pytest.raises(ValueError, match="out must not have elements that share memory"):
        clip_and_sum(g, 10.0, out=out)
    assert base[0] == 7.0


def test_clip_per_sample_rejects_aliased_strided_outs():
    # Rows not contiguous inside: these used to go through a scratch buffer and a copy
    # back, which skipped the overlap check.
    g = np.ones((2, 3, 2))
    base = np.full((2, 3, 4), 7.0)
    out = base[:, :, ::2]
    with pytest.raises(ValueError, match="must not share memory"):
        clip_per_sample([g, g], 1.0, out=[out, out])
    zero = np.lib.stride_tricks.as_strided(base, shape=(2, 3, 2), strides=(96, 0, 8))
    with pytest.raises(ValueError, match="out must not have elements that share memory"):
        clip_per_sample(g, 1.0, out=zero)
    assert (base == 7.0).all()


def test_disjoint_interleaved_views_are_still_fine_for_one_out():
    g = np.arange(12.0).reshape(4, 3)
    out = np.empty((4, 6))[:, ::2]
    assert np.allclose(clip_per_sample(g, 100.0, out=out), g)
    assert np.allclose(clip_and_sum(g, 100.0, out=np.empty(6)[::2]), g.sum(axis=0))


# ----------------------------------------------------------------------------- stats


@pytest.mark.parametrize("x", [None, "abc", ["a", "b"], np.array(["1", "2"]), object()])
def test_dp_count_refuses_what_is_not_numeric_data(x):
    with pytest.raises(TypeError, match="x must be"):
        stats.dp_count(x, epsilon=1.0, rng=1)


def test_dp_count_refuses_complex_and_ragged_input():
    with pytest.raises(TypeError, match="x must be a real numeric array"):
        stats.dp_count(np.ones(3, dtype=complex), epsilon=1.0, rng=1)
    with pytest.raises(TypeError, match="x must be"):
        stats.dp_count([[1.0], [1.0, 2.0]], epsilon=1.0, rng=1)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_dp_count_refuses_nonfinite_records_as_dp_mean_does(bad, axis):
    x = np.ones((3, 2))
    x[1, 0] = bad
    with pytest.raises(ValueError, match="x must contain only finite values"):
        stats.dp_count(x, epsilon=1.0, rng=1, axis=axis)
    with pytest.raises(ValueError, match="x must contain only finite values"):
        stats.dp_mean(x, bounds=(0, 1), epsilon=1.0, rng=1, axis=axis)


def test_dp_count_still_counts_numeric_records():
    for x in ([True, False, True], np.arange(3, dtype=np.uint8), np.ones(3, np.float16)):
        assert abs(stats.dp_count(x, epsilon=1e9, rng=1) - 3) < 1e-6
    with pytest.raises(ValueError, match="axis must be None for a 0-d x"):
        stats.dp_count(1.0, epsilon=1.0, rng=1, axis=0)
