"""Secure aggregation (SecAgg / SecAgg+): the AES-CTR mask kernel at every ISA level against
`cryptography` and a known answer (and the same bits from every level), fixed-point
quantisation, exact sums across dropout patterns, failure above the threshold, uniformity
of a single masked vector, the SecAgg+ graph, and the protocol's rules.

Statistical tests state their false-alarm rate; random cases use fresh seeds each run
(printed in assertion messages) plus fixed ones.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import ppml_fast
from ppml_fast import aggregation as ag
from ppml_fast._errors import PPMLError
from ppml_fast._native import aggregation_secure as _kernels
from ppml_fast.aggregation import secure
from ppml_fast.aggregation.secure import SecAggClient, SecAggServer, dequantize, quantize

crypto = pytest.importorskip("cryptography")
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: E402

FRESH = int(np.random.SeedSequence().entropy % 2**32)


def _keystream(key: bytes, n: int) -> np.ndarray:
    enc = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
    return np.frombuffer(enc.update(bytes(8 * n)), "<u8").astype(np.uint64)


# ------------------------------------------------------------------------------ kernel


LEVELS = ppml_fast.available_isas()
SIZES = [0, 1, 2, 3, 7, 15, 16, 17, 33, 63, 64, 65, 127, 257, 2047, 2048, 2049, 4096 + 5, 100_003]


def _expected(base: np.ndarray, keys: list[bytes], signs: np.ndarray) -> np.ndarray:
    want = base.copy()
    for key, s in zip(keys, signs.tolist(), strict=True):
        ks = _keystream(key, base.size)
        want = want + ks if s > 0 else want - ks
    return want


def _masks(base: np.ndarray, keys: list[bytes], signs: np.ndarray, force: int = 0) -> np.ndarray:
    """acc = base + sum of signed masks, both in place and through base: the kernel's body
    at the current level, or at generic (no native body: the kernel declines) the public
    expand_masks, which takes OpenSSL's keystream."""
    kb = np.frombuffer(b"".join(keys), np.uint8)
    acc = base.copy()
    out = np.empty(base.size, np.uint64)
    if _kernels.path(force) == "openssl":
        assert _kernels.masks_add(acc, None, kb, signs, force, 2) == -1
        assert np.array_equal(acc, base)  # untouched
        secure.expand_masks(acc, keys, signs.tolist())
        secure.expand_masks(out, keys, signs.tolist(), base=base)
    else:
        assert _kernels.masks_add(acc, None, kb, signs, force, 2) == 0
        assert _kernels.masks_add(out, base, kb, signs, force, 2) == 0
    assert np.array_equal(acc, out)
    return acc


@contextlib.contextmanager
def _at_level(level: str) -> Iterator[None]:
    """ppml_fast.isa(level), checking that the level took effect in the kernel module."""
    with ppml_fast.isa(level):
        assert ppml_fast.get_isa() == level
        assert _kernels._get_isa() == ("generic", "avx2", "avx512").index(level)
        yield


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("force", [0, 1], ids=["best", "aes-ni"])
@pytest.mark.parametrize("seed", [FRESH, 20240611], ids=["fresh", "fixed"])
def test_mask_kernel_matches_cryptography_ctr(level, force, seed):
    rng = np.random.default_rng(seed)
    with _at_level(level):
        if force == 1 and level == "generic":
            assert _kernels.path(1) == "openssl"  # no native body below avx2
        for n in [*SIZES, 1_000_003] if force == 0 else SIZES:
            keys = [rng.bytes(16) for _ in range(4)]
            signs = np.array([1, -1, -1, 1], np.int8)
            base = rng.integers(0, 2**64, n, dtype=np.uint64, endpoint=False)
            base[: min(n, 2)] = [0, 2**64 - 1][: min(n, 2)]
            got = _masks(base, keys, signs, force)
            assert np.array_equal(got, _expected(base, keys, signs)), (
                f"level={level} path={_kernels.path(force)} n={n} seed={seed}"
            )


# AES-128 under the all-zero key of the counter blocks 0, 1 and 2 (the block cipher
# outputs in test cases 1 and 2 of the GCM specification, McGrew and Viega 2005).
_KAT_ZERO_KEY = bytes.fromhex(
    "66e94bd4ef8a2c3b884cfa59ca342b2e"
    "58e2fccefa7e3061367f1d57a4e7455a"
    "0388dace60b6a392f328c2b971b2fe78"
)


@pytest.mark.parametrize("level", LEVELS)
def test_mask_kernel_known_answer(level):
    want = np.frombuffer(_KAT_ZERO_KEY, "<u8").astype(np.uint64)
    assert np.array_equal(_keystream(bytes(16), 6), want)  # `cryptography` agrees
    with _at_level(level):
        for force in (0, 1):
            for n in (1, 3, 6):
                got = _masks(np.zeros(n, np.uint64), [bytes(16)], np.array([1], np.int8), force)
                assert np.array_equal(got, want[:n]), (level, _kernels.path(force), n)
            neg = _masks(np.zeros(6, np.uint64), [bytes(16)], np.array([-1], np.int8), force)
            assert np.array_equal(neg, (np.uint64(0) - want).astype(np.uint64))


def test_mask_kernel_identical_across_levels():
    rng = np.random.default_rng(FRESH)
    keys = [rng.bytes(16) for _ in range(5)]
    signs = np.array([1, -1, 1, 1, -1], np.int8)
    for n in (0, 1, 3, 7, 33, 1000, 65_537):
        base = rng.integers(0, 2**64, n, dtype=np.uint64, endpoint=False)
        outs = {}
        for level in LEVELS:
            with _at_level(level):
                for force in (0, 1):
                    outs[(level, _kernels.path(force))] = _masks(base, keys, signs, force)
        first = next(iter(outs.values()))
        for k, v in outs.items():
            assert np.array_equal(v, first), (k, n, FRESH)


def test_mask_kernel_paths_per_level():
    assert _kernels.path() in ("openssl", "aesni", "vaes256", "vaes512")
    with ppml_fast.isa("generic"):
        assert _kernels.path() == "openssl" and _kernels.path(1) == "openssl"
    if "avx2" in LEVELS:
        with ppml_fast.isa("avx2"):
            assert _kernels.path() in ("aesni", "vaes256") and _kernels.path(1) == "aesni"
    if "avx512" in LEVELS:
        with ppml_fast.isa("avx512"):
            assert _kernels.path() in ("aesni", "vaes256", "vaes512")


@pytest.mark.parametrize("level", LEVELS)
def test_expand_masks_threads_at_each_level(level):
    keys = [os.urandom(16) for _ in range(3)]
    n = 20_001
    ref = _expected(np.zeros(n, np.uint64), keys, np.array([1, -1, 1], np.int8))
    with _at_level(level):
        for threads in (1, 2, 3):
            with ppml_fast.num_threads(threads):
                acc = np.zeros(n, np.uint64)
                ag.expand_masks(acc, keys, [1, -1, 1])
                assert np.array_equal(acc, ref), (level, threads)


def test_expand_masks_threads_and_fallback(monkeypatch):
    keys = [os.urandom(16) for _ in range(3)]
    n = 50_001
    ref = np.zeros(n, np.uint64)
    for key, s in zip(keys, [1, -1, 1], strict=True):
        ks = _keystream(key, n)
        ref = ref + ks if s > 0 else ref - ks
    for threads in (1, 2, 3):
        with ppml_fast.num_threads(threads):
            acc = np.zeros(n, np.uint64)
            ag.expand_masks(acc, keys, [1, -1, 1])
            assert np.array_equal(acc, ref), threads
    import ppml_fast.aggregation.secure as sa

    # a CPU without AES instructions: the kernel declines, the API falls back
    monkeypatch.setattr(sa._kernels, "masks_add", lambda *a: -1)
    acc = np.zeros(n, np.uint64)
    ag.expand_masks(acc, keys, [1, -1, 1])
    assert np.array_equal(acc, ref)
    out = np.empty(n, np.uint64)
    ag.expand_masks(out, keys, [1, -1, 1], base=np.zeros(n, np.uint64))
    assert np.array_equal(out, ref)


def test_expand_masks_validation():
    acc = np.zeros(10, np.uint64)
    with pytest.raises(TypeError, match="acc"):
        ag.expand_masks(np.zeros(10, np.int64), [os.urandom(16)], [1])
    with pytest.raises(TypeError, match="acc"):
        ag.expand_masks(np.zeros(20, np.uint64)[::2], [os.urandom(16)], [1])
    with pytest.raises(ValueError, match="16 bytes"):
        ag.expand_masks(acc, [b"short"], [1])
    with pytest.raises(ValueError, match="length"):
        ag.expand_masks(acc, [os.urandom(16)], [1, -1])
    with pytest.raises(ValueError, match="overlap"):
        ag.expand_masks(acc, [os.urandom(16)], [1], base=acc)
    with pytest.raises(ValueError, match="length"):
        ag.expand_masks(acc, [os.urandom(16)], [1], base=np.zeros(9, np.uint64))
    before = acc.copy()
    ag.expand_masks(acc, [], [])
    assert np.array_equal(acc, before)


# ------------------------------------------------------------------------- quantising


def test_quantize_round_trip_and_clip():
    x = np.array([0.0, 1.5, -1.5, 0.25, -0.25, 3.0, -3.0, 1e-9])
    q = quantize(x, 2.0, 8)
    assert q.dtype == np.uint64
    assert dequantize(q, 8).tolist() == [0.0, 1.5, -1.5, 0.25, -0.25, 2.0, -2.0, 0.0]
    assert int(quantize([-1.0], 1.0, 4)[0]) == 2**64 - 16  # two's complement
    with pytest.raises(ValueError, match="NaN"):
        quantize([np.nan], 1.0, 8)
    with pytest.raises(ValueError, match="clip"):
        quantize([1.0], 0.0, 8)
    with pytest.raises(ValueError, match="frac_bits"):
        quantize([1.0], 1.0, 60)
    with pytest.raises(ValueError, match="2\\*\\*62"):
        quantize([1.0], 2.0**40, 30)


# ------------------------------------------------------------------------------ rounds


def _check_exact(x, res, clip=1.0, frac_bits=16, msg=""):
    q = quantize(x[res.survivors], clip, frac_bits)
    assert np.array_equal(res.ring_sum, q.sum(axis=0)), msg  # numpy uint64 sums wrap
    assert np.array_equal(res.sum, dequantize(q.sum(axis=0), frac_bits)), msg
    bound = len(res.survivors) * 2.0 ** -(frac_bits + 1)
    assert np.abs(res.sum - np.clip(x[res.survivors], -clip, clip).sum(0)).max() <= bound


@pytest.mark.parametrize("seed", [0, 1, FRESH])
@pytest.mark.parametrize("neighbors", [None, 4, "auto"])
def test_sum_exact_without_dropouts(seed, neighbors):
    x = np.random.default_rng(seed).normal(0, 1, (12, 257))  # some beyond the clip range
    res = ag.secure_aggregate(x, neighbors=neighbors, rng=seed)
    assert res.dropped.size == 0 and res.survivors.tolist() == list(range(12))
    _check_exact(x, res, msg=f"seed={seed}")


@pytest.mark.parametrize("seed", [3, FRESH])
def test_secagg_dropouts_below_at_and_above_threshold(seed):
    n = 9
    x = np.random.default_rng(seed).uniform(-1, 1, (n, 100))
    res = ag.secure_aggregate(x, rng=seed)
    assert res.threshold == n // 2 + 1 == 5
    for dropped in ([], [4], [0, 8, 3], [1, 2, 3, 4]):  # 9, 8, 6 and 5 survivors >= t = 5
        res = ag.secure_aggregate(x, dropout=dropped, rng=seed)
        assert res.dropped.tolist() == sorted(dropped)
        _check_exact(x, res, msg=f"dropped={dropped} seed={seed}")
    # exactly t survivors with another threshold: t = 6, 6 survivors
    res = ag.secure_aggregate(x, threshold=6, dropout=[0, 1, 2], rng=seed)
    _check_exact(x, res, msg=f"at threshold seed={seed}")
    # one survivor too few: a clear error, never a wrong sum
    with pytest.raises(ag.SecAggError, match="too many dropouts"):
        ag.secure_aggregate(x, threshold=7, dropout=[0, 1, 2], rng=seed)
    with pytest.raises(ag.SecAggError, match="too many dropouts"):
        ag.secure_aggregate(x, dropout=[0, 1, 2, 3, 4], rng=seed)


def test_secagg_plus_dropouts():
    n = 24
    x = np.random.default_rng(FRESH).uniform(-1, 1, (n, 64))
    res = ag.secure_aggregate(x, neighbors=8, dropout=[5], rng=FRESH)
    assert res.neighbors == 8 and res.threshold == 5  # a majority of the 9 holders
    _check_exact(x, res, msg=f"seed={FRESH}")
    ok = 0
    for seed in range(6):  # random 20% dropouts: either exact or a clear SecAggError
        try:
            r = ag.secure_aggregate(x, neighbors=8, dropout=0.2, rng=seed)
        except ag.SecAggError:
            continue
        _check_exact(x, r, msg=f"seed={seed}")
        ok += 1
    assert ok >= 1
    with pytest.raises(ag.SecAggError):
        ag.secure_aggregate(x, neighbors=4, dropout=list(range(0, n, 2)), rng=0)


def test_list_input_executor_and_result_fields():
    rows = [np.full(33, 0.5 * i - 1) for i in range(5)]
    with ThreadPoolExecutor(2) as ex:
        res = ag.secure_aggregate(rows, clip=2.0, frac_bits=10, executor=ex, dropout=[2])
    x = np.stack(rows)
    _check_exact(x, res, clip=2.0, frac_bits=10)
    assert res.bytes_per_client > 8 * 33 and res.threshold == 3 and res.neighbors == 4
    assert isinstance(ag.SecAggError("x"), PPMLError)


def test_round_validation():
    x = np.zeros((4, 5))
    with pytest.raises(ValueError, match="n_clients"):
        ag.secure_aggregate(np.zeros((1, 5)))
    with pytest.raises(ValueError, match="n_clients"):
        ag.secure_aggregate(np.zeros(5))
    with pytest.raises(ValueError, match="1-D"):
        ag.secure_aggregate([np.zeros(3), np.zeros(4)])
    with pytest.raises(ValueError, match="dropout rate"):
        ag.secure_aggregate(x, dropout=1.5)
    with pytest.raises(ValueError, match="dropout indices"):
        ag.secure_aggregate(x, dropout=[7])
    with pytest.raises(ValueError, match="2\\*\\*63"):
        ag.secure_aggregate(np.zeros((4, 2)), clip=2.0**20, frac_bits=42)
    with pytest.raises(ValueError, match="even"):
        ag.secure_aggregate(np.zeros((10, 2)), neighbors=3)
    with pytest.raises(ValueError, match="threshold"):
        ag.secure_aggregate(x, threshold=6)
    with pytest.raises(ValueError, match="NaN"):
        ag.secure_aggregate(np.full((3, 2), np.nan))


# -------------------------------------------------------------------------- privacy


def test_single_masked_vector_is_uniform():
    """A masked input of a fixed (all-zero, then all-max) update looks uniform.

    Byte histogram: chi-square with 255 degrees of freedom against the 1e-6 upper quantile
    (~377.1); each of the 64 bit positions: |z| < 5.5 (two-sided 3.8e-8 each, < 2.5e-6 for
    all 64). Together the false-alarm rate is below 4e-6 per update tested.
    """
    n_words = 1 << 15
    for value in (0.0, 1.0):
        x = np.full((3, n_words), value)
        clients = [SecAggClient(u) for u in range(3)]
        roster = {u: c.advertise_keys() for u, c in enumerate(clients)}
        graph = ag.secagg_graph(3, None)
        server = SecAggServer(3, 2, graph)
        server.collect_keys(roster)
        boxes = {u: c.share_keys(roster, graph[u], 2) for u, c in enumerate(clients)}
        for u, box in server.route_shares(boxes).items():
            clients[u].receive_shares(box)
        y = clients[0].masked_input(quantize(x[0], 1.0, 16))
        counts = np.bincount(y.view(np.uint8), minlength=256)
        expect = y.nbytes / 256
        chi2 = float(((counts - expect) ** 2 / expect).sum())
        assert chi2 < 377.1, f"value={value} chi2={chi2}"
        bits = np.unpackbits(y.view(np.uint8)).reshape(-1, 64).sum(axis=0)
        z = (bits - n_words / 2) / math.sqrt(n_words / 4)
        assert np.abs(z).max() < 5.5, f"value={value} z={np.abs(z).max()}"


def test_clients_reveal_one_kind_per_neighbour_and_dropped_cannot_unmask():
    n = 5
    clients = [SecAggClient(u) for u in range(n)]
    roster = {u: c.advertise_keys() for u, c in enumerate(clients)}
    graph = ag.secagg_graph(n, None)
    boxes = {u: c.share_keys(roster, graph[u], 3) for u, c in enumerate(clients)}
    server = SecAggServer(n, 3, graph)
    for u, box in server.route_shares(boxes).items():
        clients[u].receive_shares(box)
    for u in range(4):
        clients[u].masked_input(np.zeros(8, np.uint64))
    rev = clients[0].unmask([0, 1, 2, 3], [4])
    assert {v: kind for v, (kind, _) in rev.items()} == {0: "b", 1: "b", 2: "b", 3: "b", 4: "s"}
    with pytest.raises(ag.SecAggError, match="dropped"):
        clients[4].unmask([0, 1, 2, 3], [4])
    with pytest.raises(ag.SecAggError, match="both"):
        clients[0].unmask([0, 1], [1])
    # a tampered share fails authentication instead of producing garbage
    blob = bytearray(clients[1]._inbox[2])
    blob[-1] ^= 1
    clients[1]._inbox[2] = bytes(blob)
    with pytest.raises(ag.SecAggError, match="authentication"):
        clients[1].unmask([0, 1, 2, 3], [4])


def test_server_rejects_bad_inputs():
    server = SecAggServer(3, 2, ag.secagg_graph(3, None))
    server.add_masked(0, np.zeros(4, np.uint64))
    with pytest.raises(ag.SecAggError, match="twice"):
        server.add_masked(0, np.zeros(4, np.uint64))
    with pytest.raises(ag.SecAggError, match="length"):
        server.add_masked(1, np.zeros(5, np.uint64))
    with pytest.raises(ag.SecAggError, match="uint64"):
        server.add_masked(2, np.zeros(4, np.int64))


# ---------------------------------------------------------------------------- graph


@pytest.mark.parametrize("n,kk", [(10, 2), (10, 4), (31, 6), (100, 14), (7, 6), (5, 8)])
def test_secagg_plus_graph(n, kk):
    g = ag.secagg_graph(n, kk, rng=FRESH)
    deg = min(kk, n - 1)
    adj = np.zeros((n, n), bool)
    for u, nb in enumerate(g):
        assert len(nb) == deg and u not in nb.tolist() and len(set(nb.tolist())) == deg
        adj[u, nb] = True
    assert (adj == adj.T).all()  # symmetric
    seen, frontier = {0}, [0]  # connected
    while frontier:
        u = frontier.pop()
        for v in g[u].tolist():
            if v not in seen:
                seen.add(v)
                frontier.append(v)
    assert len(seen) == n
    if deg < n - 1:
        other = ag.secagg_graph(n, kk, rng=FRESH + 1)
        assert any(not np.array_equal(a, b) for a, b in zip(g, other, strict=True))


def test_graph_validation():
    with pytest.raises(ValueError, match="even"):
        ag.secagg_graph(10, 5)
    with pytest.raises(ValueError, match="n"):
        ag.secagg_graph(1, None)


# ------------------------------------------------ protocol edge cases and bad messages


def _ready_clients(n, t):
    clients = [SecAggClient(u) for u in range(n)]
    roster = {u: c.advertise_keys() for u, c in enumerate(clients)}
    graph = ag.secagg_graph(n, None)
    boxes = {u: c.share_keys(roster, graph[u], t) for u, c in enumerate(clients)}
    server = SecAggServer(n, t, graph)
    server.collect_keys(roster)
    for u, box in server.route_shares(boxes).items():
        clients[u].receive_shares(box)
    return clients, server


def test_client_masks_once_and_answers_once():
    clients, _ = _ready_clients(4, 3)
    clients[0].masked_input(np.arange(5, dtype=np.uint64))
    with pytest.raises(ag.SecAggError, match="already sent"):
        clients[0].masked_input(np.arange(5, dtype=np.uint64))
    with pytest.raises(ValueError, match="integer"):
        clients[1].masked_input(np.array([0.7, -1.0]))
    clients[0].unmask([0, 1, 2, 3], [])
    with pytest.raises(ag.SecAggError, match="already answered"):
        clients[0].unmask([0, 2, 3], [1])  # would reveal client 1's s share as well


def test_server_validates_graph_and_senders():
    with pytest.raises(ValueError, match="symmetric"):
        SecAggServer(3, 2, [np.array([1, 2]), np.array([0, 2]), np.array([1])])
    with pytest.raises(ValueError, match="distinct other"):
        SecAggServer(3, 2, [np.array([0, 1]), np.array([0]), np.array([0])])
    with pytest.raises(ValueError, match="distinct other"):
        SecAggServer(2, 1, [np.array([5]), np.array([0])])
    server = SecAggServer(3, 2, ag.secagg_graph(3, None))
    with pytest.raises(ag.SecAggError, match="unknown client"):
        server.add_masked(7, np.zeros(3, np.uint64))


def test_ring_bound_counts_rounding_and_argument_types():
    # clip * 2**fb rounds up to 2**52: 2048 of them reach 2**63, which the ring cannot hold
    with pytest.raises(ValueError, match="2\\*\\*63"):
        ag.secure_aggregate(np.zeros((2048, 1)), clip=2.0**52 - 0.5, frac_bits=0, neighbors=2)
    with pytest.raises(TypeError, match="dropout"):
        ag.secure_aggregate(np.zeros((3, 2)), dropout=1)
    with pytest.raises(TypeError, match="clip"):
        ag.secure_aggregate(np.zeros((3, 2)), clip="1")
    with pytest.raises(ValueError, match="signs"):
        ag.expand_masks(np.zeros(4, np.uint64), [os.urandom(16)], [0])


def test_mismatched_threshold_is_an_error_not_a_wrong_sum():
    n = 5
    clients, _ = _ready_clients(n, 4)
    server = SecAggServer(n, 3, ag.secagg_graph(n, None))  # the server believes t = 3
    server.collect_keys({u: c.advertise_keys() for u, c in enumerate(clients)})
    for u in range(n - 1):
        server.add_masked(u, clients[u].masked_input(np.ones(4, np.uint64)))
    server.check_recoverable()
    revealed = {u: clients[u].unmask(list(range(n - 1)), [n - 1]) for u in range(n - 1)}
    with pytest.raises(ag.SecAggError, match="inconsistent"):
        server.unmask(revealed, 4)
