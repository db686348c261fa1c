"""pytest-benchmark: privacy accounting at the issue's DP-SGD setting (q = 0.01, σ = 1.1,
10,000 steps, δ = 1e-5): ppml_fast (native) against the pure-Python oracle (reference:
``ppml_fast.reference.accounting``'s ``compute_rdp`` / ``get_privacy_spent`` and
``prv_epsilon`` / ``prv_delta``; it has no noise calibration), Opacus and dp_accounting
where installed.

Run: ``pytest benchmarks/bench_accounting.py --benchmark-enable``; one group per
operation. Each call does the whole computation: the native RDP calls clear
``compute_rdp``'s cache first and every PRV/PLD call builds a fresh accountant. Calls that
take a tenth of a second or more (the calibration and PRV/PLD peers and oracle) run
``rounds=3, iterations=1``.
``extra_info["result"]`` holds what the call returned (ε, σ or δ), to compare the
implementations at a glance.
"""

import importlib
import warnings

import pytest

from ppml_fast import accounting
from ppml_fast.accounting import rdp as accounting_rdp

Q, SIGMA, STEPS, DELTA = 0.01, 1.1, 10_000, 1e-5
TARGET_EPSILON = 8.0
EPSILON = 5.19


def _reference(*names):
    """The oracle module, skipping the test when it (or one of ``names``) is not there."""
    try:
        ref = importlib.import_module("ppml_fast.reference.accounting")
    except ImportError:
        pytest.skip("ppml_fast.reference.accounting is not importable")
    missing = [n for n in names if not hasattr(ref, n)]
    if missing:
        pytest.skip(f"ppml_fast.reference.accounting has no {', '.join(missing)}")
    return ref


def _quiet(fn):
    def call():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "optimal order is the largest"
            return fn()

    return call


def _clearing(fn):
    def call():
        accounting_rdp._rdp_cached.cache_clear()
        return fn()

    return call


def _run(benchmark, fn, slow):
    """Time ``fn`` (3 rounds of 1 call when ``slow``), recording what it returned."""
    fn = _quiet(fn)
    result = benchmark.pedantic(fn, rounds=3, iterations=1) if slow else benchmark(fn)
    benchmark.extra_info["result"] = float(result[0] if isinstance(result, tuple) else result)
    return result


@pytest.mark.parametrize("impl", ["native", "reference", "opacus"])
def test_compute_rdp_get_privacy_spent(benchmark, impl):
    benchmark.group = "compute_rdp + get_privacy_spent (151 orders)"
    if impl == "native":
        mod = accounting
    elif impl == "reference":
        mod = _reference("compute_rdp", "get_privacy_spent")
    else:
        mod = pytest.importorskip("opacus.accountants.analysis.rdp")
    orders = accounting.DEFAULT_ALPHAS

    def fn():
        rdp = mod.compute_rdp(q=Q, noise_multiplier=SIGMA, steps=STEPS, orders=orders)
        return mod.get_privacy_spent(orders=orders, rdp=rdp, delta=DELTA)

    eps, _ = _run(benchmark, _clearing(fn) if impl == "native" else fn, slow=False)
    assert 0 < eps < 10


@pytest.mark.parametrize("impl", ["native", "opacus"])
def test_get_noise_multiplier(benchmark, impl):
    benchmark.group = "get_noise_multiplier(target ε=8)"
    if impl == "native":
        f = accounting.get_noise_multiplier
    else:
        f = pytest.importorskip("opacus.accountants.utils").get_noise_multiplier

    def fn():
        return f(target_epsilon=TARGET_EPSILON, target_delta=DELTA, sample_rate=Q, steps=STEPS)

    sigma = _run(benchmark, _clearing(fn) if impl == "native" else fn, slow=impl != "native")
    assert 0.5 < sigma < 2


def _prv(impl, query, value):
    """A fresh accountant (they cache their discretisation) with the composition, queried;
    for the reference, its ``prv_epsilon`` (upper bound) / ``prv_delta`` (estimate)."""
    if impl == "dp_accounting":
        dp_accounting = pytest.importorskip("dp_accounting")
        pld = pytest.importorskip("dp_accounting.pld.pld_privacy_accountant")
        event = dp_accounting.SelfComposedDpEvent(
            dp_accounting.PoissonSampledDpEvent(Q, dp_accounting.GaussianDpEvent(SIGMA)), STEPS
        )

        def fn():
            acc = pld.PLDAccountant()
            acc.compose(event)
            return getattr(acc, query)(value)

        return fn
    if impl == "reference":
        name = {"get_epsilon": "prv_epsilon", "get_delta": "prv_delta"}[query]
        f = getattr(_reference(name), name)
        if query == "get_epsilon":
            return lambda: f(Q, SIGMA, STEPS, value)[2]
        return lambda: f(Q, SIGMA, STEPS, value)
    if impl == "native":
        cls = accounting.PRVAccountant
    else:
        cls = pytest.importorskip("opacus.accountants").PRVAccountant

    def fn():
        acc = cls()
        acc.history = [(SIGMA, Q, STEPS)]
        return getattr(acc, query)(value)

    return fn


@pytest.mark.parametrize("impl", ["native", "reference", "opacus", "dp_accounting"])
def test_prv_get_epsilon(benchmark, impl):
    benchmark.group = "PRV get_epsilon (eps_error 0.01; dp_accounting: PLD)"
    eps = _run(benchmark, _prv(impl, "get_epsilon", DELTA), slow=impl != "native")
    assert 4 < eps < 7


@pytest.mark.parametrize("impl", ["native", "reference", "dp_accounting"])
def test_prv_get_delta(benchmark, impl):
    benchmark.group = f"PRV get_delta(ε={EPSILON}) (dp_accounting: PLD)"
    delta = _run(benchmark, _prv(impl, "get_delta", EPSILON), slow=impl != "native")
    assert 0 < delta < 1e-3
