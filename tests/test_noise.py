"""Continuous samplers: bit-exact against the Python ziggurat, distribution tests, contracts.

Statistical tests use p-value thresholds of 1e-4 with fixed seeds (deterministic: they
pass or fail the same way every run) and 1e-6 with the one fresh seed per run, so that the
suite's ~40 fresh-seed assertions raise a false alarm in fewer than 1 run in 10,000.
"""

import math

import numpy as np
import pytest
import scipy.stats as st

import ppml_fast
from ppml_fast import _noise_fill, noise
from ppml_fast._native import noise as kernels
from ppml_fast.reference import noise as ref
from ppml_fast.rng import BLOCK, default_rng

from .contracts import check_sampler_contract
from .thresholds import FRESH, P_MIN, p_min

SAMPLERS = {"laplace": (noise.laplace, st.laplace), "gaussian": (noise.gaussian, st.norm)}


@pytest.mark.parametrize("name", SAMPLERS)
def test_contract(name):
    f = SAMPLERS[name][0]
    check_sampler_contract(lambda **kw: f(1.5, **kw), [np.float64, np.float32])


@pytest.mark.parametrize("kind", ["laplace", "gaussian", "exponential", "gumbel"])
@pytest.mark.parametrize("seed", [0, 12345, FRESH])
def test_bit_exact_against_python_ziggurat(kind, seed):
    n = 3000  # one block: the kernel reads the parent stream word by word
    k = {
        "laplace": kernels.KIND_LAPLACE,
        "gaussian": kernels.KIND_GAUSSIAN,
        "exponential": kernels.KIND_EXPONENTIAL,
        "gumbel": kernels.KIND_GUMBEL,
    }[kind]
    out = np.empty(n)
    kernels.fill(k, [default_rng(seed).bit_generator], n, 2.5, out, None, 2)
    expected = ref.ziggurat_from_stream(kind, 2.5, n, default_rng(seed).bit_generator)
    assert np.array_equal(out, expected)


def test_tables_match_reference_recurrence():
    tabs = kernels.tables()
    for key, (r, v, f, finv) in {
        "exp": (ref._R_EXP, ref._V_EXP, lambda t: math.exp(-t), lambda y: -math.log(y)),
        "norm": (
            ref._R_NORM,
            ref._V_NORM,
            lambda t: math.exp(-0.5 * t * t),
            lambda y: math.sqrt(-2.0 * math.log(y)),
        ),
    }.items():
        x, heights = ref.ziggurat_tables(r, v, f, finv)
        nx, nf, nk = tabs[key]
        np.testing.assert_array_equal(nx, x)
        np.testing.assert_array_equal(nf, heights)
        # every layer has area v: the ziggurat is a partition of equal-area strips
        areas = x[1:-1] * (heights[2:] - heights[1:-1])
        np.testing.assert_allclose(areas, v, rtol=1e-9)
        assert x[-1] == 0 and np.all(np.diff(x[1:]) < 0) and np.all(nk[:-1] > 0)


def test_loc_is_added_in_the_same_pass_and_may_alias():
    n = BLOCK + 17
    loc = np.linspace(-5, 5, n)
    out = np.empty(n)
    g1, g2 = default_rng(4), default_rng(4)
    _noise_fill.fill(kernels.KIND_LAPLACE, g1, 0.5, out, loc)
    z = noise.laplace(0.5, n, rng=g2)
    np.testing.assert_array_equal(out, loc + z)
    inplace = loc.copy()
    _noise_fill.fill(kernels.KIND_LAPLACE, default_rng(4), 0.5, inplace, inplace)
    np.testing.assert_array_equal(inplace, out)


@pytest.mark.parametrize("name", SAMPLERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_thread_count_does_not_change_seeded_output(name, dtype):
    f = SAMPLERS[name][0]
    n = 3 * BLOCK + 11
    with ppml_fast.num_threads(1):
        one = f(2.0, n, rng=77, dtype=dtype)
    with ppml_fast.num_threads(2):
        two = f(2.0, n, rng=77, dtype=dtype)
    with ppml_fast.num_threads(3):
        three = f(2.0, n, rng=77, dtype=dtype)
    assert np.array_equal(one, two) and np.array_equal(one, three)


@pytest.mark.parametrize("name", SAMPLERS)
def test_reproducible_and_streams_advance(name):
    f = SAMPLERS[name][0]
    assert np.array_equal(f(1.0, 1000, rng=5), f(1.0, 1000, rng=5))
    for n in (10, 2 * BLOCK + 3):  # one block and many blocks
        g = default_rng(5)
        a, b = f(1.0, n, rng=g), f(1.0, n, rng=g)
        assert not np.array_equal(a, b)
    assert not np.array_equal(f(1.0, 64), f(1.0, 64))  # unseeded calls differ


@pytest.mark.parametrize("name", SAMPLERS)
def test_float32_is_rounded_float64(name):
    f = SAMPLERS[name][0]
    a = f(3.0, 5000, rng=8, dtype=np.float64)
    b = f(3.0, 5000, rng=8, dtype=np.float32)
    np.testing.assert_array_equal(a.astype(np.float32), b)


@pytest.mark.parametrize("name", SAMPLERS)
def test_scale_zero_gives_zeros(name):
    f = SAMPLERS[name][0]
    assert not np.any(f(0.0, 100, rng=1))


@pytest.mark.parametrize("name", SAMPLERS)
def test_other_numpy_generators(name):
    f = SAMPLERS[name][0]
    dist = SAMPLERS[name][1]
    pcg = f(1.0, 2 * BLOCK, rng=np.random.default_rng(3))
    assert pcg.shape == (2 * BLOCK,) and np.isfinite(pcg).all()
    sfc = np.random.Generator(np.random.SFC64(3))  # blocks: SFC64 children
    x = f(1.0, 2 * BLOCK, rng=sfc)
    assert np.isfinite(x).all()
    # the values follow the law, on each block (fixed seeds: false alarm 1e-4 per
    # assertion, deterministic), and the two blocks are not one block repeated
    for y in (pcg, x):
        for half in (y[:BLOCK], y[BLOCK:]):
            assert st.kstest(half, dist.cdf).pvalue > P_MIN
        assert not np.array_equal(y[:BLOCK], y[BLOCK:])


@pytest.mark.parametrize("name", SAMPLERS)
@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, -math.inf])
def test_bad_scale_values(name, bad):
    f = SAMPLERS[name][0]
    pname = "scale" if name == "laplace" else "sigma"
    with pytest.raises(ValueError, match=pname):
        f(bad, 3)


@pytest.mark.parametrize("name", SAMPLERS)
@pytest.mark.parametrize("bad", ["1", None, True, 1j, [1.0]])
def test_bad_scale_types(name, bad):
    f = SAMPLERS[name][0]
    pname = "scale" if name == "laplace" else "sigma"
    with pytest.raises(TypeError, match=pname):
        f(bad, 3)


@pytest.mark.parametrize("name", SAMPLERS)
@pytest.mark.parametrize("dtype", [np.int64, np.float16, "complex128", "nonsense"])
def test_bad_dtype(name, dtype):
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        SAMPLERS[name][0](1.0, 3, dtype=dtype)


def test_numpy_scalars_and_0d_arrays_accepted():
    # the values: a numpy scale of 2.0 gives exactly the Python ziggurat's draws at 2.0
    for kind, got in [
        ("laplace", noise.laplace(np.float32(2.0), 3, rng=1)),
        ("gaussian", noise.gaussian(np.array(2.0), 3, rng=1)),
    ]:
        want = ref.ziggurat_from_stream(kind, 2.0, 3, default_rng(1).bit_generator)
        assert got.shape == (3,)
        np.testing.assert_array_equal(got, want, err_msg=kind)


@pytest.mark.parametrize("name", SAMPLERS)
@pytest.mark.parametrize("scale", [0.5, 3.0])
@pytest.mark.parametrize("seed", [1, FRESH])
def test_ks_small(name, scale, seed):
    f, dist = SAMPLERS[name]
    x = f(scale, 20000, rng=seed)
    assert st.kstest(x, dist(scale=scale).cdf).pvalue > p_min(seed)


@pytest.mark.slow
@pytest.mark.parametrize("name", SAMPLERS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", [2, FRESH])
def test_ks_large(name, dtype, seed):
    f, dist = SAMPLERS[name]
    x = f(1.0, 2_000_000, rng=seed, dtype=dtype).astype(np.float64)
    assert st.kstest(x, dist.cdf).pvalue > p_min(seed)


@pytest.mark.slow
@pytest.mark.parametrize("name", SAMPLERS)
def test_tails_chi_square(name):
    # The ziggurat's slow paths (wedges, tail) decide the tails: bin the |x| quantiles
    # finely out to 3e-6 tail mass and compare counts with the exact cdf.
    f, dist = SAMPLERS[name]
    n = 4_000_000
    x = np.abs(f(1.0, n, rng=31))
    qs = np.concatenate([np.linspace(0, 0.99, 100)[:-1], 1 - np.logspace(-2, -5.5, 10)])
    edges = dist.ppf(0.5 + qs / 2)
    counts = np.histogram(x, np.append(edges, np.inf))[0]
    probs = np.diff(np.append(qs, 1.0))
    expected = probs * n
    assert st.chisquare(counts, expected).pvalue > P_MIN


@pytest.mark.slow
def test_exponential_and_gumbel_kernels():
    n = 1_000_000
    e = np.empty(n)
    kernels.fill(kernels.KIND_EXPONENTIAL, [default_rng(6).bit_generator], n, 1.0, e, None, 1)
    assert st.kstest(e, st.expon.cdf).pvalue > P_MIN
    g = np.empty(n)
    kernels.fill(kernels.KIND_GUMBEL, [default_rng(6).bit_generator], n, 1.0, g, None, 1)
    assert st.kstest(g, st.gumbel_r.cdf).pvalue > P_MIN


@pytest.mark.parametrize("name", SAMPLERS)
def test_scales_that_could_overflow_are_rejected(name):
    f = SAMPLERS[name][0]
    assert np.isfinite(f(noise.max_scale(np.dtype(np.float64)), 1000, rng=1)).all()
    with pytest.raises(ValueError, match=r"must be <= 1\.75\d*e\+305 for float64"):
        f(1e308, 3)
    with pytest.raises(ValueError, match="for float32 output"):
        f(1e36, 3, dtype=np.float32)
    assert np.isfinite(f(1e35, 1000, dtype=np.float32, rng=1)).all()


def test_fill_reports_overflow_of_loc_plus_noise():
    out = np.empty(1000, dtype=np.float32)
    loc = np.full(1000, 3.4e38, dtype=np.float32)
    assert not _noise_fill.fill(kernels.KIND_LAPLACE, default_rng(1), 1e37, out, loc)
    assert _noise_fill.fill(kernels.KIND_LAPLACE, default_rng(1), 1.0, out, np.zeros_like(out))
