"""pytest-benchmark: RDP conversion, noise calibration and the PRV accountant at the DP-SGD
setting q = 0.01, σ = 1.1, 10^4 steps (Python oracle, Opacus, dp_accounting; its PLD at the
interval whose certified error matches the PRV row's, 2e-6, and at its default 1e-4).

The cases are those of ``ppml-fast bench`` (``ppml_fast._bench.accounting``), parametrised by
``conftest.py``. Run: ``pytest benchmarks/bench_accounting.py --benchmark-enable``.
"""

AREA = "accounting"


def test_accounting(bench, case, impl):
    bench(case, impl)
