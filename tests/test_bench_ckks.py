"""The CKKS benchmark area and the one-round comparison table: the TenSEAL baselines of
``ppml_fast.reference.ckks`` compute what they claim, the area's rows build lazily and
vanish without TenSEAL, and a small comparison table runs with every error within the
bound it states."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("tenseal")

from ppml_fast import ckks
from ppml_fast._bench import Data
from ppml_fast._bench import ckks as bench_ckks
from ppml_fast.reference import ckks as ref


@pytest.fixture(scope="module")
def ctx():
    return ckks.make_context("general", galois_keys=False)


def _bound(d: int, clients: int = 1) -> float:
    # Exceeded with probability below 1e-9 per call (the error model's union bound).
    return ckks.error_bound(ckks.general_parameters(), values=d, clients=clients)


def test_encrypt_loop_chunks_and_round_trip(ctx):
    import tenseal as ts

    x = np.random.default_rng().uniform(-1, 1, 10_000)
    sent = ref.encrypt_loop(ctx, x, 4096)
    assert len(sent) == 3  # 4096 + 4096 + 1808
    got = np.concatenate([ts.ckks_vector_from(ctx, b).decrypt() for b in sent])
    assert got.shape == x.shape
    assert np.max(np.abs(got - x)) <= _bound(x.size)


def test_sum_and_weighted_sum_loops_against_numpy(ctx):
    gen = np.random.default_rng()
    xs = gen.uniform(-1, 1, (4, 5000))
    w = gen.uniform(0.5, 2.0, 4)
    tens = [ref.chunk_vectors(ctx, v, 4096) for v in xs]
    # the loops over the clients, chunk by chunk
    for c in range(2):
        got = np.asarray(ref.sum_loop([t[c] for t in tens]).decrypt())
        want = xs.sum(axis=0)[c * 4096 : (c + 1) * 4096]
        assert np.max(np.abs(got - want)) <= _bound(5000, 4)
        got = np.asarray(ref.weighted_sum_loop([t[c] for t in tens], w).decrypt())
        # TenSEAL's v * w leaves a relative error of about 1e-7 (its rescale labels the
        # result with the scale, not its true value): a loose tolerance
        assert np.max(np.abs(got - (w @ xs)[c * 4096 : (c + 1) * 4096])) <= 1e-5
    # one vector (a copy, not the input)
    single = ref.sum_loop([tens[0][0]])
    assert single is not tens[0][0]
    assert np.max(np.abs(np.asarray(single.decrypt()) - xs[0, :4096])) <= _bound(4096)


def test_decrypt_loop_joins_chunks(ctx):
    x = np.random.default_rng().uniform(-1, 1, 9000)
    got = ref.decrypt_loop(ref.chunk_vectors(ctx, x, 4096))
    assert got.dtype == np.float64 and got.shape == x.shape
    assert np.max(np.abs(got - x)) <= _bound(x.size)


def test_cases_build_lazily_and_vanish_without_tenseal(monkeypatch):
    rows = bench_ckks.cases(False)
    assert rows and all(not c.full for c in rows)
    full = bench_ckks.cases(True)
    assert len(full) == 2 * len(rows)
    keys = [c.key for c in full]
    assert len(set(keys)) == len(keys)
    # nothing was encrypted to build the list
    assert all(c.data is None or isinstance(c.data, Data) for c in full)
    assert any(t.metric.startswith("bytes") for c in full for t in c.targets)
    monkeypatch.setattr(bench_ckks, "available", lambda: False)
    assert bench_ckks.cases(True) == []


def test_comparison_table_small_round():
    rows = bench_ckks.comparison_table(clients=10, dim=3000)
    by = {r["scheme"].split(" (")[0]: r for r in rows}
    assert len(rows) == 8
    for r in rows:
        assert r["client_s"] >= 0 and r["server_s"] > 0 and r["bytes_per_client"] > 0
        assert r["learns"]
        if not math.isnan(r["bound"]):
            # CKKS: exceeded with probability below 1e-9 per row; SecAgg+ and Paillier:
            # deterministic rounding bounds
            assert r["max_abs_error"] <= r["bound"], r
    assert by["plaintext FedAvg"]["bytes_per_client"] == 4 * 3000
    assert by["plaintext FedAvg"]["max_abs_error"] < 1e-8  # float32 rounding of the mean
    ckks_rows = [r for r in rows if r["scheme"].startswith("CKKS")]
    assert len(ckks_rows) == 4
    general = [r for r in ckks_rows if "general" in r["scheme"]]
    asym, sym = sorted(general, key=lambda r: r["scheme"].startswith("CKKS symmetric"))
    assert asym["scheme"].startswith("CKKS asymmetric")
    assert sym["bytes_per_client"] <= asym["bytes_per_client"] / 2
    text = bench_ckks.comparison_markdown(rows)
    assert text.count("\n") == len(rows) + 1 and "| scheme |" in text
    plain = bench_ckks.comparison_markdown(rows, markdown=False)
    assert "CKKS symmetric" in plain


def test_comparison_table_refuses_too_few_clients():
    with pytest.raises(ValueError, match="clients must be >= 10"):
        bench_ckks.comparison_table(clients=5, dim=10)
