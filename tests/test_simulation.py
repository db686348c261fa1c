"""Federated-learning simulation: models, partitions, aggregators, accounting, executors."""

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


# ----------------------------------------------------------------------------- models

MODELS = {
    "logreg-binary": (sim.LogisticRegression(), 2),
    "logreg-softmax": (sim.LogisticRegression(), 4),
    "logreg-softmax-2": (sim.LogisticRegression(multinomial=True), 2),
    "mlp-tanh": (sim.MLP(hidden=5, activation="tanh"), 3),
    "mlp-relu": (sim.MLP(hidden=5, activation="relu"), 3),
}


def _problem(model, k, b=7, d=4, seed=0):
    gen = np.random.default_rng(seed)
    params = model.init(gen, d, k) + 0.3 * gen.standard_normal(model.init(gen, d, k).size)
    return params, gen.standard_normal((b, d)), gen.integers(0, k, b)


@pytest.mark.parametrize("name", MODELS)
def test_gradient_matches_central_differences(name):
    model, k = MODELS[name]
    params, X, y = _problem(model, k)
    g = model.gradient(params, X, y)
    h = 1e-6
    fd = np.empty_like(params)
    for i in range(params.size):
        e = np.zeros_like(params)
        e[i] = h
        fd[i] = (model.loss(params + e, X, y) - model.loss(params - e, X, y)) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("name", MODELS)
def test_per_example_gradients_are_single_example_gradients(name):
    model, k = MODELS[name]
    params, X, y = _problem(model, k)
    G = model.per_example_gradients(params, X, y)
    assert G.shape == (X.shape[0], params.size)
    for i in range(X.shape[0]):
        np.testing.assert_allclose(
            G[i], model.gradient(params, X[i : i + 1], y[i : i + 1]), rtol=1e-12, atol=1e-14
        )
    np.testing.assert_allclose(G.mean(axis=0), model.gradient(params, X, y), rtol=1e-12, atol=1e-14)
    assert model.per_example_gradients(params, X[:0], y[:0]).shape == (0, params.size)


def test_parameter_counts_and_predictions():
    lr, mlp = sim.LogisticRegression(), sim.MLP(hidden=8)
    assert lr.init(0, 64, 2).size == 65
    assert lr.init(0, 64, 10).size == 650
    assert sim.LogisticRegression(multinomial=True).init(0, 64, 2).size == 130
    assert mlp.init(0, 64, 10).size == 64 * 8 + 8 + 8 * 10 + 10
    X = np.array([[1.0], [-1.0]])
    w = np.array([5.0, 0.0])  # binary: logit = 5x
    assert list(lr.predict(w, X)) == [1, 0]
    assert lr.accuracy(w, X, np.array([1, 0])) == 1.0
    # the same seed gives the same MLP initialisation
    np.testing.assert_array_equal(mlp.init(3, 5, 3), mlp.init(3, 5, 3))


def test_model_validation():
    lr = sim.LogisticRegression()
    p = lr.init(0, 3, 4)
    X, y = np.zeros((2, 3)), np.array([0, 1])
    with pytest.raises(ValueError, match="multiple of n_features"):
        lr.loss(p[:-1], X, y)
    with pytest.raises(ValueError, match="X must be 2-d"):
        lr.gradient(p, np.zeros(3), y)
    with pytest.raises(ValueError, match=r"y must have shape \(2,\)"):
        lr.gradient(p, X, np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="integer class labels"):
        lr.gradient(p, X, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="n_classes must be >= 2"):
        lr.init(0, 3, 1)
    with pytest.raises(ValueError, match="activation must be one of"):
        sim.MLP(activation="sigmoid")
    with pytest.raises(ValueError, match="params must have"):
        sim.MLP(hidden=4).loss(np.zeros(7), X, y)
    with pytest.raises(ValueError, match="at least one row"):
        lr.accuracy(p, X[:0], y[:0])


# ------------------------------------------------------------------------- partitions


def test_iid_partition_sizes_and_cover():
    parts = sim.iid_partition(103, 10, rng=1)
    sizes = [p.size for p in parts]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == 103
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(103))
    assert all(
        np.array_equal(a, b) for a, b in zip(parts, sim.iid_partition(103, 10, rng=1), strict=True)
    )
    with pytest.raises(ValueError, match="n_clients must be <= n_samples = 5"):
        sim.iid_partition(5, 6)
    with pytest.raises(ValueError, match="n_clients must be >= 1"):
        sim.iid_partition(5, 0)


def _max_class_share(parts, y):
    return float(np.mean([np.bincount(y[p]).max() / p.size for p in parts]))


def test_dirichlet_partition_label_skew(digits):
    y = digits.y_train
    skewed = sim.dirichlet_partition(y, 20, 0.1, rng=0)
    flat = sim.dirichlet_partition(y, 20, 1000.0, rng=0)
    for parts in (skewed, flat):
        assert len(parts) == 20 and min(p.size for p in parts) >= 1
        np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(y.size))
    # digits has 10 balanced classes: an IID client's largest class holds ~10-20% of it
    assert _max_class_share(skewed, y) > 0.5
    assert _max_class_share(flat, y) < 0.25
    assert _max_class_share(sim.iid_partition(y.size, 20, rng=0), y) < 0.25


def test_dirichlet_partition_validation(digits):
    y = digits.y_train
    with pytest.raises(ValueError, match=r"no Dirichlet.*raise alpha or lower n_clients"):
        sim.dirichlet_partition(y, 200, 0.001, rng=0, max_tries=3)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        sim.dirichlet_partition(y, 5, 0.0)
    with pytest.raises(ValueError, match="labels must be a 1-d integer array"):
        sim.dirichlet_partition(y.astype(float), 5, 1.0)
    with pytest.raises(ValueError, match="n_clients \\* min_size must be <= len"):
        sim.dirichlet_partition(y[:10], 5, 1.0, min_size=3)
    parts = sim.dirichlet_partition(y, 10, 0.5, rng=0, min_size=20)
    assert min(p.size for p in parts) >= 20


def test_load_dataset():
    d = sim.load_dataset("breast-cancer", test_fraction=0.2)
    assert d.X_train.shape[1] == 30 and d.n_classes == 2
    assert d.X_test.shape[0] == round(0.2 * 569)
    np.testing.assert_allclose(d.X_train.mean(axis=0), 0, atol=1e-12)
    with pytest.raises(ValueError, match="name must be one of"):
        sim.load_dataset("mnist")


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
    enc = sim.run_simulation(data, aggregator=sim.PaillierAggregation(key_bits=512), **kw)
    assert np.max(np.abs(enc.params - plain.params)) < 1e-5
    # 650 ciphertexts of 2 x 512 bits each, plus the serialisation's header and exponents
    assert all(r.bytes_per_client >= 650 * 128 for r in enc.history)


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
        dict(rounds=1, clients=4, aggregator=sim.PaillierAggregation(key_bits=512)),
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
