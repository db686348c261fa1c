"""ppml_fast.ckks: parameters and their security check, the error model, encryption round
trips, arithmetic, weighted sums, the key split, bytes, and bad input.

Decryption errors are checked against ``ckks.error_bound`` at failure probability 1e-9
per assertion (the bound's own false-alarm rate: a union bound over the slots), never
against a constant taken from a run. Random cases run on a fixed seed and one fresh seed
per run (rerun with ``PPML_TEST_SEED=<seed>``).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import pickle

import numpy as np
import pytest

ts = pytest.importorskip("tenseal")

from ppml_fast import ckks  # noqa: E402
from ppml_fast._errors import EncodingOverflowError  # noqa: E402
from ppml_fast.aggregation import encrypted_fedavg  # noqa: E402

FRESH = int(os.environ.get("PPML_TEST_SEED") or np.random.SeedSequence().entropy % 2**63)
SEEDS = [20261207, FRESH]


@pytest.fixture(scope="module")
def ctx():
    """The general preset (N = 8192, [60, 40, 40, 60], 2^40), without Galois keys."""
    return ckks.make_context("general", galois_keys=False)


@pytest.fixture(scope="module")
def sym_ctx():
    return ckks.make_context("general", symmetric=True, galois_keys=False)


@pytest.fixture(scope="module")
def agg_params():
    return ckks.aggregation_parameters(8, bound=4.0, precision=1e-6, values=20000)


@pytest.fixture(scope="module")
def agg_ctx(agg_params):
    return ckks.make_context(agg_params)


def bound_for(params, n, **kw):
    return ckks.error_bound(params, values=n, **kw)


# ----------------------------------------------------------------------------- parameters


def test_security_table_is_the_standard_and_refuses_above_it():
    assert ckks.max_coeff_bits(8192) == 218
    assert ckks.max_coeff_bits(4096, 192) == 75
    assert ckks.max_coeff_bits(32768, 256) == 476
    # Exactly at the bound is accepted; one bit above is refused with the bound named.
    ckks.CKKSParameters(4096, (60, 49), 2.0**40)
    with pytest.raises(ValueError, match=r"110 bits, above the 109 bits.*128-bit"):
        ckks.CKKSParameters(4096, (60, 50), 2.0**40)
    with pytest.raises(ValueError, match=r"200 bits, above the 152 bits.*192-bit"):
        ckks.general_parameters(security=192)
    with pytest.raises(ValueError, match="218 bits"):
        ckks.make_context(poly_modulus_degree=8192, coeff_mod_bit_sizes=[60, 60, 60, 60])
    with pytest.raises(ValueError, match="192-bit"):
        ckks.make_context("general", security=192)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"poly_modulus_degree": 3000}, ValueError, "power of two"),
        ({"poly_modulus_degree": 65536}, ValueError, "power of two"),
        ({"coeff_mod_bit_sizes": (60,)}, ValueError, "at least 2 primes"),
        ({"coeff_mod_bit_sizes": (61, 40)}, ValueError, r"\[10, 60\]"),
        ({"coeff_mod_bit_sizes": "60,40"}, TypeError, "sequence of ints"),
        ({"scale": 2.0**60}, ValueError, "scale must be in"),
        ({"scale": -1.0}, ValueError, "scale must be > 0"),
        ({"scale": float("nan")}, ValueError, "finite"),
        ({"security": 100}, ValueError, "128, 192 or 256"),
        ({"poly_modulus_degree": 4096.0}, TypeError, "int"),
    ],
)
def test_bad_parameters_are_refused_by_name(kwargs, exc, match):
    base = {"poly_modulus_degree": 4096, "coeff_mod_bit_sizes": (40, 20, 40), "scale": 2.0**20}
    base.update(kwargs)
    with pytest.raises(exc, match=match):
        ckks.CKKSParameters(**base)


def test_aggregation_preset_is_the_smallest_ring_that_meets_the_precision():
    for clients, precision in [(10, 1e-4), (100, 1e-6), (1000, 1e-8), (2, 1e-11)]:
        p = ckks.aggregation_parameters(clients, bound=1.0, precision=precision, values=10**6)
        assert p.levels == 0 and len(p.coeff_mod_bit_sizes) == 2
        assert sum(p.coeff_mod_bit_sizes) <= ckks.max_coeff_bits(p.poly_modulus_degree)
        err = ckks.error_bound(p, values=10**6, clients=clients)
        assert err <= precision
        # Room for the sum: clients × bound below the modulus over the scale.
        assert clients * 1.0 <= p.max_value / 2
        # The next smaller ring fails (its largest data prime leaves too little).
        smaller = p.poly_modulus_degree // 2
        if smaller >= 2048:
            limit = ckks.max_coeff_bits(smaller)
            data = min(60, limit - 20)
            scale_bits = data - 1 - (int(np.ceil(np.log2(clients))) + 2)
            if scale_bits >= 10:
                q = ckks.CKKSParameters(smaller, (data, limit - data), 2.0**scale_bits)
                assert ckks.error_bound(q, values=10**6, clients=clients) > precision
    with pytest.raises(ValueError, match="precision must be reachable"):
        ckks.aggregation_parameters(10**6, bound=1e6, precision=1e-30)
    with pytest.raises(ValueError, match="clients must be >= 1"):
        ckks.aggregation_parameters(0)
    with pytest.raises(ValueError, match="bound must be > 0"):
        ckks.aggregation_parameters(5, bound=0.0)


def test_context_parameters_reads_a_tenseal_context_made_elsewhere():
    raw = ts.context(ts.SCHEME_TYPE.CKKS, 8192, coeff_mod_bit_sizes=[60, 40, 40, 60])
    raw.global_scale = 2**40
    p = ckks.context_parameters(raw)
    assert p.poly_modulus_degree == 8192 and p.coeff_mod_bit_sizes == (60, 40, 40, 60)
    assert len(p.primes) == 4 and all(q % (2 * 8192) == 1 for q in p.primes)
    with pytest.raises(ValueError, match="192-bit"):
        ckks.context_parameters(raw, security=192)
    with pytest.raises(TypeError, match=r"tenseal\.Context"):
        ckks.context_parameters("ctx")


# ----------------------------------------------------------------------------- round trips


def test_the_seed_example_two_x_plus_one():
    # A context with N = 8192 and scale 2^40, Galois keys, encrypt, 2·x + 1, decrypt.
    context = ckks.make_context(
        poly_modulus_degree=8192,
        coeff_mod_bit_sizes=[60, 40, 40, 60],
        scale=2**40,
        galois_keys=True,
    )
    assert context.has_galois_keys()
    x = [0.0, 1.0, 2.0, 3.0, 4.0]
    enc = ckks.encrypt(context, x)
    res = (2 * enc + 1).decrypt()
    p = ckks.context_parameters(context)
    np.testing.assert_allclose(res, 2 * np.array(x) + 1, atol=2 * bound_for(p, len(x)) + 1e-12)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("which", ["asymmetric", "symmetric"])
def test_round_trip_error_within_the_bound(ctx, sym_ctx, seed, which):
    rng = np.random.default_rng(seed)
    context = ctx if which == "asymmetric" else sym_ctx
    p = ckks.context_parameters(context)
    n = 3 * p.slots + 17  # chunks, the last one partial
    x = rng.uniform(-100, 100, n)
    u = ckks.encrypt(context, x, workers=2)
    assert u.ciphertexts == 4 and u.size == n
    err = np.abs(u.decrypt() - x).max()
    assert err <= bound_for(p, n, encryption=which), (seed, err)


def test_error_std_matches_the_model(ctx, sym_ctx):
    # The sample std over 32768 slots has a relative error of about 0.8%; 10% covers
    # the model's approximations (Gaussian slots) with a false-alarm rate near zero.
    for context, which in [(ctx, "asymmetric"), (sym_ctx, "symmetric")]:
        p = ckks.context_parameters(context)
        x = np.zeros(8 * p.slots)
        e = ckks.encrypt(context, x, workers=1).decrypt()
        ratio = e.std() / ckks.error_std(p, encryption=which)
        assert 0.9 < ratio < 1.1, (which, ratio)


def test_layers_shapes_and_dtypes_come_back(ctx):
    rng = np.random.default_rng(1)
    layers = [
        rng.normal(size=(3, 5)).astype(np.float32),
        rng.normal(size=7).astype(np.float32),
        rng.normal(size=(2, 2, 2)).astype(np.float32),
    ]
    u = ckks.encrypt(ctx, layers)
    out = u.decrypt()
    assert isinstance(out, list) and [a.shape for a in out] == [a.shape for a in layers]
    assert all(a.dtype == np.float32 for a in out)
    for a, b in zip(out, layers, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    x64 = rng.normal(size=(4, 6))[:, ::2]  # non-contiguous
    out64 = ckks.encrypt(ctx, x64).decrypt()
    assert out64.shape == (4, 3) and out64.dtype == np.float64
    np.testing.assert_allclose(out64, x64, atol=1e-7)
    ints = ckks.encrypt(ctx, [1, 2, 3]).decrypt()
    assert ints.dtype == np.float64
    np.testing.assert_allclose(ints, [1, 2, 3], atol=1e-7)


def test_parallel_encryption_equals_serial_and_runs_on_an_executor(ctx):
    x = np.linspace(-1, 1, 5 * 4096 + 3)
    serial = ckks.encrypt(ctx, x, workers=1)
    parallel = ckks.encrypt(ctx, x, workers=2)
    with concurrent.futures.ThreadPoolExecutor(3) as ex:
        on_executor = ckks.encrypt(ctx, x, executor=ex)
    for u in (serial, parallel, on_executor):
        assert u.ciphertexts == 6
        np.testing.assert_allclose(u.decrypt(), x, atol=1e-7)
    # Fresh randomness: the ciphertexts differ although the plaintexts are equal.
    assert serial.serialize() != parallel.serialize()


def _child_encrypt(data: bytes, conn) -> None:  # runs in a spawned child
    from ppml_fast import ckks as c

    context = c.load_context(data)
    u = c.encrypt(context, np.arange(10000.0), workers=2)
    conn.send(u.serialize())


def _child_encrypt_queue(data: bytes, q) -> None:  # runs in a forked/forkserver child
    from ppml_fast import ckks as c

    u = c.encrypt(c.load_context(data), np.arange(20000.0), workers=2)
    q.put(u.serialize())


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_encrypt_in_child_after_the_parent_used_workers(ctx, method):
    x = np.arange(20000.0)
    ckks.encrypt(ctx, x, workers=2)  # the parent's workers exist before the child is made
    m = multiprocessing.get_context(method)
    q = m.Queue()
    proc = m.Process(target=_child_encrypt_queue, args=(ckks.serialize_context(ctx), q))
    proc.start()
    payload = q.get(timeout=120)
    proc.join(60)
    assert proc.exitcode == 0
    np.testing.assert_allclose(ckks.load_update(payload, ctx).decrypt(), x, atol=1e-6)
    # and the parent's own workers still serve it
    np.testing.assert_allclose(ckks.encrypt(ctx, x, workers=2).decrypt(), x, atol=1e-6)


def test_encrypt_in_spawned_child(ctx):
    data = ckks.serialize_context(ctx)  # public: the child can encrypt, not decrypt
    mp = multiprocessing.get_context("spawn")
    a, b = mp.Pipe()
    proc = mp.Process(target=_child_encrypt, args=(data, b))
    proc.start()
    payload = a.recv()
    proc.join(60)
    assert proc.exitcode == 0
    out = ckks.load_update(payload, ctx).decrypt()
    np.testing.assert_allclose(out, np.arange(10000.0), atol=1e-6)


# ----------------------------------------------------------------------------- arithmetic


@pytest.mark.parametrize("seed", SEEDS)
def test_arithmetic_against_numpy(ctx, seed):
    rng = np.random.default_rng(seed)
    p = ckks.context_parameters(ctx)
    n = 5000
    x, y, a = rng.normal(size=n), rng.normal(size=n), rng.uniform(-2, 2, n)
    ux, uy = ckks.encrypt(ctx, x), ckks.encrypt(ctx, y)
    tol = 8 * bound_for(p, n, clients=2, weights=[3.0, 3.0], bound=10.0)
    cases = {
        "x+y": (ux + uy, x + y),
        "x-y": (ux - uy, x - y),
        "3x": (3 * ux, 3 * x),
        "x/4": (ux / 4, x / 4),
        "-x": (-ux, -x),
        "x+2": (ux + 2, x + 2),
        "x-a": (ux - a, x - a),
        "a-x": (a - ux, a - x),
        "2x+1+y": (2 * ux + 1 + uy, 2 * x + 1 + y),
        "3x-y": (3 * ux - uy, 3 * x - y),
        "x*a": (ux * a, x * a),
        "(x*a)+y": (ux * a + uy, x * a + y),
        "sum": (sum([ux, uy, ux]), 2 * x + y),
        "0*x": (0 * ux, 0 * x),
    }
    for name, (enc, want) in cases.items():
        np.testing.assert_allclose(enc.decrypt(), want, atol=tol, rtol=0, err_msg=name)
    acc = ux.copy()
    acc += uy
    acc -= 2 * uy
    acc += a
    np.testing.assert_allclose(acc.decrypt(), x - y + a, atol=tol)
    np.testing.assert_allclose(ux.decrypt(), x, atol=tol)  # operands unchanged


def test_plaintext_multiplication_needs_a_level(agg_ctx):
    u = ckks.encrypt(agg_ctx, np.ones(10))
    with pytest.raises(ValueError, match="multiplicative level"):
        u * np.ones(10)
    with pytest.raises(ValueError, match="multiplicative level"):
        ckks.sum_updates([u, u], [1.0, 2.0])
    # Scalars stay a public factor: fine without a level.
    np.testing.assert_allclose((u * 3 - 1).decrypt(), np.full(10, 2.0), atol=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_weighted_sums_and_fedavg_against_numpy(ctx, seed):
    rng = np.random.default_rng(seed)
    p = ckks.context_parameters(ctx)
    k, n = 6, 3000
    xs = rng.uniform(-1, 1, (k, n))
    w = rng.integers(1, 50, k).astype(float)
    pub = ckks.public_context(ctx)
    ups = [ckks.load_update(ckks.encrypt(ctx, x).serialize(), pub) for x in xs]
    want = (w[:, None] * xs).sum(0)
    got = ckks.sum_updates(ups, w).decrypt(ctx)
    tol = bound_for(p, n, weights=list(w / w.max()), bound=1.0) * w.max()
    assert np.abs(got - want).max() <= tol
    avg = encrypted_fedavg(ups, w).decrypt(ctx)
    assert np.abs(avg - want / w.sum()).max() <= tol / w.sum()
    # Equal weights: additions only (no level used), the plain mean.
    eq = encrypted_fedavg(ups)
    assert np.abs(eq.decrypt(ctx) - xs.mean(0)).max() <= bound_for(p, n, clients=k) / k
    # Client-side weights: the server only adds, and divides by the weights' total.
    pre = [
        ckks.load_update(ckks.encrypt(ctx, x, weight=wk).serialize(), pub)
        for x, wk in zip(xs, w, strict=True)
    ]
    assert all(u.weight == wk for u, wk in zip(pre, w, strict=True))
    got_pre = encrypted_fedavg(pre).decrypt(ctx)
    assert np.abs(got_pre - want / w.sum()).max() <= bound_for(p, n, clients=k) * w.max() / w.sum()
    with pytest.raises(ValueError, match="weights must be None"):
        encrypted_fedavg(pre, w)


def test_fedavg_on_the_addition_only_preset(agg_ctx, agg_params):
    rng = np.random.default_rng(7)
    xs = rng.uniform(-4, 4, (8, 20000))
    pub = ckks.public_context(agg_ctx)
    ups = [ckks.load_update(ckks.encrypt(agg_ctx, x).serialize(), pub) for x in xs]
    avg = encrypted_fedavg(ups).decrypt(agg_ctx)
    err = np.abs(avg - xs.mean(0)).max()
    assert err <= 1e-6 / 8  # the preset's precision, for the sum, over 8
    assert err <= bound_for(agg_params, 20000, clients=8) / 8


def test_bad_weights_and_updates(ctx):
    u = ckks.encrypt(ctx, np.ones(5))
    v = ckks.encrypt(ctx, np.ones(6))
    with pytest.raises(ValueError, match="one entry per update"):
        encrypted_fedavg([u, u], [1.0])
    with pytest.raises(ValueError, match="weights must be >= 0"):
        encrypted_fedavg([u, u], [1.0, -1.0])
    with pytest.raises(ValueError, match="not all be 0"):
        encrypted_fedavg([u, u], [0.0, 0.0])
    with pytest.raises(ValueError, match="finite"):
        encrypted_fedavg([u, u], [1.0, np.nan])
    with pytest.raises(ValueError, match="one layout"):
        encrypted_fedavg([u, v])
    with pytest.raises(ValueError, match="one layout"):
        u + v
    with pytest.raises(ValueError, match="at least one update"):
        encrypted_fedavg([])
    with pytest.raises(TypeError, match=r"encrypted_updates\[1\] must be an EncryptedUpdate"):
        encrypted_fedavg([u, np.ones(5)])
    with pytest.raises(TypeError, match="sequence of EncryptedUpdate"):
        ckks.sum_updates(u)
    with pytest.raises(ValueError, match="layout"):
        u + np.ones(6)
    with pytest.raises(TypeError, match="plaintexts only"):
        u * u
    with pytest.raises(ZeroDivisionError):
        u / 0


# ----------------------------------------------------------------------------- keys


def test_the_aggregator_with_the_public_context_cannot_decrypt(ctx):
    pub = ckks.public_context(ctx)
    assert ctx.is_private() and not pub.is_private()
    u = ckks.load_update(ckks.encrypt(ctx, np.arange(5.0)).serialize(), pub)
    with pytest.raises(ValueError, match="secret key"):
        u.decrypt()
    with pytest.raises(ValueError, match="secret key"):
        ckks.decrypt(u)
    with pytest.raises(ValueError):  # TenSEAL itself refuses too
        u._vec().decrypt()
    # The public context also survives bytes without the key.
    data = ckks.serialize_context(ctx)
    again = ckks.load_context(data)
    assert not again.is_private()
    np.testing.assert_allclose((u + u).decrypt(ctx), 2 * np.arange(5.0), atol=1e-6)
    with pytest.raises(ValueError, match="secret_context must hold"):
        u.decrypt(pub)


def test_symmetric_context_roles(sym_ctx):
    pub = ckks.public_context(sym_ctx)
    with pytest.raises(ValueError, match="secret key"):
        ckks.encrypt(pub, np.ones(3))
    with pytest.raises(ValueError, match="no public key"):
        ckks.encrypt(sym_ctx, np.ones(3), symmetric=False)
    u = ckks.load_update(ckks.encrypt(sym_ctx, np.ones(3)).serialize(), pub)
    np.testing.assert_allclose((u + u).decrypt(sym_ctx), np.full(3, 2.0), atol=1e-8)


# ----------------------------------------------------------------------------- bytes


def test_serialisation_round_trip_and_byte_counts(ctx, sym_ctx):
    x = np.random.default_rng(3).normal(size=4096 * 2)
    u = ckks.encrypt(ctx, x)
    data = u.serialize()
    assert u.nbytes == len(data)
    back = ckks.load_update(data, ctx)
    assert back.shapes == u.shapes and back.dtype == u.dtype
    np.testing.assert_allclose(back.decrypt(), x, atol=1e-7)
    # The wire form is the seed-style loop's bytes plus a small header.
    loop = sum(len(ts.ckks_vector(ctx, c.tolist()).serialize()) for c in np.split(x, 2))
    assert abs(u.nbytes - loop) < 0.01 * loop
    # Seeded symmetric ciphertexts: at most half (plus the header).
    s = ckks.encrypt(sym_ctx, x)
    assert s.nbytes <= 0.5 * loop + 1024
    np.testing.assert_allclose(ckks.load_update(s.serialize(), sym_ctx).decrypt(), x, atol=1e-8)
    # Pickles without the context; link after.
    p = pickle.loads(pickle.dumps(3 * u + 1))
    assert p.context is None
    with pytest.raises(ValueError, match="link"):
        p + p
    np.testing.assert_allclose(p.link(ctx).decrypt(), 3 * x + 1, atol=1e-6)


@pytest.mark.parametrize(
    "data, match",
    [
        (b"", "bad magic"),
        (b"XXXX" + bytes(20), "bad magic"),
        (b"PPCK" + bytes([9, 0, 0, 0, 0, 0]) + b"{}", "format version"),
        (b"PPCK\x01\x00\x02\x00\x00\x00{}", "bad header"),
    ],
)
def test_bad_bytes_are_refused(data, match):
    with pytest.raises(ValueError, match=match):
        ckks.load_update(data)


def test_truncated_and_foreign_bytes_are_refused(ctx):
    data = ckks.encrypt(ctx, np.ones(10)).serialize()
    with pytest.raises(ValueError):
        ckks.load_update(data[: len(data) // 2], ctx)._vec()
    other = ckks.make_context(ckks.aggregation_parameters(4))
    with pytest.raises(ValueError, match="do not belong"):
        ckks.load_update(data, other).decrypt()
    with pytest.raises(TypeError, match="bytes"):
        ckks.load_update("text")
    with pytest.raises(ValueError, match="not a serialised TenSEAL context"):
        ckks.load_context(b"garbage")


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "update, exc, match",
    [
        (np.array([1.0, np.nan]), ValueError, "finite"),
        (np.array([np.inf]), ValueError, "finite"),
        (np.array([]), ValueError, "at least one value"),
        ([], ValueError, "at least one value"),
        (np.array([1 + 2j]), TypeError, "real|complex"),
        ("abc", TypeError, "update"),
        ([np.ones(2, np.float32), np.ones(2)], TypeError, "one dtype"),
        (np.array([1e12]), EncodingOverflowError, "above"),
    ],
)
def test_bad_updates_are_refused(ctx, update, exc, match):
    with pytest.raises(exc, match=match):
        ckks.encrypt(ctx, update)


def test_bad_encrypt_arguments(ctx):
    with pytest.raises(TypeError, match=r"tenseal\.Context"):
        ckks.encrypt(object(), np.ones(2))
    with pytest.raises(ValueError, match="workers must be >= 1"):
        ckks.encrypt(ctx, np.ones(2), workers=0)
    with pytest.raises(ValueError, match="weight must be > 0"):
        ckks.encrypt(ctx, np.ones(2), weight=0)
    with pytest.raises(TypeError, match="symmetric must be a bool"):
        ckks.encrypt(ctx, np.ones(2), symmetric="yes")
    with pytest.raises(TypeError, match="executor"):
        ckks.encrypt(ctx, np.ones(2), executor=4)
    with pytest.raises(ValueError, match="params must be"):
        ckks.make_context("fast")
    with pytest.raises(ValueError, match="given together"):
        ckks.make_context(poly_modulus_degree=8192)
    # The weight's product must fit as well.
    with pytest.raises(EncodingOverflowError):
        ckks.encrypt(ckks.make_context(ckks.aggregation_parameters(2)), np.ones(2), weight=1e9)


# ----------------------------------------------------------------------------- levels


def test_levels_survive_bytes_and_no_held_vector_is_switched(ctx):
    rng = np.random.default_rng(11)
    n = 3000
    x, y, a = rng.normal(size=n), rng.normal(size=n), rng.uniform(0.5, 2, n)
    ux, uy = ckks.encrypt(ctx, x), ckks.encrypt(ctx, y)
    # A product (one level used) through bytes keeps its level count ...
    v = ckks.load_update((ux * a).serialize(), ctx)
    total = ckks.sum_updates([v, uy]).decrypt()
    np.testing.assert_allclose(total, x * a + y, atol=1e-6)
    # ... so the sum neither mis-corrects nor switches uy down in place: uy still has both
    # of its levels for two more products.
    np.testing.assert_allclose((uy * a * a).decrypt(), y * a * a, atol=1e-5)
    np.testing.assert_allclose((v + uy).decrypt(), x * a + y, atol=1e-6)
    np.testing.assert_allclose((uy + v).decrypt(), x * a + y, atol=1e-6)
    np.testing.assert_allclose((uy - v).decrypt(), y - x * a, atol=1e-6)


def test_negation_and_zero_factors_need_no_level(agg_ctx):
    x, y = np.linspace(-1, 1, 50), np.linspace(2, 3, 50)
    ux, uy = ckks.encrypt(agg_ctx, x), ckks.encrypt(agg_ctx, y)
    np.testing.assert_allclose((-ux + uy).decrypt(), y - x, atol=1e-9)
    np.testing.assert_allclose((ux - -uy).decrypt(), x + y, atol=1e-9)
    np.testing.assert_allclose((ux * 0.0 + uy).decrypt(), y, atol=1e-9)
    np.testing.assert_allclose((uy - ux * 0.0).decrypt(), y, atol=1e-9)
    np.testing.assert_allclose(ckks.sum_updates([ux, -uy]).decrypt(), x - y, atol=1e-9)
    np.testing.assert_allclose(
        ckks.sum_updates([ux, uy, ux], [2.0, -2.0, 2.0]).decrypt(), 4 * x - 2 * y, atol=1e-8
    )
    np.testing.assert_allclose(encrypted_fedavg([ux, -uy]).decrypt(), (x - y) / 2, atol=1e-9)


def test_error_bound_holds_for_very_unequal_server_weights(ctx):
    # One large weight kept as the public factor multiplies every other client's rescale
    # error: the bound must model that.
    rng = np.random.default_rng(5)
    p = ckks.context_parameters(ctx)
    w = np.array([1e4, *range(1, 40)], dtype=float)
    xs = rng.uniform(-1, 1, (w.size, p.slots))
    ups = [ckks.encrypt(ctx, x, workers=1) for x in xs]
    got = ckks.sum_updates(ups, w).decrypt()
    err = np.abs(got - (w[:, None] * xs).sum(0)).max()
    assert err <= ckks.error_bound(p, values=p.slots, weights=w, bound=1.0), err


def test_more_bad_input(ctx, agg_ctx, agg_params):
    u = ckks.encrypt(agg_ctx, np.ones(4))
    with pytest.raises(EncodingOverflowError, match="other"):
        (u / 1000) + 1.0  # 1000 over the factor: beyond max_encoded
    with pytest.raises(EncodingOverflowError, match="other"):
        u + np.full(4, 2 * agg_params.max_value)
    # Between what one plaintext encodes and what a sum holds: refused by name, before SEAL
    ckks.encrypt(agg_ctx, [agg_params.max_encoded], workers=1)
    with pytest.raises(EncodingOverflowError, match="update"):
        ckks.encrypt(agg_ctx, [1.5 * agg_params.max_encoded], workers=1)
    heavy = ckks.encrypt(agg_ctx, np.ones(4), weight=3.0)
    with pytest.raises(ValueError, match="one client weight"):
        ckks.sum_updates([u, heavy])
    data = ckks.encrypt(ctx, np.ones(3)).serialize()
    head_len = int.from_bytes(data[6:10], "little")
    header = data[10 : 10 + head_len]
    for old, new in [
        (b'"factor":"0x1.0000000000000p+0"', b'"factor":"nan"'),
        (b'"weight":"0x1.0000000000000p+0"', b'"weight":"-0x1.0p+0"'),
        (b'"shapes":[[3]]', b'"shapes":[[-3]]'),
    ]:
        assert old in header, header
        bad_header = header.replace(old, new)
        bad = data[:6] + len(bad_header).to_bytes(4, "little") + bad_header + data[10 + head_len :]
        with pytest.raises(ValueError, match="not a serialised EncryptedUpdate"):
            ckks.load_update(bad)
