"""Federated-learning simulation runs: seeds, accounting, aggregators, executors, output, checks.

The models are tested in test_simulation_models.py, data and partitions in
test_simulation_data.py.
"""

import concurrent.futures
import math
import sys
import warnings

import numpy as np
import pytest

from ppml_fast import InsecureRandomnessWarning, accounting, cli
from ppml_fast import rng as prng
from ppml_fast import simulation as sim

# Seeded runs feed seeded streams to DP noise on purpose (reproducible tests); the one
# warning per process that this triggers is checked in test_seeded_dp_warns.
pytestmark = pytest.mark.filterwarnings("ignore::ppml_fast.InsecureRandomnessWarning")


@pytest.fixture(scope="module")
def digits():
    return sim.load_dataset("digits")


def _small(digits, n_train=400, n_test=200):
    return sim.Dataset(
        digits.X_train[:n_train],
        digits.y_train[:n_train],
        digits.X_test[:n_test],
        digits.y_test[:n_test],
    )


# ------------------------------------------------------------- the default experiment


def test_default_experiment_reaches_centralised_accuracy(digits):
    """FedAvg (20 IID clients, half per round, 10 rounds) is within 5 accuracy points of
    a centralised logistic regression fitted by scikit-learn on the same training rows."""
    linear_model = pytest.importorskip("sklearn.linear_model")
    central = linear_model.LogisticRegression(max_iter=2000).fit(digits.X_train, digits.y_train)
    central_acc = central.score(digits.X_test, digits.y_test)
    result = sim.run_simulation(digits, seed=0)
    assert len(result.history) == 10
    assert result.history[-1].test_accuracy >= central_acc - 0.05
    losses = [r.train_loss for r in result.history]
    assert losses[-1] < losses[0] / 2
    assert all(r.epsilon is None and r.clients == 10 == r.survivors for r in result.history)
    assert all(r.bytes_per_client == 650 * 8 for r in result.history)


def test_same_seed_same_run_other_seed_other_run(digits):
    data = _small(digits)
    a = sim.run_simulation(data, seed=5, rounds=3, clients=8)
    b = sim.run_simulation(
        data, seed=5, rounds=3, clients=8, executor=concurrent.futures.ThreadPoolExecutor(1)
    )
    c = sim.run_simulation(data, seed=6, rounds=3, clients=8)
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params, c.params)


def test_unseeded_run_uses_secure_streams_and_does_not_warn(digits):
    prng._reset_dp_warning()
    with warnings.catch_warnings():
        warnings.simplefilter("error", InsecureRandomnessWarning)
        r = sim.run_simulation(
            _small(digits), rounds=2, clients=6, dp_sgd=sim.DPSGD(noise_multiplier=1.0)
        )
    assert r.history[-1].epsilon > 0


def test_seeded_dp_warns(digits):
    prng._reset_dp_warning()
    with pytest.warns(InsecureRandomnessWarning):
        sim.run_simulation(_small(digits), rounds=1, clients=4, seed=0, aggregator="dp-fedavg")


# ----------------------------------------------------------------------- accounting


def _epsilon_from(history, delta):
    orders = accounting.RDPAccountant.DEFAULT_ALPHAS
    rdp = sum(accounting.compute_rdp(q, sigma, steps, orders) for sigma, q, steps in history)
    return accounting.get_privacy_spent(orders=orders, rdp=rdp, delta=delta)[0]


def test_dp_fedavg_epsilon_matches_independent_accountant(digits):
    agg = sim.DPFedAvg(clip_norm=1.0, noise_multiplier=1.2, delta=1e-4)
    result = sim.run_simulation(
        _small(digits), rounds=4, clients=10, fraction=0.3, seed=1, aggregator=agg
    )
    eps = [r.epsilon for r in result.history]
    assert all(e is not None and e > 0 for e in eps) and eps == sorted(eps)
    for i, rec in enumerate(result.history):
        assert rec.accounting == ((1.2, 0.3, i + 1),)
        assert math.isclose(rec.epsilon, _epsilon_from(rec.accounting, 1e-4), rel_tol=1e-12)
    independent = accounting.RDPAccountant()
    for _ in range(4):
        independent.step(noise_multiplier=1.2, sample_rate=0.3)
    assert math.isclose(eps[-1], independent.get_epsilon(1e-4), rel_tol=1e-12)


def test_dp_fedavg_round_without_clients_is_pure_noise(digits):
    """Poisson client sampling can pick nobody: the round still releases noise / m and
    is still recorded by the accountant."""
    result = sim.run_simulation(
        _small(digits), rounds=5, clients=4, fraction=0.1, seed=0, aggregator="dp-fedavg"
    )
    empty = [r for r in result.history if r.clients == 0]
    assert empty and all(r.epsilon > 0 for r in empty)
    assert result.history[-1].accounting == ((1.0, 0.1, 5),)


def test_dp_sgd_epsilon_is_the_worst_clients(digits):
    """Each client's ε composes its own DP-SGD steps (sample rate B / n_k, ceil(E n_k / B)
    steps per round it takes part in); the record holds the largest."""
    data = _small(digits)
    dp = sim.DPSGD(noise_multiplier=1.1, max_grad_norm=0.5, delta=1e-5)
    parts = [np.arange(0, 40), np.arange(40, 100), np.arange(100, 400)]
    result = sim.run_simulation(
        data,
        partition=parts,
        rounds=3,
        fraction=1.0,
        batch_size=10,
        local_epochs=1,
        dp_sgd=dp,
        seed=2,
    )
    for r, rec in enumerate(result.history, start=1):
        # the client with the fewest examples has the highest sample rate and ε
        assert rec.accounting == ((1.1, 10 / 40, 4 * r),)
        assert math.isclose(rec.epsilon, _epsilon_from(rec.accounting, 1e-5), rel_tol=1e-12)
        others = [_epsilon_from(((1.1, 10 / n, math.ceil(n / 10) * r),), 1e-5) for n in (60, 300)]
        assert rec.epsilon >= max(others)


def test_dp_sgd_combines_with_secure_aggregation(digits):
    result = sim.run_simulation(
        _small(digits), rounds=2, clients=6, seed=3, dp_sgd=sim.DPSGD(), aggregator="secagg"
    )
    assert all(r.epsilon is not None for r in result.history)


# ---------------------------------------------------------------- secure aggregators


def test_secagg_equals_unweighted_fedavg_up_to_quantisation(digits):
    data = _small(digits)
    kw = dict(rounds=3, clients=8, seed=4)
    plain = sim.run_simulation(data, aggregator=sim.FedAvg(weighted=False), **kw)
    for agg in (
        sim.SecureAggregation(),
        sim.SecureAggregation(neighbors=4),
        sim.SecureAggregation(neighbors="auto"),
    ):
        sec = sim.run_simulation(data, aggregator=agg, **kw)
        # each round's mean is off by at most 2^-17 per coordinate (round to nearest);
        # a few rounds of training amplify that by a small factor
        assert np.max(np.abs(sec.params - plain.params)) < 3 * 10 * 2.0**-17
        assert all(r.bytes_per_client > 650 * 8 for r in sec.history)
    finer = sim.run_simulation(data, aggregator=sim.SecureAggregation(frac_bits=32), **kw)
    assert np.max(np.abs(finer.params - plain.params)) < 1e-8


def test_secagg_dropouts_and_aborted_rounds(digits):
    data = _small(digits)
    light = sim.run_simulation(
        data, rounds=4, clients=10, seed=5, aggregator=sim.SecureAggregation(dropout=0.2)
    )
    assert any(r.survivors < r.clients for r in light.history)
    heavy = sim.run_simulation(
        data, rounds=6, clients=10, seed=5, aggregator=sim.SecureAggregation(dropout=0.7)
    )
    aborted = [r for r in heavy.history if r.aborted]
    assert aborted, "with 70% dropout some rounds cannot remove the masks"
    for prev, rec in zip(heavy.history, heavy.history[1:], strict=False):
        if rec.aborted:
            assert rec.train_loss == prev.train_loss  # the model did not move
            assert rec.bytes_per_client is None
    assert "(aborted)" in heavy.table()


def test_paillier_equals_weighted_fedavg_up_to_precision(digits):
    data = _small(digits, n_train=200)
    kw = dict(rounds=2, clients=4, fraction=0.5, seed=6)
    plain = sim.run_simulation(data, **kw)
    # one ciphertext per value (packing is the default; test_simulation_packing.py)
    agg = sim.PaillierAggregation(key_bits=512, packing=False)
    enc = sim.run_simulation(data, aggregator=agg, **kw)
    assert np.max(np.abs(enc.params - plain.params)) < 1e-5
    # 650 ciphertexts of 2 x 512 bits each, plus the serialisation's header and exponents
    assert all(r.bytes_per_client >= 650 * 128 for r in enc.history)
    assert all(r.packing_factor == 1 for r in enc.history)


# ------------------------------------------------------------------------ executors


def test_threads_and_dask_local_cluster_give_identical_runs(digits):
    """Client tasks are pure functions of their inputs and SeedSequence-derived seeds, so
    a 2-process Dask cluster reproduces the thread pool's run bit for bit."""
    distributed = pytest.importorskip("distributed")
    data = _small(digits)
    runs = [
        dict(rounds=3, clients=8),
        dict(rounds=2, clients=8, model="mlp", dp_sgd=sim.DPSGD()),
        dict(rounds=3, clients=8, aggregator="dp-fedavg"),
        dict(rounds=3, clients=8, aggregator=sim.SecureAggregation(dropout=0.3)),
        dict(rounds=1, clients=4, aggregator=sim.PaillierAggregation(key_bits=512)),  # packed
        dict(rounds=1, clients=4, aggregator=sim.PaillierAggregation(512, packing=False)),
    ]
    with (
        distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        executor = client.get_executor()
        for kw in runs:
            a = sim.run_simulation(data, seed=7, executor=executor, **kw)
            b = sim.run_simulation(data, seed=7, **kw)
            np.testing.assert_array_equal(a.params, b.params)
            for ra, rb in zip(a.history, b.history, strict=True):
                assert (ra.train_loss, ra.test_accuracy, ra.epsilon, ra.survivors) == (
                    rb.train_loss,
                    rb.test_accuracy,
                    rb.epsilon,
                    rb.survivors,
                )


def test_a_given_executor_is_used_and_left_open(digits):
    calls = []

    class Counting(concurrent.futures.ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):
            calls.append(fn)
            return super().submit(fn, *args, **kwargs)

    with Counting(2) as pool:
        sim.run_simulation(_small(digits), rounds=2, clients=6, fraction=0.5, seed=0, executor=pool)
        assert len(calls) == 6
        assert pool.submit(int, "3").result() == 3  # still open


# ------------------------------------------------------------------ records and output


def test_records_table_and_plot(digits, tmp_path):
    result = sim.run_simulation(_small(digits), rounds=2, clients=4, seed=0, aggregator="dp-fedavg")
    recs = result.records()
    assert [r["round"] for r in recs] == [1, 2]
    assert set(recs[0]) >= {
        "train_loss",
        "test_accuracy",
        "epsilon",
        "bytes_per_client",
        "client_s",
        "aggregation_s",
    }
    lines = result.table().splitlines()
    assert lines[0].split()[:3] == ["round", "clients", "survivors"] and len(lines) == 4
    assert result.table(markdown=True).startswith("| round")
    pytest.importorskip("matplotlib")
    path = tmp_path / "history.png"
    sim.plot(result, path)
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_plot_without_matplotlib_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        sim.plot([], tmp_path / "x.png")


def test_progress_bar(digits, monkeypatch, capsys):
    pytest.importorskip("tqdm")
    sim.run_simulation(_small(digits), rounds=2, clients=4, seed=0, progress=True)
    assert "federated rounds" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    with pytest.raises(ImportError, match="pip install tqdm"):
        sim.run_simulation(_small(digits), rounds=1, clients=4, seed=0, progress=True)
    sim.run_simulation(_small(digits), rounds=1, clients=4, seed=0)  # auto: no bar, no error


# ----------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(rounds=0), ValueError, "rounds must be >= 1"),
        (dict(fraction=0.0), ValueError, r"fraction must be in \(0, 1\]"),
        (dict(fraction=1.5), ValueError, r"fraction must be in \(0, 1\]"),
        (dict(lr=-1.0), ValueError, "lr must be > 0"),
        (dict(batch_size=0), ValueError, "batch_size must be >= 1"),
        (dict(aggregator="median"), ValueError, "aggregator must be one of"),
        (dict(aggregator=3), TypeError, "aggregator must be a name"),
        (dict(model="cnn"), ValueError, "model must be one of"),
        (dict(model=object()), TypeError, "model must be a name or have"),
        (dict(dp_sgd=sim.DPSGD(), aggregator="dp-fedavg"), ValueError, "cannot be combined"),
        (dict(dp_sgd=1.0), TypeError, "dp_sgd must be a DPSGD"),
        (dict(executor="threads"), TypeError, "executor must be a concurrent.futures.Executor"),
        (dict(clients=4, partition=[np.arange(3)]), ValueError, "either partition or clients"),
        (dict(partition=[np.arange(3), np.array([], int)]), ValueError, r"partition\[1\]"),
        (dict(partition=[np.array([0, 10**6])]), ValueError, r"partition\[0\] must index rows"),
        (dict(clients=3, fraction=0.3, aggregator="secagg"), ValueError, ">= 2 clients per round"),
        (dict(seed=-1), ValueError, "seed must be >= 0"),
        (dict(clients=10**6), ValueError, "n_clients must be <= n_samples"),
    ],
)
def test_run_simulation_validation(digits, kwargs, error, match):
    with pytest.raises(error, match=match):
        sim.run_simulation(_small(digits), **kwargs)


def test_data_and_config_validation(digits):
    with pytest.raises(TypeError, match="data must be a Dataset"):
        sim.run_simulation((digits.X_train, digits.y_train))
    bad = digits.X_train.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"data\.X_train must contain only finite values"):
        sim.run_simulation(digits._replace(X_train=bad))
    with pytest.raises(ValueError, match=r"data\.X_test must have 64 columns"):
        sim.run_simulation(digits._replace(X_test=digits.X_test[:, :3]))
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        sim.SecureAggregation(dropout=1.0)
    with pytest.raises(ValueError, match="neighbors must be >= 2"):
        sim.SecureAggregation(neighbors=1)
    with pytest.raises(ValueError, match="noise_multiplier must be >= 0"):
        sim.DPSGD(noise_multiplier=-1.0)
    with pytest.raises(ValueError, match="clip_norm must be > 0"):
        sim.DPFedAvg(clip_norm=0.0)
    with pytest.raises(ValueError, match="key_bits must be >= 256"):
        sim.PaillierAggregation(key_bits=128)


# ------------------------------------------------------------------------------- CLI


def test_cli_simulate_prints_the_round_table(capsys):
    assert cli.main(["simulate", "--rounds", "2", "--clients", "6", "--seed", "0"]) == 0
    out = capsys.readouterr().out
    assert "round" in out and "test acc" in out
    assert len([ln for ln in out.splitlines() if ln[:1].isdigit()]) == 2


@pytest.mark.parametrize("mode", ["dp-fedavg", "dp-sgd", "secagg", "secagg+"])
def test_cli_simulate_modes(mode, capsys):
    args = ["simulate", "--rounds", "1", "--clients", "6", "--seed", "1", "--mode", mode]
    if mode.startswith("secagg"):
        args += ["--dropout", "0.1"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert mode in out
    if mode.startswith("dp"):
        assert "epsilon" in out


def test_cli_simulate_rejects_dropout_without_secagg(capsys):
    with pytest.raises(SystemExit):
        cli.main(["simulate", "--mode", "fedavg", "--dropout", "0.2"])
    assert "--dropout" in capsys.readouterr().err


def test_bench_case_runs():
    from ppml_fast._bench import simulation as bench

    cases = bench.cases(False)
    assert cases and cases[0].items > 0
    cases[0].native()
