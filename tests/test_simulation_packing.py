"""The simulation's packed Paillier mode (``PaillierAggregation(packing=True)``, the default).

The packing itself is tested in test_paillier_packing.py; here: what the simulation builds
on it -- the layout (weights, clip, clients per round), the exact fixed-point aggregate,
the bytes and packing factor in the records, determinism and the settings' checks.
"""

import concurrent.futures
import math

import numpy as np
import pytest

from ppml_fast import paillier
from ppml_fast import simulation as sim
from ppml_fast.simulation.client import _ClientResult, _encrypt_packed
from ppml_fast.simulation.server import _Server

pytestmark = pytest.mark.filterwarnings("ignore::ppml_fast.InsecureRandomnessWarning")

KEY_BITS = 512  # small keys keep the tests fast; the layout maths does not depend on it
UNPACKED_PRECISION = 2.0**-24  # PaillierAggregation's default: exact power of 16


@pytest.fixture(scope="module")
def digits():
    return sim.load_dataset("digits")


def _small(digits, n_train=200, n_test=100):
    return sim.Dataset(
        digits.X_train[:n_train],
        digits.y_train[:n_train],
        digits.X_test[:n_test],
        digits.y_test[:n_test],
    )


def _frac_bits(bound, bits):
    """The largest f with rint(bound 2^f) <= 2^(bits-1) - 1 (the layout's quantisation)."""
    qmax = 2 ** (bits - 1) - 1
    f = bits - math.frexp(bound)[1] + 1  # bound 2^f >= 2^(bits-1): too large, go down
    while np.rint(math.ldexp(bound, f)) > qmax:
        f -= 1
    return f


def _slots(key_bits, bits, per_round):
    """Values per ciphertext: floor((|n| - 2) / (bits + ceil(log2(per_round))))."""
    return (key_bits - 2) // (bits + math.ceil(math.log2(per_round)))


# ------------------------------------------------------------- bytes and packing factor


def test_packed_bytes_per_client_drop_by_the_packing_factor(digits):
    data = _small(digits)
    kw = dict(rounds=2, clients=4, fraction=0.5, seed=11)
    packed = sim.run_simulation(data, aggregator=sim.PaillierAggregation(KEY_BITS), **kw)
    unpacked = sim.run_simulation(
        data, aggregator=sim.PaillierAggregation(KEY_BITS, packing=False), **kw
    )
    dim = packed.params.size
    for rp, ru in zip(packed.history, unpacked.history, strict=True):
        k = rp.packing_factor
        assert k == _slots(KEY_BITS, 32, 2) > 1
        assert ru.packing_factor == 1
        # what was sent is the ciphertexts (2|n| bits each) plus a short header
        ct_bytes = math.ceil(dim / k) * 2 * KEY_BITS // 8
        assert ct_bytes <= rp.bytes_per_client < ct_bytes + 512
        assert ru.bytes_per_client / rp.bytes_per_client >= k / 2
        assert rp.aggregation_s > 0 and ru.aggregation_s > 0
    assert "values/ciphertext" in packed.table()


def test_packing_factor_only_for_paillier_runs(digits):
    plain = sim.run_simulation(_small(digits), rounds=1, clients=4, seed=0)
    assert plain.history[0].packing_factor is None
    assert plain.records()[0]["packing_factor"] is None
    assert "values/ciphertext" not in plain.table()


# ------------------------------------------------------------------ the aggregate


@pytest.mark.parametrize("weighted", [True, False])
def test_one_round_packed_equals_unpacked_and_fedavg_within_the_quantisation_bound(
    digits, weighted
):
    """Same seed, one round: every client computes the same delta in all three runs, so
    the models differ only by the encodings' rounding of the round's mean.

    Per coordinate, with m clients per round, total weight D, largest weight W and the
    clip B = W * clip, the packed sum is sum_k rint(w_k x_k 2^f) 2^-f with f the largest
    with rint(B 2^f) <= 2^31 - 1: each term is off by at most 2^-f / 2, the mean by
    m 2^-f / (2 D). The unpacked encoding (precision 2^-24, an exact power of 16, rounded
    to nearest) is off by at most m 2^-25 / D. Plus a few ulps of the float mean.
    """
    data = _small(digits)
    parts = [np.arange(0, 30), np.arange(30, 80), np.arange(80, 200)]
    kw = dict(rounds=1, partition=parts, fraction=1.0, seed=12)
    fedavg = sim.run_simulation(data, aggregator=sim.FedAvg(weighted=weighted), **kw)
    packed = sim.run_simulation(
        data, aggregator=sim.PaillierAggregation(KEY_BITS, weighted=weighted), **kw
    )
    unpacked = sim.run_simulation(
        data,
        aggregator=sim.PaillierAggregation(KEY_BITS, weighted=weighted, packing=False),
        **kw,
    )
    sizes = [p.size for p in parts]
    m = len(parts)
    w_max = max(sizes) if weighted else 1
    denom = sum(sizes) if weighted else m
    f = _frac_bits(4.0 * w_max, 32)  # default clip 4.0, bits 32
    packed_err = m * 2.0**-f / 2 / denom
    unpacked_err = m * UNPACKED_PRECISION / 2 / denom
    ulps = 1e-14 * max(1.0, float(np.abs(fedavg.params).max()))
    assert np.max(np.abs(packed.params - fedavg.params)) <= packed_err + ulps
    assert np.max(np.abs(packed.params - unpacked.params)) <= packed_err + unpacked_err + ulps
    # and the rounding is visible: the packed run is not the float mean itself
    assert not np.array_equal(packed.params, fedavg.params)


def test_packed_and_unpacked_runs_agree_over_rounds(digits):
    """Over several rounds each round's encoding error (bounded above) feeds the next
    round's local training; training is a contraction-ish map here, so the final models
    stay within a small multiple of the per-round bound (a factor 10 per round is a
    loose allowance, as in test_secagg_equals_unweighted_fedavg_up_to_quantisation)."""
    data = _small(digits, n_train=400)
    kw = dict(rounds=3, clients=8, fraction=0.5, seed=13)
    packed = sim.run_simulation(data, aggregator=sim.PaillierAggregation(KEY_BITS), **kw)
    unpacked = sim.run_simulation(
        data, aggregator=sim.PaillierAggregation(KEY_BITS, packing=False), **kw
    )
    # IID split of 400 rows over 8 clients: each has 50, D = 4 * 50 per round
    f = _frac_bits(4.0 * 50, 32)
    per_round = 4 * (2.0**-f / 2 + UNPACKED_PRECISION / 2) / 200
    assert np.max(np.abs(packed.params - unpacked.params)) <= 3 * 10 * per_round
    assert [r.test_accuracy for r in packed.history] == pytest.approx(
        [r.test_accuracy for r in unpacked.history], abs=0.02
    )


def _aggregate(agg, counts, updates):
    """Encrypt each update as a client of weight counts[k] would, aggregate at the server."""
    counts = np.asarray(counts, np.float64)
    server = _Server(agg, len(counts), 1.0, updates.shape[1], counts)
    results = []
    for k, u in enumerate(updates):
        scale = server.client_scale(float(counts[k]))
        enc = _encrypt_packed(u.copy(), scale, server.public_key, server.packing)
        results.append(_ClientResult(enc, 1, None, enc.nbytes))
    return server, server.aggregate(results, counts, None)


@pytest.mark.parametrize(
    "counts",
    [
        [1000, 1000, 1000, 1000, 1000],  # every client at the largest weight
        [1, 7, 1000, 3, 64],
    ],
)
def test_weighted_headroom_covers_weight_times_clip_times_clients(counts):
    """The aggregate is the exact fixed-point sum sum_k rint(w_k clip(x_k) 2^f) 2^-f / D,
    also when every client sends +-clip at the largest weight W: the slots hold
    m * rint(W clip 2^f) <= m (2^(bits-1) - 1) without carrying into their neighbours.
    Values beyond the clip saturate at +-clip (they do not wrap)."""
    clip, bits = 0.5, 12
    agg = sim.PaillierAggregation(KEY_BITS, weighted=True, clip=clip, bits=bits)
    gen = np.random.default_rng(0)
    updates = gen.uniform(-0.6, 0.6, size=(len(counts), 40))
    updates[:, 0] = 50.0  # far beyond the clip: every client at +clip
    updates[:, 1] = -1e300  # and at -clip
    server, out = _aggregate(agg, counts, updates)
    assert server.packing_factor == _slots(KEY_BITS, bits, len(counts))
    w = np.asarray(counts, np.float64)
    f = _frac_bits(clip * w.max(), bits)
    q = np.rint(np.ldexp(np.clip(updates, -clip, clip) * w[:, None], f)).astype(np.int64)
    assert np.abs(q).max() <= 2 ** (bits - 1) - 1
    expected = np.ldexp(q.sum(axis=0).astype(np.float64), -f) / w.sum()
    np.testing.assert_array_equal(out.mean, expected)
    np.testing.assert_allclose(out.mean[:2], [clip, -clip], rtol=2.0 ** (1 - bits))
    assert out.survivors == len(counts)


def test_unweighted_packed_aggregate_is_the_exact_fixed_point_sum():
    clip, bits = 4.0, 32
    agg = sim.PaillierAggregation(KEY_BITS, weighted=False, clip=clip, bits=bits)
    gen = np.random.default_rng(1)
    updates = gen.normal(0.0, 2.0, size=(3, 100))  # some beyond +-4: clipped
    assert np.abs(updates).max() > clip
    _, out = _aggregate(agg, [10, 20, 30], updates)
    f = _frac_bits(clip, bits)
    q = np.rint(np.ldexp(np.clip(updates, -clip, clip), f)).astype(np.int64)
    np.testing.assert_array_equal(out.mean, np.ldexp(q.sum(axis=0).astype(np.float64), -f) / 3)


def test_clients_send_packed_arrays_sized_for_the_round(digits):
    """Each client's layout has clients = the clients sampled per round (the most a sum
    holds), so the server's sum of one round fits, and the server decrypts it whole."""
    counts = np.array([50.0] * 8)
    agg = sim.PaillierAggregation(KEY_BITS)
    server = _Server(agg, 8, 0.5, 5, counts)
    assert server.packing is not None and server.packing.clients == 4
    assert server.packing.bound == 4.0 * 50
    enc = _encrypt_packed(np.zeros(5), 50.0, server.public_key, server.packing)
    assert isinstance(enc, paillier.EncryptedPackedArray)
    assert enc.clients == 4 and enc.slots == server.packing_factor


# ------------------------------------------------------------------------ determinism


def test_seeded_packed_run_is_the_same_on_any_thread_pool(digits):
    data = _small(digits)
    agg = sim.PaillierAggregation(KEY_BITS)
    kw = dict(rounds=2, clients=6, fraction=0.5, seed=14, aggregator=agg)
    a = sim.run_simulation(data, **kw)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        b = sim.run_simulation(data, executor=pool, **kw)
    np.testing.assert_array_equal(a.params, b.params)
    assert [r.train_loss for r in a.history] == [r.train_loss for r in b.history]
    # one client per round: no headroom bits, still exact
    one = sim.run_simulation(data, rounds=1, clients=4, fraction=0.25, seed=14, aggregator=agg)
    assert one.history[0].packing_factor == _slots(KEY_BITS, 32, 1)


# ------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(packing="yes"), TypeError, "packing must be a bool"),
        (dict(packing=None), TypeError, "packing must be a bool"),
        (dict(weighted="no"), TypeError, "weighted must be a bool"),
        (dict(clip="1"), TypeError, "clip must be a real number"),
        (dict(clip=0.0), ValueError, "clip must be > 0"),
        (dict(clip=-1.0), ValueError, "clip must be > 0"),
        (dict(clip=math.inf), ValueError, "clip must be finite"),
        (dict(clip=math.nan), ValueError, "clip must be finite"),
        (dict(bits=2.5), TypeError, "bits must be an int"),
        (dict(bits=True), TypeError, "bits must be an int"),
        (dict(bits=1), ValueError, "bits must be >= 2"),
        (dict(bits=54), ValueError, "bits must be <= 53"),
        (dict(key_bits=255), ValueError, "key_bits must be >= 256"),
        (dict(precision=0.0), ValueError, "precision must be > 0"),
    ],
)
def test_paillier_aggregation_settings_are_checked(kwargs, error, match):
    with pytest.raises(error, match=match):
        sim.PaillierAggregation(**kwargs)


def _many_rows(n):
    gen = np.random.default_rng(0)
    X = gen.normal(size=(n, 2))
    y = (X[:, 0] > 0).astype(np.int64)
    return sim.Dataset(X, y, X[:10], y[:10])


def test_layout_that_cannot_fit_is_refused_before_any_round():
    # 3000 clients per round need 12 headroom bits: 53 + 12 > 64
    data = _many_rows(3000)
    agg = sim.PaillierAggregation(256, bits=53, weighted=False)
    with pytest.raises(
        ValueError, match=r"bits \+ ceil\(log2\(clients per round\)\) must be <= 64"
    ):
        sim.run_simulation(data, clients=3000, fraction=1.0, rounds=1, seed=0, aggregator=agg)
    # the same clients without packing, or with fewer bits, are fine to set up
    _server = _Server(sim.PaillierAggregation(256, bits=52, weighted=False), 3000, 1.0, 3)
    assert _server.packing is not None and _server.packing.clients == 3000


def test_clip_times_weight_must_be_finite_and_quantisable(digits):
    data = _small(digits)
    with pytest.raises(ValueError, match="clip \\* largest weight must be finite"):
        sim.run_simulation(
            data, rounds=1, clients=4, seed=0, aggregator=sim.PaillierAggregation(256, clip=1e308)
        )
    # a subnormal clip quantises to 0 at every frac_bits: no layout
    with pytest.raises(ValueError, match=r"PaillierAggregation\(clip=.*no packed layout"):
        sim.run_simulation(
            data,
            rounds=1,
            clients=4,
            seed=0,
            aggregator=sim.PaillierAggregation(256, clip=1e-320, weighted=False),
        )
