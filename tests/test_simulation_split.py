"""The simulation's split-learning family (run_split_simulation): training, bytes, the
accounting against an independent accountant, threads == Dask, reproducibility, NoPeek,
leakage measures, table and figure, and bad arguments."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ppml_fast import simulation as sim
from ppml_fast.accounting import RDPAccountant

pytestmark = pytest.mark.filterwarnings("ignore::ppml_fast.InsecureRandomnessWarning")


@pytest.fixture(scope="module")
def cancer():
    return sim.load_dataset("breast-cancer")


@pytest.fixture(scope="module")
def digits():
    d = sim.load_dataset("digits")
    return sim.Dataset(d.X_train[:500], d.y_train[:500], d.X_test[:200], d.y_test[:200])


def _chance(data):
    return np.bincount(data.y_test).max() / data.y_test.size


@pytest.mark.parametrize("split", sim.SPLITS)
def test_each_split_trains_above_chance(cancer, split):
    res = sim.run_split_simulation(cancer, split=split, rounds=3, seed=0)
    assert len(res.history) == 3
    assert res.history[-1].test_accuracy > _chance(cancer) + 0.2
    assert res.history[-1].train_loss < res.history[0].train_loss * 1.5
    rec = res.history[-1]
    assert rec.epsilon is None and rec.label_epsilon is None
    assert rec.leakage_auc is None and rec.activation_dcor is None


@pytest.mark.parametrize("split", ["horizontal", "u-shaped", "vertical"])
def test_multiclass_and_logreg(digits, split):
    model = "mlp" if split == "u-shaped" else "logreg"
    res = sim.run_split_simulation(digits, split=split, model=model, rounds=3, seed=1, clients=3)
    assert res.history[-1].test_accuracy > 0.6  # 10 classes: chance is ~0.1
    leak = sim.run_split_simulation(digits, split=split, rounds=1, seed=1, leakage=True)
    assert leak.history[0].leakage_auc is None  # the norm attack is for binary tasks
    assert 0.0 <= leak.history[0].activation_dcor <= 1.0


def test_bytes_per_round_are_the_message_sizes(cancer):
    n, d = cancer.X_train.shape
    h1, h2 = 32, 16  # the "mlp" hidden widths
    res = sim.run_split_simulation(cancer, split="horizontal", rounds=2, clients=4, seed=2)
    for rec in res.history:
        assert rec.bytes_up == n * (h1 * 8 + 8)  # float64 activations, int64 labels
        assert rec.bytes_down == n * h1 * 8
    bottom = (d + 1) * h1 * 8
    assert res.history[0].bytes_models == 4 * bottom  # each client receives the bottom
    res = sim.run_split_simulation(cancer, split="u-shaped", rounds=1, clients=4, seed=2)
    head = (h2 + 1) * 2 * 8
    assert res.history[0].bytes_up == res.history[0].bytes_down == n * (h1 + h2) * 8
    assert res.history[0].bytes_models == 4 * (bottom + head)
    res = sim.run_split_simulation(cancer, split="splitfed", rounds=1, clients=5, fraction=0.4)
    rec = res.history[0]
    assert rec.clients == 2 and rec.bytes_models == 2 * 2 * bottom
    assert rec.bytes_up == rec.bytes_down + 8 * rec.bytes_down // (h1 * 8)
    res = sim.run_split_simulation(cancer, split="vertical", rounds=1, clients=3, seed=2)
    assert res.history[0].bytes_up == res.history[0].bytes_down == 3 * n * h1 * 8
    assert res.history[0].bytes_models == 0


def _client_sizes(cancer, clients, seed):
    """The client row counts the run's partition stream gives."""
    from ppml_fast import rng as prng

    master = np.random.SeedSequence(seed)
    gen = prng.default_rng(np.random.SeedSequence(master.entropy, spawn_key=(0,)))
    return [p.size for p in sim.iid_partition(cancer.y_train.size, clients, rng=gen)]


@pytest.mark.parametrize("split", ["horizontal", "u-shaped"])
def test_epsilon_matches_an_independent_accountant(cancer, split):
    """One Poisson-subsampled Gaussian event per step, q = B / n_k, ceil(n_k / B) steps
    per turn, the largest ε over the clients; the label accountant the same with the
    gradient noise halved (replace-one: a changed label moves a clipped gradient by up to
    2C), and only U-shaped, where the gradients leave the label holder (label-sharing
    sends the labels themselves: no label ε without label DP)."""
    rounds, clients, batch, sigma, delta = 3, 3, 20, 1.2, 1e-5
    res = sim.run_split_simulation(
        cancer,
        split=split,
        rounds=rounds,
        clients=clients,
        batch_size=batch,
        activation_noise=sigma,
        clip=2.0,
        gradient_noise=2 * sigma,
        delta=delta,
        seed=4,
    )
    sizes = _client_sizes(cancer, clients, 4)
    for r, rec in enumerate(res.history, start=1):
        cut, lab = [], []
        for n_k in sizes:
            steps = r * math.ceil(n_k / batch)
            for s, out in ((sigma, cut), (sigma, lab)):  # 2σ halved
                acct = RDPAccountant()
                acct.history = [(s, batch / n_k, steps)]
                out.append(acct.get_epsilon(delta))
        assert rec.epsilon == pytest.approx(max(cut), rel=1e-12)
        if split == "u-shaped":
            assert rec.label_epsilon == pytest.approx(max(lab), rel=1e-12)
        else:
            assert rec.label_epsilon is None
    assert res.history[-1].accounting is not None
    assert sum(s for _, _, s in res.history[-1].accounting) == rounds * math.ceil(
        min(sizes) / batch
    )


def test_vertical_and_splitfed_accounting(cancer):
    n = cancer.y_train.size
    for parties in (2, 3):
        # each party sends its own noised embedding of a sampled row: the row's features
        # go through a Gaussian mechanism of sensitivity sqrt(K) C, multiplier σ / sqrt(K)
        res = sim.run_split_simulation(
            cancer,
            split="vertical",
            clients=parties,
            rounds=2,
            batch_size=25,
            activation_noise=1.0,
            gradient_noise=1.0,
            seed=5,
        )
        acct = RDPAccountant()
        acct.history = [(1.0 / math.sqrt(parties), 25 / n, 2 * math.ceil(n / 25))]
        assert res.history[-1].epsilon == pytest.approx(acct.get_epsilon(1e-5), rel=1e-12)
        acct = RDPAccountant()
        acct.history = [(0.5, 25 / n, 2 * math.ceil(n / 25))]
        assert res.history[-1].label_epsilon == pytest.approx(acct.get_epsilon(1e-5), rel=1e-12)
    # SplitFed: a client is accounted only in the rounds it is sampled
    res = sim.run_split_simulation(
        cancer, split="splitfed", rounds=3, clients=4, fraction=0.5, activation_noise=1.0, seed=6
    )
    sizes = _client_sizes(cancer, 4, 6)
    eps = res.history[-1].epsilon
    candidates = []
    for n_k in sizes:
        for turns in range(1, 4):
            acct = RDPAccountant()
            acct.history = [(1.0, 32 / n_k, turns * math.ceil(n_k / 32))]
            candidates.append(acct.get_epsilon(1e-5))
    assert any(eps == pytest.approx(c, rel=1e-12) for c in candidates)


def test_label_dp_is_the_runs_epsilon(cancer):
    res = sim.run_split_simulation(cancer, split="horizontal", rounds=2, label_dp=2.0, seed=7)
    assert [r.label_epsilon for r in res.history] == [2.0, 2.0]
    both = sim.run_split_simulation(
        cancer, split="splitfed", rounds=1, label_dp=50.0, gradient_noise=1.0, seed=7
    )
    # label sharing sends the (randomized) labels themselves: the gradient perturbation
    # on the way back to their owner protects nothing of them, so it is not counted
    assert both.history[0].label_epsilon == 50.0


def test_seeded_runs_are_reproducible(cancer):
    kw = dict(split="u-shaped", rounds=2, activation_noise=0.5, nopeek=0.5, leakage=True)
    a = sim.run_split_simulation(cancer, seed=11, **kw)
    b = sim.run_split_simulation(cancer, seed=11, **kw)
    c = sim.run_split_simulation(cancer, seed=12, **kw)
    for x, y in zip(a.params, b.params, strict=True):
        np.testing.assert_array_equal(x, y)
    fields = ("train_loss", "test_accuracy", "epsilon", "bytes_up", "leakage_auc")
    for ra, rb in zip(a.history, b.history, strict=True):
        assert [getattr(ra, f) for f in fields] == [getattr(rb, f) for f in fields]
        assert ra.activation_dcor == rb.activation_dcor
    assert not np.array_equal(a.params.bottom, c.params.bottom)


def _same_run(a, b):
    for x, y in zip(a.params, b.params, strict=True):
        np.testing.assert_array_equal(x, y)
    for ra, rb in zip(a.history, b.history, strict=True):
        fields = ("train_loss", "test_accuracy", "epsilon", "label_epsilon", "bytes_up")
        assert [getattr(ra, f) for f in fields] == [getattr(rb, f) for f in fields]
        assert (ra.leakage_auc, ra.activation_dcor) == (rb.leakage_auc, rb.activation_dcor)


def test_splitfed_threads_equal_dask_bit_for_bit(cancer):
    distributed = pytest.importorskip("distributed")
    kw = dict(
        split="splitfed",
        rounds=2,
        clients=6,
        fraction=0.5,
        activation_noise=0.8,
        gradient_noise=0.5,
        nopeek=0.3,
        leakage=True,
        seed=13,
    )
    with distributed.Client(processes=False, n_workers=2, dashboard_address=None) as client:
        on_dask = sim.run_split_simulation(cancer, executor=client.get_executor(), **kw)
    _same_run(on_dask, sim.run_split_simulation(cancer, **kw))


def test_splitfed_threads_equal_a_dask_process_cluster(cancer):
    """Worker processes: the client turns are pickled and run elsewhere."""
    distributed = pytest.importorskip("distributed")
    kw = dict(split="splitfed", rounds=2, clients=4, activation_noise=1.0, seed=14)
    with (
        distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        on_dask = sim.run_split_simulation(cancer, executor=client.get_executor(), **kw)
    _same_run(on_dask, sim.run_split_simulation(cancer, **kw))


@pytest.mark.parametrize("split", ["horizontal", "vertical"])
def test_nopeek_lowers_the_activation_distance_correlation(cancer, split):
    kw = dict(split=split, rounds=4, leakage=True, seed=15)
    plain = sim.run_split_simulation(cancer, **kw)
    private = sim.run_split_simulation(cancer, nopeek=5.0, **kw)
    assert private.history[-1].activation_dcor < plain.history[-1].activation_dcor - 0.05


@pytest.mark.filterwarnings("ignore:the optimal RDP order:UserWarning")  # tiny ε at σ_g = 20
def test_gradient_perturbation_leakage_and_cut_dp_noise(cancer):
    """The measures are in range; heavy gradient noise leaves the attack near chance and
    activation noise lowers the activations' distance correlation."""
    plain = sim.run_split_simulation(cancer, split="vertical", rounds=2, leakage=True, seed=16)
    noisy = sim.run_split_simulation(
        cancer, split="vertical", rounds=2, leakage=True, seed=16, gradient_noise=20.0
    )
    dp = sim.run_split_simulation(
        cancer, split="vertical", rounds=2, leakage=True, seed=16, activation_noise=3.0
    )
    for rec in plain.history + noisy.history:
        assert 0.0 <= rec.leakage_auc <= 1.0
    assert abs(noisy.history[-1].leakage_auc - 0.5) < 0.1
    assert dp.history[-1].activation_dcor < plain.history[-1].activation_dcor - 0.2


def test_table_records_and_plot(cancer, tmp_path):
    res = sim.run_split_simulation(
        cancer, split="horizontal", rounds=2, activation_noise=1.0, leakage=True, seed=17
    )
    table = res.table()
    assert "norm-attack AUC" in table and "bytes up" in table and len(table.splitlines()) == 4
    md = sim.split_history_table(res.history, markdown=True)
    assert md.startswith("| round |")
    assert res.records()[0]["round"] == 1
    plain = sim.run_split_simulation(cancer, rounds=1, seed=17)
    assert "norm-attack" not in plain.table() and " - " in plain.table()
    pytest.importorskip("matplotlib")
    sim.plot_split(res, tmp_path / "split.png")
    sim.plot_split(plain.history, tmp_path / "plain.png")
    assert (tmp_path / "split.png").stat().st_size > 0
    with pytest.raises(TypeError, match="history must be a sequence of SplitRoundRecord"):
        sim.split_history_table(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"history\[0\] must be a SplitRoundRecord"):
        sim.split_history_table([1])  # type: ignore[list-item]


def test_a_given_executor_is_used_and_left_open(cancer):
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        res = sim.run_split_simulation(cancer, split="splitfed", rounds=1, executor=pool, seed=0)
        assert pool.submit(lambda: 1).result() == 1
    assert res.history[0].clients == 4


def test_default_run_by_name():
    res = sim.run_split_simulation(rounds=1, seed=0)
    assert res.history[0].clients == 4 and res.history[0].test_accuracy > 0.8
    assert isinstance(res.protocol, sim.split.SplitNN)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (dict(split="diagonal"), ValueError, "split must be 'horizontal' or"),
        (dict(model="cnn"), ValueError, "model must be 'mlp' or 'logreg'"),
        (dict(model=3), TypeError, "model must be 'mlp', 'logreg'"),
        (dict(model=(8, 0)), ValueError, "model hidden width must be >= 1"),
        (dict(cut=0), ValueError, "cut must be >= 1"),
        (dict(cut=4), ValueError, "cut must be <= 3"),
        (dict(model="logreg", split="u-shaped"), ValueError, "u_shaped split needs"),
        (dict(rounds=0), ValueError, "rounds must be >= 1"),
        (dict(fraction=0.0), ValueError, r"fraction must be in \(0, 1\]"),
        (dict(batch_size=0), ValueError, "batch_size must be >= 1"),
        (dict(lr=-1.0), ValueError, "lr must be > 0"),
        (dict(local_epochs=0), ValueError, "local_epochs must be >= 1"),
        (dict(clients=0), ValueError, "clients must be >= 1"),
        (dict(clients=10_000), ValueError, "clients must be <="),
        (dict(split="vertical", clients=31), ValueError, "clients must be <= 30"),
        (dict(combine="sum"), ValueError, "combine applies to the vertical split"),
        (dict(split="vertical", combine="max"), ValueError, "combine must be 'concat' or 'sum'"),
        (dict(activation_noise=-0.1), ValueError, "activation_noise must be >= 0"),
        (dict(clip=0.0), ValueError, "clip must be > 0"),
        (dict(nopeek="1"), TypeError, "nopeek must be a real number"),
        (dict(label_dp=0.0), ValueError, "label_dp must be > 0"),
        (dict(split="u-shaped", label_dp=1.0), ValueError, "label_dp applies"),
        (dict(split="vertical", label_dp=1.0), ValueError, "label_dp applies"),
        (dict(gradient_noise=float("inf")), ValueError, "gradient_noise must be finite"),
        (dict(gradient_clip=0.0), ValueError, "gradient_clip must be > 0"),
        (dict(delta=0.0), ValueError, r"delta must be in \(0, 1\)"),
        (dict(leakage="yes"), TypeError, "leakage must be"),
        (dict(seed=-1), ValueError, "seed must be >= 0"),
        (dict(executor="threads"), TypeError, "executor must be a concurrent.futures"),
    ],
)
def test_bad_arguments(cancer, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        sim.run_split_simulation(cancer, **kwargs)


def test_bad_data():
    with pytest.raises(TypeError, match="data must be a Dataset"):
        sim.run_split_simulation(np.zeros((3, 3)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name"):
        sim.run_split_simulation("mnist")
    d = sim.load_dataset("breast-cancer")
    with pytest.raises(ValueError, match="model sizes must start with the 30 features"):
        sim.run_split_simulation(d, model=sim.split.LayeredModel((10, 2)))


def test_norm_auc_of_a_round_with_one_class_is_none():
    from ppml_fast.simulation.split import _norm_auc

    g = [np.ones((4, 3)), np.full((2, 3), 2.0)]
    assert _norm_auc(g, [np.zeros(4, np.int64), np.zeros(2, np.int64)], 2) is None
    auc = _norm_auc(g, [np.zeros(4, np.int64), np.ones(2, np.int64)], 2)
    assert auc == 1.0  # the minority label (1) has the larger norms
