"""The vectorised numpy and Python baselines of the benchmarks compute the right thing, and
the benchmark rows time them.

Deterministic baselines equal (or are allclose to) the native result and the literal
oracle; samplers follow the right law (chi-square / Kolmogorov-Smirnov at the
``tests/thresholds.py`` p-value: false alarm 1e-4 per fixed seed, 1e-6 for the fresh
seed); DJN ciphertexts written in Python decrypt with ppml_fast's keys. The wiring tests
replace a baseline by a recorder and call the bench row's reference: they fail when a
row times something else (as the rows did before the baselines existed).
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pytest
import scipy.stats as st

from ppml_fast import _bench, aggregation, clipping, paillier
from ppml_fast.accounting import PRVAccountant
from ppml_fast.reference import aggregation as ref_agg
from ppml_fast.reference import clipping as ref_clip
from ppml_fast.reference import mechanisms as ref_mech
from ppml_fast.reference import paillier as ref_pai

from .thresholds import FRESH, p_min

# --- exponential mechanism ----------------------------------------------------------------

_SAMPLERS = [ref_mech.exponential_mechanism_cumsum, ref_mech.exponential_mechanism_gumbel]


@pytest.mark.parametrize("sampler", _SAMPLERS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("seed", [7, FRESH])
def test_vectorised_exponential_mechanism_has_the_softmax_law(sampler, seed):
    # chi-square goodness of fit against the exact softmax probabilities; false alarm
    # 1e-4 per (sampler, fixed seed), 1e-6 per (sampler, fresh seed)
    u = np.array([0.0, 1.0, 2.0, 3.0, 3.5, -2.0, 10.0, 4.0])
    eps, sens, n = 0.9, 1.3, 200_000
    p = ref_mech.softmax_probabilities(u, eps, sens)
    assert p.min() * n >= 5  # every cell large enough for the chi-square approximation
    picks = sampler(np.broadcast_to(u, (n, u.size)), eps, sens, rng=seed)
    assert picks.shape == (n,) and picks.dtype.kind == "i"
    counts = np.bincount(picks, minlength=u.size)
    assert counts.size == u.size
    assert st.chisquare(counts, p * n).pvalue > p_min(seed)


@pytest.mark.parametrize("sampler", _SAMPLERS, ids=lambda f: f.__name__)
def test_vectorised_exponential_mechanism_axis_and_extremes(sampler):
    u = np.random.default_rng(1).normal(size=(30, 7, 5))
    # a huge ε picks the argmax, along any axis
    for axis in (0, 1, -1):
        want = u.argmax(axis=axis)
        np.testing.assert_array_equal(sampler(u, 1e9, 1.0, rng=2, axis=axis), want)
    # weights that underflow to 0 are never picked; huge utilities keep their winner
    big = np.array([[1e300, 0.0, 1e300 - 1e285, -1e300]] * 2000)
    picks = sampler(big, 1.0, 1.0, rng=3)
    assert set(np.unique(picks).tolist()) == {0}


# --- Krum ---------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [0.0, 1e3])
def test_krum_gram_equals_the_pair_loop_and_native(offset):
    gen = np.random.default_rng(5)
    x = gen.standard_normal((20, 300)) + offset
    x[:3] += 4.0  # three outliers
    want_mean, want_idx, want_scores = ref_agg.krum(x, 3, 4)
    mean, idx, scores = ref_agg.krum_gram(x, 3, 4)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-9)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_allclose(mean, want_mean, rtol=1e-12)
    np.testing.assert_allclose(
        ref_agg.pairwise_sq_distances_gram(x), ref_agg.pairwise_sq_distances(x), rtol=1e-9
    )
    native = aggregation.krum(x, 3, m=4)
    np.testing.assert_array_equal(native.indices, idx)
    np.testing.assert_allclose(native.scores, scores, rtol=1e-9)
    np.testing.assert_allclose(native.update, mean, rtol=1e-12)


def test_krum_gram_float32_uncentred():
    x = np.random.default_rng(6).standard_normal((30, 2000), dtype=np.float32)
    want = ref_agg.krum_scores(x.astype(np.float64), 5)
    np.testing.assert_allclose(ref_agg.krum_scores_gram(x, 5, centred=False), want, rtol=1e-4)
    np.testing.assert_allclose(ref_agg.krum_scores_gram(x, 5), want, rtol=1e-9)
    _, idx, _ = ref_agg.krum_gram(x, 5, 3, centred=False)
    np.testing.assert_array_equal(idx, aggregation.krum(x, 5, m=3).indices)


# --- DP-FedAvg ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dp_fedavg_numpy_without_noise_is_the_clipped_mean(dtype):
    gen = np.random.default_rng(8)
    x = (gen.standard_normal((40, 3, 50)) * gen.uniform(0.1, 3.0, (40, 1, 1))).astype(dtype)
    w = gen.uniform(0.0, 1.0, 40)
    tol = {"rtol": 1e-5, "atol": 1e-7} if dtype == np.float32 else {"rtol": 1e-12}
    for kw, native_kw in (
        ({}, {}),
        ({"weights": w, "denominator": 17.5}, {"weights": w, "expected_clients": 17.5}),
    ):
        got = ref_agg.dp_fedavg_numpy(x, 2.0, 0.0, np.random.default_rng(0), **kw)
        assert got.dtype == np.dtype(dtype) and got.shape == (3, 50)
        want = ref_agg.dp_fedavg(x, 2.0, 0.0, np.random.default_rng(0), **kw)
        np.testing.assert_allclose(got, want, **tol)
        native = aggregation.dp_fedavg(x, 2.0, 0.0, **native_kw).update
        np.testing.assert_allclose(got, native, **tol)


@pytest.mark.parametrize("seed", [9, FRESH])
def test_dp_fedavg_numpy_noise_is_gaussian_of_std_sigma_c(seed):
    # Kolmogorov-Smirnov of the noise (times m, over σC) against N(0, 1); false alarm
    # 1e-4 for the fixed seed, 1e-6 for the fresh one
    x = np.random.default_rng(10).standard_normal((50, 40_000), dtype=np.float32)
    sigma, c, m = 1.3, 5.0, 50.0
    clean = ref_agg.dp_fedavg_numpy(x, c, 0.0, np.random.default_rng(0), denominator=m)
    noisy = ref_agg.dp_fedavg_numpy(x, c, sigma, np.random.default_rng(seed), denominator=m)
    z = (noisy.astype(np.float64) - clean) * m / (sigma * c)
    assert st.kstest(z, "norm").pvalue > p_min(seed)


# --- clip_and_sum over layers -------------------------------------------------------------


@pytest.mark.parametrize("max_norm", [1.0, [1.0, 0.5, 2.0, 0.25], 1e9])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_clip_and_sum_layers_equals_native_and_loop(max_norm, dtype):
    gen = np.random.default_rng(11)
    layers = [
        (gen.standard_normal((64, *s)) * gen.uniform(0.01, 3.0, (64,) + (1,) * len(s))).astype(
            dtype
        )
        for s in ((8, 4), (8,), (3, 8), (3,))
    ]
    layers[0][5] = 0.0  # a zero row of one layer
    got = ref_clip.numpy_clip_and_sum_layers(layers, max_norm)
    native = clipping.clip_and_sum(layers, max_norm)
    loop = ref_clip.clip_and_sum(layers, max_norm)
    tol = {"rtol": 2e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}
    for g, a, b, src in zip(got, native, loop, layers, strict=True):
        assert g.shape == src.shape[1:] and g.dtype == src.dtype
        np.testing.assert_allclose(g, a, **tol)
        np.testing.assert_allclose(g, b, **tol)
    one = layers[0]
    np.testing.assert_allclose(
        ref_clip.numpy_clip_and_sum_layers(one, 1.0), clipping.clip_and_sum(one, 1.0), **tol
    )


# --- Paillier: DJN written in Python on gmpy2 ---------------------------------------------


@pytest.fixture(scope="module")
def keys():
    return paillier.generate_paillier_keypair(n_length=1024)


@pytest.mark.parametrize("window", [None, 3, 8])
def test_djn_python_ciphertexts_decrypt_with_our_keys(keys, window):
    pk, sk = keys
    enc = ref_pai.DJNEncryptor(pk.n, pk.hs, window=window)
    values = [0, 1, -1, 123456789, -(10**9), pk.max_int, 2**300]
    cts = enc.encrypt_loop(values)
    assert len(set(cts)) == len(cts)  # fresh randomness each time
    for v, c in zip(values, cts, strict=True):
        assert 0 < c < pk.nsquare
        assert sk.raw_decrypt(c) == v % pk.n
        assert ref_pai.decrypt(sk.p, sk.q, c) == v % pk.n
    # the homomorphism holds across our ciphertexts and the Python ones
    ours = int(pk.raw_encrypt(5))
    assert sk.raw_decrypt(ref_pai.add(pk.n, ours, cts[4])) == (5 - 10**9) % pk.n


def test_djn_python_obfuscator_is_hs_to_the_alpha(keys):
    pk, _ = keys
    plain = ref_pai.DJNEncryptor(pk.n, pk.hs)
    table = ref_pai.DJNEncryptor(pk.n, pk.hs, window=5)
    assert plain.alpha_bits == table.alpha_bits == pk.n.bit_length() // 2
    for alpha in (1, 2**511 + 12345, table.random_alpha(), (1 << plain.alpha_bits) - 1):
        want = pow(pk.hs, alpha, pk.nsquare)
        assert plain.obfuscator(alpha) == table.obfuscator(alpha) == want
        assert plain.encrypt(7, alpha) == (1 + 7 * pk.n) * want % pk.nsquare
    assert all(0 < table.random_alpha() < 2**table.alpha_bits for _ in range(50))


# --- the bench rows time the fair baselines -----------------------------------------------


def _case(area: str, key_start: str) -> _bench.Case:
    found = [c for c in _bench.collect(False, [area]) if c.key.startswith(key_start)]
    assert found, f"no {area} case {key_start!r}"
    return found[0]


def _recording(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[int]:
    """Wrap ``owner.name`` so that each call is counted; returns the counter."""
    calls: list[int] = []
    real = getattr(owner, name)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapped)
    return calls


@pytest.mark.parametrize(
    ("area", "key", "owner", "name"),
    [
        ("mechanisms", "exponential_mechanism[", ref_mech, "exponential_mechanism_cumsum"),
        ("aggregation", "krum f=10[", ref_agg, "krum_gram"),
        ("aggregation", "dp_fedavg[", ref_agg, "dp_fedavg_numpy"),
        ("clipping", "clip_and_sum 4 layers[", ref_clip, "numpy_clip_and_sum_layers"),
        ("clipping", "clip_and_sum 4 layers, per-layer", ref_clip, "numpy_clip_and_sum_layers"),
    ],
)
def test_bench_row_reference_is_the_vectorised_baseline(monkeypatch, area, key, owner, name):
    case = _case(area, key)
    calls = _recording(monkeypatch, owner, name)
    result = case.reference()
    assert calls == [1]
    assert case.check is None or case.check(result)
    if case.data is not None:
        case.data.clear()


@pytest.mark.slow
def test_bench_djn_row_reference_is_djn_in_python(monkeypatch):
    case = _case("paillier", "paillier encrypt_batch (DJN")
    calls = _recording(monkeypatch, ref_pai.DJNEncryptor, "encrypt")
    out = case.reference()
    assert len(out) == len(calls) > 0
    assert "DJN" in case.reference_name and "python-paillier" in case.peers
    assert case.data is not None
    case.data.clear()


def test_bench_pld_peer_runs_at_the_prv_stated_error(monkeypatch):
    pld_mod = pytest.importorskip("dp_accounting.pld.pld_privacy_accountant")
    from ppml_fast._bench import accounting as bench_acc

    intervals: list[float] = []

    class Recorder:
        def __init__(self, *args: Any, value_discretization_interval: float = 1e-4) -> None:
            intervals.append(value_discretization_interval)

        def compose(self, event: Any) -> None:
            pass

        def get_epsilon(self, delta: float) -> float:
            return 5.0

    monkeypatch.setattr(pld_mod, "PLDAccountant", Recorder)
    case = _case("accounting", "PRV get_epsilon")
    case.peers["dp_accounting"]()
    (interval,) = intervals
    # dp_accounting's certified overstatement of ε is k Δ; the PRV row's (ppml_fast's
    # get_epsilon at its default eps_error) is 2 eps_error
    eps_error = inspect.signature(PRVAccountant.get_epsilon).parameters["eps_error"].default
    assert bench_acc.STEPS * interval <= 2 * eps_error * (1 + 1e-12)
    assert f"{interval:g}" in case.operation


def test_pld_interval_overstates_by_at_most_its_bound():
    # on a small composition, dp_accounting at Δ = 2 eps_err / k lands inside ppml_fast's
    # certified interval widened by k Δ (true ε <= PLD's ε <= true ε + k Δ)
    dp_accounting = pytest.importorskip("dp_accounting")
    from dp_accounting.pld.pld_privacy_accountant import PLDAccountant

    from ppml_fast import accounting

    q, sigma, k, delta, eps_err = 0.05, 1.0, 100, 1e-5, 0.01
    acc = accounting.PRVAccountant()
    acc.history = [(sigma, q, k)]
    b = acc.get_epsilon_bounds(delta, eps_error=eps_err)
    interval = 2 * eps_err / k
    pld = PLDAccountant(value_discretization_interval=interval)
    pld.compose(
        dp_accounting.SelfComposedDpEvent(
            dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), k
        )
    )
    eps = pld.get_epsilon(delta)
    assert b.lower <= eps <= b.upper + k * interval
