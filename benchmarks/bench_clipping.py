"""pytest-benchmark: per-sample clipping, clip-and-sum and the DP aggregate of a 256-example
batch (numpy pipelines, torch, the read probe), and clip-and-sum of a 4-layer batch with
one threshold and one per layer (vectorised numpy reference; peer: the per-example loop).

The cases are those of ``ppml-fast bench`` (``ppml_fast._bench.clipping``), parametrised by
``conftest.py``. Run: ``pytest benchmarks/bench_clipping.py --benchmark-enable``.
"""

AREA = "clipping"


def test_clipping(bench, case, impl):
    bench(case, impl)
