"""The simulation's ``ckks`` mode: equal to FedAvg within the stated precision, key roles,
records (bytes, clipping, phases), executors, bad options and the CLI.

Tolerances come from the aggregator's ``precision``: the run is refused unless the CKKS
parameters bound every coordinate of a round's mean update within it (with probability
at least 1 - 1e-9 per round, :func:`ppml_fast.ckks.error_bound`).
"""

import concurrent.futures
import math

import numpy as np
import pytest

pytest.importorskip("tenseal")

from ppml_fast import ckks, cli
from ppml_fast import simulation as sim
from ppml_fast.simulation.server import _Server

# Seeded runs feed seeded streams to client sampling on purpose (reproducible tests).
pytestmark = pytest.mark.filterwarnings("ignore::ppml_fast.InsecureRandomnessWarning")


@pytest.fixture(scope="module")
def digits():
    return sim.load_dataset("digits")


def _small(digits, n_train=240, n_test=120):
    return sim.Dataset(
        digits.X_train[:n_train],
        digits.y_train[:n_train],
        digits.X_test[:n_test],
        digits.y_test[:n_test],
    )


def _uneven(n_train):
    """Four clients of different sizes (so weighting matters)."""
    cuts = np.cumsum([n_train // 10, n_train // 5, n_train * 3 // 10])
    return np.split(np.arange(n_train), cuts)


def _max_row_norm(X):
    """max_i ||(x_i, 1)||_2: the bias is a feature equal to 1."""
    return float(np.sqrt(np.max(np.sum(X**2, axis=1)) + 1.0))


class _Capturing(concurrent.futures.ThreadPoolExecutor):
    """A thread pool that keeps every client task's future, in submission order (round
    by round, client order within a round)."""

    def __init__(self):
        super().__init__(2)
        self.futures = []

    def submit(self, fn, /, *args, **kwargs):
        fut = super().submit(fn, *args, **kwargs)
        self.futures.append(fut)
        return fut

    @property
    def results(self):
        return [f.result() for f in self.futures]


# ------------------------------------------------------------------ equal to FedAvg


@pytest.mark.parametrize("symmetric", [False, True])
def test_one_round_equals_fedavg_within_precision(digits, symmetric):
    """After one round both runs moved the same initial model by their round's mean, so
    the models differ by exactly the mean's decryption error: at most ``precision`` per
    coordinate. The loss's gradient has norm at most sqrt(2) max_i ||(x_i, 1)|| (mean
    cross-entropy), which bounds the loss difference through the models' distance."""
    data = _small(digits)
    kw = dict(rounds=1, partition=_uneven(240), fraction=0.5, seed=3)
    agg = sim.CKKSAggregation(symmetric=symmetric)
    plain = sim.run_simulation(data, **kw)
    enc = sim.run_simulation(data, aggregator=agg, **kw)
    diff = enc.params - plain.params
    assert np.max(np.abs(diff)) <= agg.precision
    loss_tol = math.sqrt(2) * _max_row_norm(data.X_train) * math.sqrt(diff.size) * agg.precision
    rec, ref = enc.history[0], plain.history[0]
    assert abs(rec.train_loss - ref.train_loss) <= loss_tol
    assert rec.clipped == 0 and rec.survivors == rec.clients == 2


@pytest.mark.parametrize("symmetric", [False, True])
def test_rounds_equal_fedavg_within_propagated_precision(digits, symmetric):
    """Over several rounds a round's error moves the next round's starting model. With a
    learning rate at most 2 / L, L = max_i ||(x_i, 1)||^2 / 2 bounding the smoothness of
    every batch's mean softmax cross-entropy (Böhning's bound on its Hessian), each local
    step is a gradient step on a convex L-smooth loss, hence non-expansive in the 2-norm;
    the round's weighted mean of the clients' models is then non-expansive too. So after
    r rounds the models are within r sqrt(P) precision in the 2-norm (each round adds at
    most sqrt(P) precision), and the losses within sqrt(2) max ||(x_i, 1)|| times that."""
    data = _small(digits)
    row = _max_row_norm(data.X_train)
    lr = 2.0 / (row**2 / 2.0)
    kw = dict(rounds=3, partition=_uneven(240), fraction=0.5, seed=4, lr=lr)
    agg = sim.CKKSAggregation(symmetric=symmetric)
    plain = sim.run_simulation(data, **kw)
    enc = sim.run_simulation(data, aggregator=agg, **kw)
    p = plain.params.size
    assert np.linalg.norm(enc.params - plain.params) <= kw["rounds"] * math.sqrt(p) * agg.precision
    for r, (a, b) in enumerate(zip(enc.history, plain.history, strict=True), 1):
        assert abs(a.train_loss - b.train_loss) <= math.sqrt(2) * row * r * math.sqrt(p) * (
            agg.precision
        )
        assert a.clipped == 0
    # the model did move: the comparison is not between two untrained models
    assert np.max(np.abs(plain.params)) > 1e3 * agg.precision


@pytest.mark.parametrize(
    "agg",
    [
        sim.CKKSAggregation(weighted=False),
        sim.CKKSAggregation(preset="general"),
        sim.CKKSAggregation(preset="general", client_weighting=False),
        sim.CKKSAggregation(preset="general", client_weighting=False, symmetric=True),
    ],
    ids=["unweighted", "general", "server-weights", "server-weights-symmetric"],
)
def test_other_settings_equal_their_fedavg(digits, agg):
    data = _small(digits)
    kw = dict(rounds=1, partition=_uneven(240), fraction=0.5, seed=5)
    plain = sim.run_simulation(data, aggregator=sim.FedAvg(weighted=agg.weighted), **kw)
    enc = sim.run_simulation(data, aggregator=agg, **kw)
    assert np.max(np.abs(enc.params - plain.params)) <= agg.precision
    # the uneven split makes the weighting visible: the other weighting is far off
    other = sim.run_simulation(data, aggregator=sim.FedAvg(weighted=not agg.weighted), **kw)
    assert np.max(np.abs(other.params - plain.params)) > 1e3 * agg.precision


def test_clipping_is_counted_and_applied(digits):
    """A small bound clips: the model equals FedAvg of the clipped updates (computed here
    from the plaintext run's own updates) within precision, and every clipped value is
    counted."""
    data = _small(digits)
    parts = _uneven(240)
    kw = dict(rounds=1, partition=parts, fraction=1.0, seed=6)  # every client, in order
    with _Capturing() as pool:
        plain = sim.run_simulation(data, executor=pool, **kw)
        updates = [np.asarray(r.update) for r in pool.results]
    sizes = np.array([p.size for p in parts], dtype=np.float64)
    bound = float(np.quantile(np.abs(np.concatenate(updates)), 0.9))
    agg = sim.CKKSAggregation(bound=bound)
    enc = sim.run_simulation(data, aggregator=agg, **kw)
    mean = sum(n * u for n, u in zip(sizes, updates, strict=True)) / sizes.sum()
    clipped_mean = (
        sum(n * np.clip(u, -bound, bound) for n, u in zip(sizes, updates, strict=True))
        / sizes.sum()
    )
    np.testing.assert_allclose(plain.params, mean, rtol=0, atol=1e-12)  # init is zero
    assert np.max(np.abs(enc.params - clipped_mean)) <= agg.precision
    expected = sum(int(np.count_nonzero(np.abs(u) > bound)) for u in updates)
    assert enc.history[0].clipped == expected > 0


# ------------------------------------------------------------------ records and keys


@pytest.mark.parametrize("symmetric", [False, True])
def test_records_carry_bytes_phases_and_slots(digits, symmetric):
    data = _small(digits)
    agg = sim.CKKSAggregation(symmetric=symmetric)
    with _Capturing() as pool:
        res = sim.run_simulation(
            data, rounds=2, clients=4, fraction=0.5, seed=7, aggregator=agg, executor=pool
        )
        sent = [r.update.nbytes for r in pool.results]
        ups = [r.update for r in pool.results]
    assert all(isinstance(u, ckks.EncryptedUpdate) for u in ups)
    per_round = [sent[:2], sent[2:]]
    slots = ckks.context_parameters(ups[0].context).slots
    for rec, nbytes in zip(res.history, per_round, strict=True):
        assert rec.bytes_per_client == max(nbytes)
        assert rec.packing_factor == slots
        assert rec.encrypt_s is not None and 0 < rec.encrypt_s <= rec.client_s
        assert rec.decrypt_s is not None and 0 < rec.decrypt_s <= rec.aggregation_s
        assert rec.clipped == 0
    assert ups[0].ciphertexts == -(-res.params.size // slots)
    table = res.table()
    for column in ("bytes/client", "client s", "aggregation s", "values/ciphertext"):
        assert column in table
    for column in ("encrypt s", "decrypt s", "clipped"):
        assert column in table
    assert "clipped" not in sim.run_simulation(data, rounds=1, clients=4, seed=7).table()


def test_symmetric_halves_the_bytes(digits):
    data = _small(digits)
    kw = dict(rounds=1, clients=4, fraction=0.5, seed=8)
    asym = sim.run_simulation(data, aggregator=sim.CKKSAggregation(), **kw)
    sym = sim.run_simulation(data, aggregator=sim.CKKSAggregation(symmetric=True), **kw)
    a, s = asym.history[0].bytes_per_client, sym.history[0].bytes_per_client
    assert s <= 0.55 * a  # seeded ciphertexts: one of the two polynomials is a seed


@pytest.mark.parametrize("symmetric", [False, True])
def test_aggregator_holds_only_the_public_context(symmetric):
    agg = sim.CKKSAggregation(symmetric=symmetric)
    server = _Server(agg, n_clients=4, fraction=0.5, dim=100, counts=np.array([5, 6, 7, 8]))
    assert not server.ckks_public.is_private()
    client_ctx = ckks.load_context(server.ckks_client.context)
    # the clients get the secret key only when they hold it (symmetric)
    assert client_ctx.is_private() is symmetric
    x = np.linspace(-1, 1, 100)
    enc = ckks.encrypt(client_ctx, x, workers=1)
    linked = ckks.load_update(enc.serialize(), server.ckks_public)
    avg = linked + linked
    with pytest.raises(ValueError, match="secret key"):
        avg.decrypt()
    # the key holder can
    np.testing.assert_allclose(avg.decrypt(server._ckks_secret), 2 * x, atol=agg.precision)


def test_the_name_ckks_is_an_aggregator(digits):
    res = sim.run_simulation(_small(digits), rounds=1, clients=4, seed=0, aggregator="ckks")
    assert res.history[0].packing_factor is not None


# ------------------------------------------------------------------------ executors


def test_threads_and_dask_local_cluster_agree_within_precision(digits):
    """Client tasks are pure functions of their inputs and seeds; the ciphertexts carry
    TenSEAL's own randomness, so a Dask run equals a thread-pool run within precision
    (both are within precision of plaintext FedAvg after one round), and the encrypted
    updates survive pickling without their context."""
    distributed = pytest.importorskip("distributed")
    data = _small(digits)
    kw = dict(rounds=1, partition=_uneven(240), fraction=0.5, seed=9)
    plain = sim.run_simulation(data, **kw)
    with (
        distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        executor = client.get_executor()
        for agg in (sim.CKKSAggregation(), sim.CKKSAggregation(symmetric=True)):
            a = sim.run_simulation(data, aggregator=agg, executor=executor, **kw)
            b = sim.run_simulation(data, aggregator=agg, **kw)
            assert np.max(np.abs(a.params - plain.params)) <= agg.precision
            assert np.max(np.abs(b.params - plain.params)) <= agg.precision
            for ra, rb in zip(a.history, b.history, strict=True):
                assert (ra.clients, ra.survivors, ra.clipped, ra.packing_factor) == (
                    rb.clients,
                    rb.survivors,
                    rb.clipped,
                    rb.packing_factor,
                )
                # same ciphertext count and layout; the compressed size may differ a little
                assert abs(ra.bytes_per_client - rb.bytes_per_client) <= 0.01 * rb.bytes_per_client


# ---------------------------------------------------------------------- bad options


@pytest.mark.parametrize(
    ("kwargs", "exc", "name"),
    [
        (dict(preset="fast"), ValueError, "preset"),
        (dict(preset=None), ValueError, "preset"),
        (dict(symmetric="yes"), TypeError, "symmetric"),
        (dict(precision=0.0), ValueError, "precision"),
        (dict(precision=float("nan")), ValueError, "precision"),
        (dict(bound=-1.0), ValueError, "bound"),
        (dict(bound="1"), TypeError, "bound"),
        (dict(weighted=2), TypeError, "weighted"),
        (dict(client_weighting=None), TypeError, "client_weighting"),
        (dict(security=100), ValueError, "security"),
        (dict(security=128.0), TypeError, "security"),
        (dict(client_weighting=False), ValueError, "client_weighting"),
    ],
)
def test_bad_options_raise_with_their_names(kwargs, exc, name):
    with pytest.raises(exc, match=name):
        sim.CKKSAggregation(**kwargs)


def test_unweighted_server_weighting_is_allowed_on_the_aggregation_preset():
    # without weights there is nothing for the server to multiply
    assert sim.CKKSAggregation(weighted=False, client_weighting=False).preset == "aggregation"


@pytest.mark.parametrize(
    ("agg", "name"),
    [
        (sim.CKKSAggregation(precision=1e-30), "precision"),
        (sim.CKKSAggregation(preset="general", precision=1e-30), "precision"),
        (sim.CKKSAggregation(preset="general", bound=1e9), "bound"),
        (sim.CKKSAggregation(preset="general", security=192), "security"),
    ],
)
def test_settings_the_parameters_cannot_meet_are_refused_before_a_round(digits, agg, name):
    with pytest.raises(ValueError, match=name):
        sim.run_simulation(_small(digits), rounds=1, clients=4, seed=0, aggregator=agg)


# ------------------------------------------------------------------------------ CLI


@pytest.mark.parametrize("extra", [[], ["--symmetric"]])
def test_cli_simulate_ckks(extra, capsys):
    args = ["simulate", "--mode", "ckks", "--rounds", "1", "--clients", "4", "--seed", "0"]
    assert cli.main([*args, "--quiet", *extra]) == 0
    out = capsys.readouterr().out
    assert "ckks" in out
    for column in ("bytes/client", "client s", "aggregation s", "values/ciphertext", "clipped"):
        assert column in out
    assert len([ln for ln in out.splitlines() if ln[:1].isdigit()]) == 1


def test_cli_symmetric_needs_ckks(capsys):
    with pytest.raises(SystemExit):
        cli.main(["simulate", "--mode", "paillier", "--symmetric"])
    assert "--symmetric" in capsys.readouterr().err
