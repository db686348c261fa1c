"""Defences of split learning: cut-layer DP, gradient perturbation and RRWithPrior.

- :func:`cut_layer_dp` / :func:`perturb_gradients`: the clip against the numpy oracle
  (``reference.split.clip_examples``), the norm bound, rows within the bound copied bit
  for bit, per-row semantics, the noise's distribution (KS), seeded reproducibility,
  thread-count independence, dtypes, torch tensors, ``out=`` (in place, strided,
  overlapping), NaN/inf, bad parameters (``out`` untouched on every error), and the
  accounting against dp_accounting's and Opacus' RDP accountants.
- :func:`rr_with_prior`: its exact output distribution against a per-example loop
  oracle, the ε-DP likelihood-ratio bound, k* on hand-worked examples, draws against the
  exact probabilities (chi-square), bad input.

Random cases run on fixed seeds and one fresh seed per run (``thresholds.FRESH``,
printed in the assertion messages). The statistical tests use ``p_min(seed)``: p > 1e-4
for fixed seeds (deterministic), p > 1e-6 for the fresh one (false alarm < 1e-6 per
assertion).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.stats as st

import ppml_fast
from ppml_fast.accounting import RDPAccountant
from ppml_fast.accounting.rdp import DEFAULT_ALPHAS
from ppml_fast.reference import split as ref
from ppml_fast.rng import _reset_dp_warning
from ppml_fast.split.defences import (
    CutLayerDP,
    cut_layer_dp,
    perturb_gradients,
    rr_with_prior,
    rr_with_prior_probabilities,
)

from .thresholds import FRESH, p_min

pytestmark = pytest.mark.filterwarnings("ignore::ppml_fast.InsecureRandomnessWarning")

SEEDS = [0, 20261207, FRESH]
DTYPES = [np.float32, np.float64]
RTOL = {np.dtype(np.float32): 4e-7, np.dtype(np.float64): 1e-15}


def _data(seed, shape, dtype, spread=True):
    """Rows with norms on both sides of C = 1 (a log-uniform scale per example)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if spread:
        n = math.prod(shape[1:]) or 1
        scale = 10 ** rng.uniform(-2, 2, size=(shape[0],) + (1,) * (len(shape) - 1))
        x *= scale / math.sqrt(n)
    return x.astype(dtype)


# ----------------------------------------------------------------------- clipping


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("shape", "mode"),
    [((50, 7), "flat"), ((40, 3, 5), "flat"), ((40, 3, 5), "per_row"), ((30, 4, 2, 3), "per_row")],
)
def test_clip_matches_reference(seed, dtype, shape, mode):
    x = _data(seed, shape, dtype)
    before = x.copy()
    res = cut_layer_dp(x, 1.0, 0.0, mode=mode, rng=seed)
    want = ref.clip_examples(x, 1.0, mode)
    assert res.values.dtype == x.dtype and res.values.shape == x.shape
    np.testing.assert_allclose(
        res.values, want, rtol=RTOL[np.dtype(dtype)], atol=0, err_msg=f"{seed}"
    )
    norms = np.linalg.norm(x.reshape(len(x), -1).astype(np.float64), axis=1)
    np.testing.assert_allclose(res.norms, norms, rtol=1e-12)
    assert res.norms.dtype == np.float64 and res.norms.shape == (shape[0],)
    assert np.array_equal(x, before)  # the input is not touched


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["flat", "per_row"])
def test_clipped_norms_at_most_c_and_small_rows_unchanged_bit_for_bit(dtype, mode):
    x = _data(FRESH, (200, 4, 6), dtype)
    c = 0.7
    r = 4 if mode == "per_row" else 1
    bound = c / math.sqrt(r)
    row_norms = np.linalg.norm(x.reshape(200 * r, -1).astype(np.float64), axis=1)
    small = row_norms <= bound * (1 - 1e-6)
    assert small.any() and (~small).any()
    for in_place in (False, True):
        src = x.copy()
        res = cut_layer_dp(src, c, 0.0, mode=mode, out=src if in_place else None)
        v = np.asarray(res.values).reshape(200 * r, -1)
        got = np.linalg.norm(v.astype(np.float64), axis=1)
        eps = float(np.finfo(dtype).eps)
        assert np.all(got <= bound * (1 + 4 * eps)), f"seed={FRESH} in_place={in_place}"
        ex = np.linalg.norm(np.asarray(res.values).reshape(200, -1).astype(np.float64), axis=1)
        assert np.all(ex <= c * (1 + 4 * eps))
        assert np.array_equal(v[small], x.reshape(200 * r, -1)[small]), f"seed={FRESH}"
        # a clipped row keeps its direction and ends on the sphere of radius bound
        np.testing.assert_allclose(got[~small], bound, rtol=8 * eps)


def test_per_row_on_2d_equals_flat_and_per_row_differs_on_3d():
    x = _data(3, (30, 12), np.float64)
    a = cut_layer_dp(x, 0.5, 0.0, mode="flat").values
    b = cut_layer_dp(x, 0.5, 0.0, mode="per_row").values
    assert np.array_equal(a, b)
    y = _data(4, (30, 3, 4), np.float64)
    flat = cut_layer_dp(y, 0.5, 0.0, mode="flat").values
    rows = cut_layer_dp(y, 0.5, 0.0, mode="per_row").values
    assert not np.array_equal(flat, rows)
    # per_row: every row within C/sqrt(R), a row-wise bound flat does not give
    rn = np.linalg.norm(rows, axis=2)
    assert np.all(rn <= 0.5 / math.sqrt(3) * (1 + 1e-15))
    assert np.any(np.linalg.norm(flat, axis=2) > 0.5 / math.sqrt(3) * 1.01)
    # the per-example norms reported are those of the whole example either way
    res = cut_layer_dp(y, 0.5, 0.0, mode="per_row")
    np.testing.assert_allclose(res.norms, np.linalg.norm(y.reshape(30, -1), axis=1), rtol=1e-13)


def test_per_row_known_answer():
    # one example, R = 4 rows of norm 1, 2, 0.1, 0 with C = 2: each row capped at C/2 = 1
    x = np.zeros((1, 4, 2))
    x[0, 0] = [0.6, 0.8]
    x[0, 1] = [0.0, 2.0]
    x[0, 2] = [0.1, 0.0]
    res = cut_layer_dp(x, 2.0, 0.0, mode="per_row")
    want = np.array([[[0.6, 0.8], [0.0, 1.0], [0.1, 0.0], [0.0, 0.0]]])
    np.testing.assert_array_equal(res.values, want)
    assert res.norms[0] == pytest.approx(math.sqrt(1 + 4 + 0.01))


# -------------------------------------------------------------------------- noise


def test_noise_known_std_and_fields():
    x = _data(1, (8, 5), np.float64)
    res = cut_layer_dp(x, 2.0, 1.5, sample_rate=0.25, rng=7)
    assert isinstance(res, CutLayerDP)
    assert res.noise_multiplier == 1.5 and res.max_norm == 2.0 and res.noise_std == 3.0
    assert res.sample_rate == 0.25 and res.adjacency == "add_remove"
    assert res.accounting == {"noise_multiplier": 1.5, "sample_rate": 0.25}


@pytest.mark.parametrize("seed", [11, FRESH])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["flat", "per_row"])
def test_noise_is_gaussian_with_std_sigma_c(seed, dtype, mode):
    """(noisy - clipped) / (σC) against N(0, 1) on 4·10^5 entries: KS, and Σz² against
    χ²(n). Two assertions at p_min(seed) (1e-6 per assertion for the fresh seed)."""
    x = _data(seed + 1, (500, 8, 100), dtype)
    c, sigma = 0.8, 1.7
    clipped = cut_layer_dp(x, c, 0.0, mode=mode).values
    noisy = cut_layer_dp(x, c, sigma, mode=mode, rng=seed).values
    z = (noisy.astype(np.float64) - clipped.astype(np.float64)).reshape(-1) / (sigma * c)
    p = st.kstest(z, "norm").pvalue
    assert p > p_min(seed), f"KS p={p:.2e} seed={seed}"
    n = z.size
    chi = float(np.sum(z * z))
    p_var = 2 * min(st.chi2.cdf(chi, n), st.chi2.sf(chi, n))
    assert p_var > p_min(seed), f"variance ratio {chi / n:.5f} p={p_var:.2e} seed={seed}"


def test_seeded_reproducible_unseeded_differs():
    x = _data(2, (64, 32), np.float32)
    a = cut_layer_dp(x, 1.0, 1.0, rng=5).values
    b = cut_layer_dp(x, 1.0, 1.0, rng=5).values
    c = cut_layer_dp(x, 1.0, 1.0, rng=6).values
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    u = cut_layer_dp(x, 1.0, 1.0).values
    v = cut_layer_dp(x, 1.0, 1.0).values
    assert not np.array_equal(u, v)


def test_seed_warns_once_and_secure_default_does_not():
    _reset_dp_warning()
    x = np.ones((3, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ppml_fast.InsecureRandomnessWarning)
        cut_layer_dp(x, 1.0, 1.0)
        rr_with_prior(np.array([0, 1]), 1.0, n_classes=2)
    with pytest.warns(ppml_fast.InsecureRandomnessWarning):
        cut_layer_dp(x, 1.0, 1.0, rng=1)
    _reset_dp_warning()
    with pytest.warns(ppml_fast.InsecureRandomnessWarning):
        rr_with_prior(np.array([0, 1]), 1.0, n_classes=2, rng=1)


@pytest.mark.parametrize("mode", ["flat", "per_row"])
def test_same_result_on_1_and_2_threads(mode):
    # 2·10^6 entries: many noise blocks and clipping chunks, split over the threads
    x = _data(FRESH, (400, 5, 1000), np.float64)
    out = []
    for nt in (1, 2):
        with ppml_fast.num_threads(nt):
            out.append(cut_layer_dp(x, 0.5, 0.9, mode=mode, rng=FRESH % 1000).values)
    assert np.array_equal(out[0], out[1]), f"seed={FRESH}"


# ------------------------------------------------------------- layouts, out=, torch


@pytest.mark.parametrize("dtype", DTYPES)
def test_noncontiguous_inputs_equal_contiguous(dtype):
    base = _data(FRESH, (60, 20, 6), dtype)
    views = [
        base[::2],
        base[:, ::2],
        base[::-1],
        base[:, :, ::-1],
        np.asfortranarray(base),
        base.transpose(0, 2, 1),
    ]
    for k, v in enumerate(views):
        for mode in ("flat", "per_row"):
            want = cut_layer_dp(np.ascontiguousarray(v), 1.0, 0.6, mode=mode, rng=3).values
            got = cut_layer_dp(v, 1.0, 0.6, mode=mode, rng=3).values
            assert np.array_equal(got, want), f"view {k} mode={mode} seed={FRESH}"
            assert got.flags.c_contiguous


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["flat", "per_row"])
def test_out_in_place_strided_and_overlapping(dtype, mode):
    x = _data(FRESH, (40, 3, 8), dtype)
    want = cut_layer_dp(x, 1.0, 0.5, mode=mode, rng=9).values
    # a fresh out
    out = np.empty_like(x)
    res = cut_layer_dp(x, 1.0, 0.5, mode=mode, rng=9, out=out)
    assert res.values is out and np.array_equal(out, want)
    # in place
    y = x.copy()
    res = cut_layer_dp(y, 1.0, 0.5, mode=mode, rng=9, out=y)
    assert res.values is y and np.array_equal(y, want)
    # a strided out
    big = np.zeros((40, 3, 16), dtype=dtype)
    res = cut_layer_dp(x, 1.0, 0.5, mode=mode, rng=9, out=big[:, :, ::2])
    assert np.array_equal(big[:, :, ::2], want) and not big[:, :, 1::2].any()
    # out overlapping the input shifted by one example
    buf = np.zeros((41, 3, 8), dtype=dtype)
    buf[:40] = x
    cut_layer_dp(buf[:40], 1.0, 0.5, mode=mode, rng=9, out=buf[1:])
    assert np.array_equal(buf[1:], want)
    # in place on a strided view of a bigger array
    big2 = np.zeros((80, 3, 8), dtype=dtype)
    big2[::2] = x
    cut_layer_dp(big2[::2], 1.0, 0.5, mode=mode, rng=9, out=big2[::2])
    assert np.array_equal(big2[::2], want) and not big2[1::2].any()


def test_torch_tensors_zero_copy_in_and_in_place():
    torch = pytest.importorskip("torch")
    for tdtype, ndtype in ((torch.float32, np.float32), (torch.float64, np.float64)):
        t = torch.randn(16, 4, 5, dtype=tdtype)
        x = t.numpy().copy()
        want = cut_layer_dp(x, 1.0, 0.3, mode="per_row", rng=4).values
        res = cut_layer_dp(t, 1.0, 0.3, mode="per_row", rng=4)
        assert isinstance(res.values, np.ndarray) and res.values.dtype == ndtype
        assert np.array_equal(res.values, want)
        assert np.array_equal(t.numpy(), x)  # the tensor itself is not modified
        res = cut_layer_dp(t, 1.0, 0.3, mode="per_row", rng=4, out=t)  # in place
        assert res.values is t
        assert np.array_equal(t.numpy(), want)
    # a tensor needing grad is refused with the parameter's name
    g = torch.ones(3, 2, requires_grad=True)
    with pytest.raises(TypeError, match="activations"):
        cut_layer_dp(g, 1.0, 1.0)


def test_empty_batch_and_zero_width():
    res = cut_layer_dp(np.zeros((0, 5)), 1.0, 1.0, sample_rate=0.1)
    assert res.values.shape == (0, 5) and res.norms.shape == (0,)
    res = cut_layer_dp(np.zeros((3, 0)), 1.0, 1.0)
    assert res.values.shape == (3, 0) and np.array_equal(res.norms, np.zeros(3))
    res = cut_layer_dp(np.zeros((2, 0, 4)), 1.0, 1.0, mode="per_row")
    assert res.values.shape == (2, 0, 4) and res.norms.shape == (2,)
    # 1-d: one number per example
    res = cut_layer_dp(np.array([3.0, -0.5, 0.0]), 1.0, 0.0)
    np.testing.assert_array_equal(res.values, [1.0, -0.5, 0.0])


# --------------------------------------------------------------------- non-finite


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("mode", ["flat", "per_row"])
def test_nonfinite_raises_and_leaves_out_untouched(bad, mode):
    x = _data(5, (10, 3, 4), np.float64)
    x[6, 2, 1] = bad
    sentinel = np.full_like(x, 7.0)
    with pytest.raises(ValueError, match=r"activations must contain only finite.*example 6"):
        cut_layer_dp(x, 1.0, 1.0, mode=mode, out=sentinel)
    assert np.all(sentinel == 7.0)
    y = x.copy()
    with pytest.raises(ValueError, match="example 6"):
        cut_layer_dp(y, 1.0, 1.0, mode=mode, out=y)
    assert np.array_equal(y, x, equal_nan=True)
    with pytest.raises(ValueError, match="gradients must contain only finite"):
        perturb_gradients(x, 1.0, 1.0, mode=mode)


@pytest.mark.parametrize("mode", ["flat", "per_row"])
def test_nonfinite_zero_drops_the_whole_example(mode):
    x = _data(6, (10, 3, 4), np.float64)
    x[6, 2, 1] = np.nan
    res = cut_layer_dp(x, 1.0, 0.0, mode=mode, nonfinite="zero")
    assert np.all(res.values[6] == 0)
    assert np.isnan(res.norms[6]) and np.isfinite(np.delete(res.norms, 6)).all()
    keep = np.delete(np.arange(10), 6)
    want = cut_layer_dp(x[keep], 1.0, 0.0, mode=mode).values
    assert np.array_equal(res.values[keep], want)


# -------------------------------------------------------------------- bad input


GOOD = np.ones((4, 3))


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"max_norm": 0.0}, ValueError, "max_norm must be > 0"),
        ({"max_norm": -1.0}, ValueError, "max_norm must be > 0"),
        ({"max_norm": np.nan}, ValueError, "max_norm must be finite"),
        ({"max_norm": True}, TypeError, "max_norm must be a real number"),
        ({"max_norm": "1"}, TypeError, "max_norm"),
        ({"noise_multiplier": -0.1}, ValueError, "noise_multiplier must be >= 0"),
        ({"noise_multiplier": np.inf}, ValueError, "noise_multiplier must be finite"),
        ({"mode": "rows"}, ValueError, "mode must be 'flat' or 'per_row'"),
        ({"sample_rate": 0.0}, ValueError, r"sample_rate must be in \(0, 1\]"),
        ({"sample_rate": 1.5}, ValueError, r"sample_rate must be in \(0, 1\]"),
        ({"nonfinite": "skip"}, ValueError, "nonfinite must be"),
        ({"adjacency": "swap"}, ValueError, "adjacency must be"),
        ({"activations": np.ones((4, 3), dtype=np.int64)}, TypeError, "float32 or float64"),
        ({"activations": np.ones((4, 3), dtype=np.complex128)}, TypeError, "float32 or float64"),
        ({"activations": np.float64(1.0)}, ValueError, "at least 1 dimension"),
        ({"activations": [[1.0], [1.0, 2.0]]}, TypeError, "activations must be convertible"),
        ({"out": np.empty((4, 3), dtype=np.float32)}, TypeError, "out must have dtype float64"),
        ({"out": np.empty((3, 4))}, ValueError, r"out must have shape \(4, 3\)"),
        ({"out": np.broadcast_to(np.zeros(3), (4, 3))}, ValueError, "out must be writeable"),
        (
            {"out": np.lib.stride_tricks.as_strided(np.zeros(3), (4, 3), (0, 8))},
            ValueError,
            "share memory",
        ),
        ({"max_norm": 1e38, "activations": np.ones((2, 2), np.float32)}, ValueError, "too large"),
        ({"noise_multiplier": 1e300, "max_norm": 1e10}, ValueError, "too large"),
    ],
)
def test_bad_parameters(kwargs, exc, match):
    args = {"activations": GOOD, "max_norm": 1.0, "noise_multiplier": 1.0}
    args.update(kwargs)
    act = args.pop("activations")
    out = args.pop("out", None)
    sentinel = None
    if out is None and isinstance(act, np.ndarray) and act.dtype.kind == "f" and act.ndim:
        out = sentinel = np.full(act.shape, 7.0, dtype=act.dtype)  # must stay untouched
    with pytest.raises(exc, match=match):
        cut_layer_dp(act, out=out, **args)
    if sentinel is not None:
        assert np.all(sentinel == 7.0)


# -------------------------------------------------------------------- accounting


@pytest.mark.filterwarnings("ignore:the optimal RDP order is the smallest")
@pytest.mark.parametrize(("q", "sigma", "steps"), [(0.01, 1.1, 500), (0.2, 3.0, 40), (1.0, 8.0, 3)])
def test_accounting_against_dp_accounting_and_opacus(q, sigma, steps):
    """T steps of ``.accounting`` in our RDPAccountant against dp_accounting's RDP
    accountant (same integer orders: its fractional-order bound differs from Opacus' for
    small σ) and against Opacus' compute_rdp / get_privacy_spent (default orders)."""
    dpa = pytest.importorskip("dp_accounting")
    from dp_accounting.rdp import RdpAccountant

    x = _data(0, (16, 6), np.float64)
    delta = 1e-5
    orders = [float(a) for a in range(2, 257)]
    for adjacency, sens in (("add_remove", 1.0), ("replace", 2.0)):
        res = cut_layer_dp(x, 0.7, sigma, sample_rate=q, rng=1, adjacency=adjacency)
        ours = RDPAccountant()
        for _ in range(steps):
            ours.step(**res.accounting)
        theirs = RdpAccountant(orders=orders)
        event = dpa.GaussianDpEvent(sigma / sens)
        theirs.compose(event if q == 1.0 else dpa.PoissonSampledDpEvent(q, event), steps)
        got = ours.get_epsilon(delta, alphas=orders)
        assert got == pytest.approx(theirs.get_epsilon(delta), rel=1e-6), adjacency
        opacus_rdp = pytest.importorskip("opacus.accountants.analysis.rdp")
        rdp = opacus_rdp.compute_rdp(
            q=q, noise_multiplier=sigma / sens, steps=steps, orders=DEFAULT_ALPHAS
        )
        want, _ = opacus_rdp.get_privacy_spent(orders=DEFAULT_ALPHAS, rdp=rdp, delta=delta)
        assert ours.get_epsilon(delta) == pytest.approx(want, rel=1e-9), adjacency
        assert res.sensitivity == 0.7 * sens


def test_accounting_without_sample_rate_claims_no_subsampling():
    res = perturb_gradients(np.ones((4, 2)), 1.0, 2.0, rng=0)
    assert res.sample_rate is None
    assert res.accounting == {"noise_multiplier": 2.0, "sample_rate": 1.0}
    res = perturb_gradients(np.ones((4, 2)), 1.0, 2.0, rng=0, adjacency="replace")
    assert res.accounting == {"noise_multiplier": 1.0, "sample_rate": 1.0}


def test_perturb_gradients_is_the_same_mechanism():
    g = _data(8, (32, 10), np.float64)
    a = perturb_gradients(g, 0.3, 1.2, rng=2, sample_rate=0.5)
    b = cut_layer_dp(g, 0.3, 1.2, rng=2, sample_rate=0.5)
    assert np.array_equal(a.values, b.values) and a.accounting == b.accounting
    with pytest.raises(TypeError, match="gradients must have dtype"):
        perturb_gradients(np.ones((2, 2), dtype=np.int32), 1.0, 1.0)


# ---------------------------------------------------------------- RRWithPrior


def _random_prior(rng, k, rows=None):
    shape = (k,) if rows is None else (rows, k)
    p = rng.dirichlet(np.full(k, 0.5), size=None if rows is None else rows)
    p = np.where(rng.random(shape) < 0.2, 0.0, p)  # some classes with no mass
    p[..., 0] += 1e-3  # every row keeps a positive sum
    if rng.random() < 0.5:
        p = np.round(p, 1) + 0.1  # ties between classes
    return p.reshape(shape)


@pytest.mark.parametrize("seed", SEEDS)
def test_probabilities_match_loop_oracle(seed):
    rng = np.random.default_rng(seed)
    for _ in range(40):
        k = int(rng.integers(1, 9))
        eps = float(10 ** rng.uniform(-2, 1.5))
        y = rng.integers(0, k, size=12)
        for prior in (None, _random_prior(rng, k), _random_prior(rng, k, rows=12)):
            got = rr_with_prior_probabilities(y, eps, n_classes=k, prior=prior)
            want = ref.rr_with_prior_probabilities(y, eps, k, prior)
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15, err_msg=f"seed={seed}")
            np.testing.assert_allclose(got.sum(axis=-1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_epsilon_dp_ratio_bound(seed):
    """For every output j and labels y, y': P(j | y) <= e^ε P(j | y')."""
    rng = np.random.default_rng(seed)
    for _ in range(60):
        k = int(rng.integers(2, 10))
        eps = float(10 ** rng.uniform(-2, 1.3))
        prior = None if rng.random() < 0.3 else _random_prior(rng, k)
        probs = rr_with_prior_probabilities(np.arange(k), eps, n_classes=k, prior=prior)
        ratio_bound = math.exp(eps) * (1 + 1e-12)
        for j in range(k):
            col = probs[:, j]
            assert col.max() <= ratio_bound * col.min() + 1e-300, (seed, k, eps, j)


def test_k_star_on_hand_examples():
    # prior (0.5, 0.3, 0.15, 0.05), ε = 1: w_k = e/(e+k-1)·S_k = 0.5, 0.585, 0.547, 0.475
    p = [0.5, 0.3, 0.15, 0.05]
    e = math.e
    probs = rr_with_prior_probabilities(np.arange(4), 1.0, n_classes=4, prior=p)
    keep, other = e / (e + 1), 1 / (e + 1)
    want = np.array([[keep, other, 0, 0], [other, keep, 0, 0], [0.5, 0.5, 0, 0], [0.5, 0.5, 0, 0]])
    np.testing.assert_allclose(probs, want, rtol=1e-15)
    # unbalanced binary prior (0.9, 0.1): k* = 1 while e^ε/(e^ε+1) < 0.9, i.e. ε < ln 9
    out = rr_with_prior(np.array([0, 1, 1, 0, 1]), 2.0, n_classes=2, prior=[0.9, 0.1], rng=1)
    np.testing.assert_array_equal(out, 0)
    probs = rr_with_prior_probabilities(np.array([0, 1]), 2.3, n_classes=2, prior=[0.9, 0.1])
    e3 = math.exp(2.3)
    np.testing.assert_allclose(
        probs, [[e3 / (e3 + 1), 1 / (e3 + 1)], [1 / (e3 + 1), e3 / (e3 + 1)]]
    )
    # uniform prior: plain K-ary randomized response (k* = K)
    probs = rr_with_prior_probabilities(np.array([2]), 0.7, n_classes=5)
    e7 = math.exp(0.7)
    np.testing.assert_allclose(probs[0], [1 / (e7 + 4)] * 2 + [e7 / (e7 + 4)] + [1 / (e7 + 4)] * 2)
    # a label with no prior mass, outside Y_k* = {0, 1}: uniform over Y_k*
    probs = rr_with_prior_probabilities(np.array([2]), 50.0, n_classes=3, prior=[1, 1, 0])
    np.testing.assert_allclose(probs[0], [0.5, 0.5, 0.0])  # the label is outside Y_k*
    # a huge ε: no overflow, the label is kept when it is in Y_k*
    probs = rr_with_prior_probabilities(np.array([1]), 1e6, n_classes=3, prior=[1, 2, 0])
    np.testing.assert_array_equal(probs[0], [0.0, 1.0, 0.0])


def _chi2_p(counts, probs):
    support = probs > 0
    assert counts[~support].sum() == 0
    if support.sum() == 1:
        return 1.0
    expected = probs[support] * counts.sum()
    return float(st.chisquare(counts[support], expected).pvalue)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("k", "eps", "prior"),
    [
        (2, 0.5, None),
        (5, 1.0, None),
        (6, 1.5, [0.4, 0.25, 0.15, 0.1, 0.06, 0.04]),
        (4, 0.3, [0.7, 0.2, 0.05, 0.05]),
        (10, 2.0, [0.3, 0.3, 0.1, 0.1, 0.05, 0.05, 0.04, 0.03, 0.02, 0.01]),
    ],
)
def test_draws_match_exact_probabilities(seed, k, eps, prior):
    """One chi-square per true label on 4·10^4 draws each, at p_min(seed)
    (fresh seed: 1e-6 per assertion)."""
    n = 40_000
    y = np.repeat(np.arange(k), n).astype(np.int32)
    out = rr_with_prior(y, eps, n_classes=k, prior=prior, rng=seed)
    assert out.dtype == np.int32 and out.shape == y.shape
    probs = rr_with_prior_probabilities(np.arange(k), eps, n_classes=k, prior=prior)
    for label in range(k):
        counts = np.bincount(out[y == label], minlength=k)
        p = _chi2_p(counts, probs[label])
        assert p > p_min(seed), f"label {label} p={p:.2e} seed={seed}"


@pytest.mark.parametrize("seed", SEEDS)
def test_draws_with_per_example_priors(seed):
    """Per-example priors: 3 distinct prior rows, each repeated over 3·10^4 examples of
    every label; one chi-square per (row, label) at p_min(seed)."""
    rng = np.random.default_rng(seed)
    k, eps, n = 4, 0.8, 30_000
    rows = np.stack([_random_prior(rng, k) for _ in range(3)])
    prior = np.repeat(rows, n * k, axis=0)
    y = np.tile(np.repeat(np.arange(k), n), 3)
    out = rr_with_prior(y, eps, n_classes=k, prior=prior, rng=seed)
    probs = rr_with_prior_probabilities(y, eps, n_classes=k, prior=prior)
    for r in range(3):
        for label in range(k):
            sel = slice((r * k + label) * n, (r * k + label + 1) * n)
            counts = np.bincount(out[sel], minlength=k)
            p = _chi2_p(counts, probs[sel.start])
            assert p > p_min(seed), f"row {r} label {label} p={p:.2e} seed={seed}"


def test_rr_dtypes_shapes_torch_and_reproducibility():
    y = np.array([[0, 1, 2], [2, 1, 0]], dtype=np.uint8)
    out = rr_with_prior(y, 1.0, n_classes=3, rng=3)
    assert out.dtype == np.uint8 and out.shape == (2, 3)
    assert np.array_equal(out, rr_with_prior(y, 1.0, n_classes=3, rng=3))
    assert rr_with_prior(np.zeros(0, dtype=np.int64), 1.0, n_classes=3).shape == (0,)
    assert np.array_equal(rr_with_prior(np.zeros(5, np.int16), 1.0, n_classes=1), np.zeros(5))
    torch = pytest.importorskip("torch")
    t = torch.tensor([0, 1, 2, 1])
    got = rr_with_prior(t, 2.0, n_classes=3, rng=8)
    assert isinstance(got, np.ndarray) and got.dtype == np.int64
    assert np.array_equal(got, rr_with_prior(t.numpy(), 2.0, n_classes=3, rng=8))


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"labels": np.array([0.0, 1.0])}, TypeError, "labels must be an integer array"),
        ({"labels": np.array([True, False])}, TypeError, "labels must be an integer array"),
        ({"labels": np.array([0, 3])}, ValueError, r"labels must be in \[0, n_classes\)"),
        ({"labels": np.array([-1, 0])}, ValueError, r"labels must be in \[0, n_classes\)"),
        ({"epsilon": 0.0}, ValueError, "epsilon must be > 0"),
        ({"epsilon": -1.0}, ValueError, "epsilon must be > 0"),
        ({"epsilon": np.inf}, ValueError, "epsilon must be finite"),
        ({"epsilon": np.nan}, ValueError, "epsilon must be finite"),
        ({"n_classes": 0}, ValueError, "n_classes must be >= 1"),
        ({"n_classes": 2.0}, TypeError, "n_classes must be an int"),
        # more classes than any machine's memory holds: refused by name, not by numpy
        ({"n_classes": 10**30}, ValueError, "n_classes is too large"),
        ({"n_classes": 2**50}, ValueError, "n_classes is too large"),
        ({"prior": [0.5, 0.5]}, ValueError, r"prior must have shape \(3,\)"),
        ({"prior": [0.5, -0.1, 0.6]}, ValueError, "prior must be >= 0"),
        ({"prior": [0.0, 0.0, 0.0]}, ValueError, "prior must have a positive sum"),
        ({"prior": [np.nan, 1.0, 1.0]}, ValueError, "prior must contain only finite"),
        ({"prior": np.ones((4, 3))}, ValueError, "per-example prior must have shape"),
        ({"prior": np.ones((2, 2, 3))}, ValueError, "prior must have shape"),
        ({"prior": ["a", "b", "c"]}, TypeError, "prior must be a real numeric array"),
    ],
)
def test_rr_bad_input(kwargs, exc, match):
    args = {"labels": np.array([0, 1, 2]), "epsilon": 1.0, "n_classes": 3}
    args.update(kwargs)
    labels = args.pop("labels")
    eps = args.pop("epsilon")
    with pytest.raises(exc, match=match):
        rr_with_prior(labels, eps, **args)
    with pytest.raises(exc, match=match):
        rr_with_prior_probabilities(labels, eps, **args)


def test_rr_probabilities_refuse_an_output_larger_than_memory():
    # B × K probabilities: each factor is fine, the product is not; the draws need no
    # (B, K) array and still run
    labels = np.zeros(2**20, dtype=np.int64)
    with pytest.raises(ValueError, match="n_classes is too large"):
        rr_with_prior_probabilities(labels, 1.0, n_classes=2**20)
    assert rr_with_prior(labels, 1.0, n_classes=2**20, rng=1).shape == labels.shape


@pytest.mark.parametrize("fn", [cut_layer_dp, perturb_gradients])
def test_out_list_is_refused_not_written_to_a_copy(fn):
    # numpy.asarray copies a list: the result would have gone to the copy, silently
    out = [[0.0, 0.0], [0.0, 0.0]]
    with pytest.raises(TypeError, match=r"out must be a numpy\.ndarray"):
        fn(np.ones((2, 2)), 1.0, 0.0, out=out, rng=1)
    assert out == [[0.0, 0.0], [0.0, 0.0]]
