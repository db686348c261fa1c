"""ppml_fast.rng: secure by default, reproducible when seeded, splittable."""

import os
import sys
import threading
import warnings

import numpy as np
import pytest
from randomgen import AESCounter

import ppml_fast
import ppml_fast.noise
from ppml_fast import rng as prng
from ppml_fast._streams import split


def test_unseeded_is_secure_aes_and_fresh():
    a, b = prng.default_rng(), prng.default_rng()
    assert isinstance(a.bit_generator, AESCounter)
    assert prng.is_secure(a) and prng.is_secure(b)
    assert not np.array_equal(a.random(8), b.random(8))


def test_seeded_is_reproducible_and_not_secure():
    a, b = prng.default_rng(1234), prng.default_rng(1234)
    assert not prng.is_secure(a)
    assert np.array_equal(a.random(100), b.random(100))
    assert not np.array_equal(prng.default_rng(1).random(8), prng.default_rng(2).random(8))


def test_seed_sequence_and_bitgenerator_and_generator():
    ss = np.random.SeedSequence(7)
    again = np.random.SeedSequence(7)
    assert np.array_equal(prng.default_rng(ss).random(4), prng.default_rng(again).random(4))
    g = np.random.default_rng(3)
    assert prng.default_rng(g) is g
    bg = np.random.PCG64(5)
    wrapped = prng.default_rng(bg)
    assert wrapped.bit_generator is bg and not prng.is_secure(wrapped)


def test_secure_flag():
    with pytest.raises(ValueError, match="seed must be None when secure=True"):
        prng.default_rng(5, secure=True)
    assert prng.is_secure(prng.default_rng(secure=True))
    assert not prng.is_secure(prng.default_rng(secure=False))
    with pytest.raises(TypeError, match="secure"):
        prng.default_rng(secure="yes")


@pytest.mark.parametrize("bad", [1.5, "7", True, [1, 2], object()])
def test_bad_seed_type(bad):
    with pytest.raises(TypeError, match="seed"):
        prng.default_rng(bad)


def test_negative_seed():
    with pytest.raises(ValueError, match="seed must be >= 0"):
        prng.default_rng(-1)


def test_spawn_independent_and_reproducible():
    kids = prng.spawn(prng.default_rng(9), 4)
    again = prng.spawn(prng.default_rng(9), 4)
    draws = [k.integers(0, 2**63, 4) for k in kids]
    assert all(
        np.array_equal(d, k.integers(0, 2**63, 4)) for d, k in zip(draws, again, strict=True)
    )
    assert len({tuple(d) for d in draws}) == 4
    assert all(prng.is_secure(k) for k in prng.spawn(None, 3))
    assert not any(prng.is_secure(k) for k in kids)


def test_spawn_numpy_generators():
    kids = prng.spawn(np.random.default_rng(1), 3)
    assert len(kids) == 3
    assert len({k.integers(0, 2**63) for k in kids}) == 3
    with pytest.raises(ValueError, match="n must be >= 0"):
        prng.spawn(None, -1)
    with pytest.raises(TypeError, match="n must be an int"):
        prng.spawn(None, 2.0)


def test_split_blocks_are_distinct_and_parent_moves_on():
    g = prng.default_rng(11)
    n = 3 * prng.BLOCK + 1
    with split(g, n) as (bgs, block):
        assert block == prng.BLOCK and len(bgs) == 4
        firsts = [int(b.random_raw()) for b in bgs]
    assert len(set(firsts)) == 4
    after = int(g.bit_generator.random_raw())
    assert after not in firsts


def _held_elsewhere(lock) -> bool:
    result = []

    def probe():
        got = lock.acquire(blocking=False)
        if got:
            lock.release()
        result.append(not got)

    t = threading.Thread(target=probe)
    t.start()
    t.join()
    return result[0]


def test_split_small_uses_parent_under_lock():
    g = prng.default_rng(11)
    with split(g, 10) as (bgs, block):
        assert bgs == [g.bit_generator] and block == 10
        assert _held_elsewhere(g.bit_generator.lock)
    assert not _held_elsewhere(g.bit_generator.lock)


class _Unseedable(np.random.PCG64):
    """A bit generator whose type cannot be rebuilt from a seed alone."""

    def __init__(self, seed, tag):
        super().__init__(seed)


def test_split_falls_back_to_one_stream_when_children_cannot_be_seeded():
    g = np.random.Generator(_Unseedable(1, "x"))
    with split(g, 5 * prng.BLOCK) as (bgs, block):
        assert bgs == [g.bit_generator] and block == 5 * prng.BLOCK
    with pytest.raises(TypeError, match="cannot split"):
        prng.spawn(g, 2)


@pytest.mark.parametrize("make", [lambda: AESCounter(7), lambda: np.random.PCG64(7)])
def test_blocks_do_not_replay_jumped_or_spawned_streams(make):
    # numpy's recommended parallel streams (jumped copies) and our own spawned children
    # must not reappear as the blocks of a multi-block call.
    n = 3 * prng.BLOCK
    parent = np.random.Generator(make())
    kids = prng.spawn(parent, 3)  # spawned first, from the same parent
    out = ppml_fast.noise.laplace(1.0, n, rng=parent)
    firsts = {out[k * prng.BLOCK] for k in range(3)}
    for j in range(1, 5):
        other = ppml_fast.noise.laplace(1.0, 1, rng=np.random.Generator(make().jumped(j)))
        assert other[0] not in firsts
    for kid in kids:
        assert ppml_fast.noise.laplace(1.0, 1, rng=kid)[0] not in firsts


def test_children_are_keyed_by_parent_output():
    bg = AESCounter(3)
    kids = prng.children(bg, 2)
    ref = AESCounter(3).random_raw(4)
    assert kids[0].random_raw() == AESCounter(key=int(ref[0]) | (int(ref[1]) << 64)).random_raw()
    assert isinstance(prng.children(np.random.SFC64(1), 2)[1], np.random.SFC64)


def test_dp_warning_fires_once_for_seeded_streams():
    prng._reset_dp_warning()
    with pytest.warns(ppml_fast.InsecureRandomnessWarning, match="seed"):
        prng.resolve_for_dp(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prng.resolve_for_dp(3)  # once per process
    prng._reset_dp_warning()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prng.resolve_for_dp(None)
        prng.resolve_for_dp(prng.default_rng())
    prng._reset_dp_warning()


def test_resolve_none_is_shared_secure_stream():
    a = prng.resolve(None)
    assert a is prng.resolve(None) and prng.is_secure(a)


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "win32", reason="needs fork")
def test_forked_child_does_not_replay_parent_stream():
    prng.resolve(None)  # make sure the shared stream exists before fork
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        os.write(w, prng.resolve(None).bit_generator.random_raw(2).tobytes())
        os._exit(0)
    os.close(w)
    child = os.read(r, 16)
    os.waitpid(pid, 0)
    parent = prng.resolve(None).bit_generator.random_raw(2).tobytes()
    assert child != parent


def test_num_threads_setting():
    old = ppml_fast.get_num_threads()
    with ppml_fast.num_threads(1):
        assert ppml_fast.get_num_threads() == 1
    assert ppml_fast.get_num_threads() == old
    with pytest.raises(ValueError, match="n must be >= 1"):
        ppml_fast.set_num_threads(0)
    with pytest.raises(TypeError, match="n must be an int"):
        ppml_fast.set_num_threads(1.5)


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "win32", reason="needs fork")
def test_forked_child_rekeys_every_secure_stream_it_holds():
    mine = prng.default_rng()
    kid = prng.spawn(None, 1)[0]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        words = [g.bit_generator.random_raw(2).tobytes() for g in (mine, kid)]
        os.write(w, b"".join(words))
        os._exit(0)
    os.close(w)
    child = os.read(r, 32)
    os.waitpid(pid, 0)
    parent = b"".join(g.bit_generator.random_raw(2).tobytes() for g in (mine, kid))
    assert child[:16] != parent[:16] and child[16:] != parent[16:]


def test_secure_streams_refuse_to_be_pickled_seeded_ones_do_not():
    import copy
    import pickle

    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(prng.default_rng())
    with pytest.raises(TypeError, match="cannot be pickled"):
        copy.deepcopy(prng.spawn(None, 1)[0])
    seeded = prng.default_rng(5)
    again = pickle.loads(pickle.dumps(seeded))
    assert np.array_equal(again.random(3), seeded.random(3))


def test_secure_flag_accepts_numpy_bools():
    assert not prng.is_secure(prng.default_rng(secure=np.False_))
    assert prng.is_secure(prng.default_rng(secure=np.True_))


# --- secure bit generators cannot be copied; OS-keyed streams are re-keyed after fork ---


def test_secure_bit_generator_refuses_pickle_and_copies():
    import copy
    import pickle

    gen = prng.default_rng()
    kid = prng.spawn(gen, 1)[0]
    for bg in (gen.bit_generator, kid.bit_generator, gen.bit_generator.jumped()):
        for clone in (copy.deepcopy, copy.copy, pickle.dumps):
            with pytest.raises(TypeError, match="cannot be pickled or copied"):
                clone(bg)
    # a seeded or unseeded-insecure stream's bit generator pickles as before
    for other in (prng.default_rng(5), prng.default_rng(secure=False)):
        again = pickle.loads(pickle.dumps(other.bit_generator))
        assert np.array_equal(again.random_raw(4), other.bit_generator.random_raw(4))


def test_secure_bit_generator_still_feeds_kernels_and_splits():
    gen = prng.default_rng()
    x = ppml_fast.noise.laplace(1.0, size=3 * prng.BLOCK + 5, rng=gen)  # several blocks
    assert x.shape == (3 * prng.BLOCK + 5,) and np.isfinite(x).all()
    assert len(np.unique(x)) == x.size


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "win32", reason="needs fork")
def test_forked_child_rekeys_unseeded_insecure_streams_and_keeps_seeded_ones():
    from .test_fork import _fork_call

    loose = prng.default_rng(secure=False)  # keyed from the OS, just not marked secure
    loose_kid = prng.spawn(loose, 1)[0]
    seeded = prng.default_rng(7)
    seeded_kid = prng.spawn(prng.default_rng(8), 1)[0]
    gens = (loose, loose_kid, seeded, seeded_kid)

    child = _fork_call(lambda: [g.bit_generator.random_raw(2).tolist() for g in gens])
    parent = [g.bit_generator.random_raw(2).tolist() for g in gens]
    assert child[0] != parent[0] and child[1] != parent[1]  # never replayed by a fork
    assert child[2] == parent[2] and child[3] == parent[3]  # seeded: still reproducible


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "win32", reason="needs fork")
@pytest.mark.parametrize("kind", ["secure", "seeded", "shared"])
def test_stream_lock_held_by_another_thread_at_fork(kind):
    from .test_fork import _fork_call

    gen = {
        "secure": prng.default_rng,
        "seeded": lambda: prng.default_rng(3),
        "shared": lambda: prng.resolve(None),
    }[kind]()
    inside, done = threading.Event(), threading.Event()

    def hold() -> None:
        with gen.bit_generator.lock:  # as a single-block kernel call does while it runs
            inside.set()
            done.wait(60)

    t = threading.Thread(target=hold, daemon=True)
    t.start()
    assert inside.wait(60)

    def child():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = ppml_fast.noise.laplace(1.0, size=10, rng=gen)
            b = gen.random(3)  # numpy's own methods take the same lock
            c = ppml_fast.noise.laplace(1.0, size=10, rng=None)
        return a.shape, b.shape, c.shape

    try:
        got = _fork_call(child, timeout=30)
    finally:
        done.set()
        t.join(60)
    assert got == ((10,), (3,), (10,))
