"""Kernels and locks in child processes (fork, forkserver, spawn).

Each kernel area runs multi-threaded in this process first (so GNU OpenMP's thread pool
and the column-kernel pool exist), then again in children made by every start method;
the child's result must equal the parent's (seeded) or decrypt correctly. A child that
hangs fails its test after ``TIMEOUT`` seconds instead of freezing the run.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import ppml_fast
from ppml_fast import _config

TIMEOUT = 60.0
METHODS = [m for m in ("fork", "forkserver", "spawn") if m in mp.get_all_start_methods()]
HAS_FORK = hasattr(os, "fork") and sys.platform != "win32"
needs_fork = pytest.mark.skipif(not HAS_FORK, reason="needs os.fork")

# --- one case per kernel area: a seeded, multi-threaded call (sizes above each kernel's
# parallel threshold), returning something comparable across processes -----------------


def _noise_continuous() -> Any:
    from ppml_fast import noise

    return noise.laplace(1.0, size=300_000, rng=11), noise.gaussian(2.0, size=300_000, rng=12)


def _noise_discrete() -> Any:
    from ppml_fast import noise

    return noise.discrete_laplace(3, size=300_000, rng=13), noise.discrete_gaussian(
        2.0, size=300_000, rng=14
    )


def _clipping() -> Any:
    from ppml_fast import clipping

    g = np.random.default_rng(15).standard_normal((64, 4096))
    return clipping.clip_per_sample(g, 1.0)


def _sharing() -> Any:
    from ppml_fast import sharing

    p = (1 << 61) - 1
    x = np.arange(200_000, dtype=np.uint64)
    shares = sharing.additive_share(x, 3, modulus=p, rng=16)
    return shares, sharing.mul(shares[0], shares[1], modulus=p)


def _secagg_masks() -> Any:
    from ppml_fast.aggregation import secure

    acc = np.zeros(1 << 18, dtype=np.uint64)
    secure.expand_masks(acc, [bytes(range(16)), bytes(range(1, 17))], [1, -1])
    return acc


def _accounting_rdp() -> Any:
    from ppml_fast.accounting import rdp

    rdp._rdp_cached.cache_clear()  # a forked child would otherwise reuse the parent's result
    orders = np.linspace(1.5, 256.0, 64)
    real = os.getloadavg
    os.getloadavg = lambda: (0.0, 0.0, 0.0)  # the kernel goes parallel only on idle cores
    try:
        return rdp.compute_rdp(0.01, 1.1, 100, orders)
    finally:
        os.getloadavg = real


def _paillier() -> Any:
    from ppml_fast import paillier as pl

    pk, sk = pl.generate_paillier_keypair(n_length=256)
    x = np.arange(-300, 300, dtype=np.int64)
    enc = pk.encrypt_batch(x)
    return sk.decrypt_batch(enc + enc), sk.decrypt_batch(enc + 1)


def _numba() -> Any:
    from ppml_fast import aggregation, mechanisms, stats

    x = np.random.default_rng(17).standard_normal((16, 50_000)).astype(np.float32)
    u = np.random.default_rng(18).standard_normal((2000, 50))
    return (
        aggregation.fedavg(x),
        aggregation.coordinate_median(x),
        mechanisms.exponential_mechanism(u, 1.0, 1.0, rng=19),
        stats.dp_sum(x, bounds=(-1.0, 1.0), epsilon=1.0, rng=20, axis=0),
    )


def _split_nopeek() -> Any:
    from ppml_fast.split import nopeek

    g = np.random.default_rng(21)
    x, z = g.random((150, 300)), g.standard_normal((150, 40))
    return nopeek.nopeek_loss(x, z, 0.5)


CASES: dict[str, Callable[[], Any]] = {
    "noise": _noise_continuous,
    "noise_discrete": _noise_discrete,
    "clipping": _clipping,
    "sharing": _sharing,
    "secagg_masks": _secagg_masks,
    "accounting_rdp": _accounting_rdp,
    "paillier": _paillier,
    "numba": _numba,
    "split_nopeek": _split_nopeek,
}


def _run_case(name: str) -> tuple[Any, int, int]:
    """The case on 2 threads; the thread count the OpenMP kernels were given, and the
    setting (:func:`ppml_fast.get_num_threads`)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seeded noise warns once per process
        with ppml_fast.num_threads(2):
            return CASES[name](), _config.omp_threads(), ppml_fast.get_num_threads()


def _equal(a: Any, b: Any) -> None:
    if isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _equal(x, y)
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    else:
        assert a == b


# --- parent results and one pool per start method ----------------------------------------


@pytest.fixture(scope="module")
def parent_results() -> dict[str, Any]:
    """Every case run here first, on 2 threads: the thread pools exist from now on."""
    out = {name: _run_case(name)[0] for name in CASES}
    assert _config._omp_team_started  # a multi-threaded OpenMP kernel did run
    return out


class _Pools:
    """One single-worker pool per start method, made after the parent's kernels ran; a
    pool whose child hung is terminated and replaced."""

    def __init__(self) -> None:
        self._pools: dict[str, Any] = {}

    def call(self, method: str, fn: Callable[..., Any], *args: Any) -> Any:
        pool = self._pools.get(method)
        if pool is None:
            pool = self._pools[method] = mp.get_context(method).Pool(1)
        try:
            return pool.apply_async(fn, args).get(timeout=TIMEOUT)
        except mp.TimeoutError:
            del self._pools[method]
            pool.terminate()
            pytest.fail(f"a {method!r} child hung in {fn.__name__}{args}")

    def close(self) -> None:
        for pool in self._pools.values():
            pool.terminate()


@pytest.fixture(scope="module")
def pools(parent_results: dict[str, Any]) -> Iterator[_Pools]:
    p = _Pools()
    yield p
    p.close()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", list(CASES))
def test_kernel_in_child_after_parent_ran_it(case, method, parent_results, pools):
    got, threads, setting = pools.call(method, _run_case, case)
    _equal(got, parent_results[case])
    if case == "paillier":
        x = np.arange(-300, 300)
        _equal(got, (2 * x, x + 1))
    # a forked child of a process whose OpenMP pool exists runs the kernels on one
    # thread; forkserver and spawn children start clean and use every thread
    assert threads == (1 if method == "fork" else 2)
    assert setting == 2  # the user's setting is kept


# --- raw os.fork -----------------------------------------------------------------------


def _fork_call(fn: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    """``fn()`` in a child made by ``os.fork()``: its result, or a test failure when the
    child raises, dies or does not answer within ``timeout`` seconds (it is then killed)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            os.close(r)
            try:
                data = pickle.dumps(("ok", fn()))
            except BaseException as exc:
                data = pickle.dumps(("error", repr(exc)))
            with os.fdopen(w, "wb") as f:
                f.write(data)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                pytest.fail(f"the forked child hung in {getattr(fn, '__name__', fn)}")
            chunk = os.read(r, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    if not chunks:
        pytest.fail("the forked child died without an answer")
    status, value = pickle.loads(b"".join(chunks))
    if status != "ok":
        pytest.fail(f"the forked child raised {value}")
    return value


@needs_fork
@pytest.mark.parametrize("case", ["noise", "noise_discrete", "sharing", "paillier"])
def test_kernel_in_raw_fork_child(case, parent_results):
    got, threads, setting = _fork_call(lambda: _run_case(case))
    _equal(got, parent_results[case])
    assert (threads, setting) == (1, 2)


@needs_fork
def test_fork_before_any_parallel_kernel_keeps_every_thread():
    # a fresh interpreter: fork before and after the first multi-threaded kernel
    import subprocess

    code = (
        "import os, ppml_fast\n"
        "from ppml_fast import _config, noise\n"
        "ppml_fast.set_num_threads(2)\n"
        "def child():\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        noise.laplace(1.0, size=300_000, rng=1)\n"
        "        os._exit(10 + _config.omp_threads())\n"
        "    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])\n"
        "first = child()\n"
        "noise.laplace(1.0, size=300_000, rng=1)\n"
        "print(first, child())\n"
    )
    res = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=os.environ.copy(),
    )
    assert res.returncode == 0, res.stderr
    # forked before: all (2) threads; forked after the parent's team started: one
    assert res.stdout.split() == ["12", "11"]


# --- locks held by another thread at the fork ------------------------------------------


class _Holder:
    """A thread that holds ``lock`` (or runs ``body``) until released."""

    def __init__(self, lock: Any = None, body: Callable[[threading.Event], None] | None = None):
        self.inside = threading.Event()
        self.done = threading.Event()

        def run() -> None:
            if body is not None:
                body(self.done)
                return
            with lock:
                self.inside.set()
                self.done.wait(TIMEOUT)

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert self.inside.wait(TIMEOUT)

    def release(self) -> None:
        self.done.set()
        self.thread.join(TIMEOUT)


@needs_fork
def test_paillier_key_lock_held_by_another_thread_at_fork():
    from ppml_fast import paillier as pl

    pk, sk = pl.generate_paillier_keypair(n_length=256)
    x = np.arange(-50, 50)

    def child() -> Any:
        pk.precompute()  # takes the key's lock
        enc = pk.encrypt_batch(x)
        return sk.decrypt_batch(enc + enc), sk.decrypt(pk.encrypt(7))

    holder = _Holder(pk._lock)
    try:
        got, seven = _fork_call(child)
    finally:
        holder.release()
    np.testing.assert_array_equal(got, 2 * x)
    assert seven == 7


@needs_fork
def test_paillier_fork_while_another_thread_is_inside_precompute(monkeypatch):
    from ppml_fast import paillier as pl
    from ppml_fast.paillier import keys

    pk, sk = pl.generate_paillier_keypair(n_length=256)
    real = keys._kernels
    parent = os.getpid()
    holder: _Holder

    class Blocking:  # the table kernel stalls in the holder thread of this process only
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def fixed_base_table(self, *args: Any) -> Any:
            if os.getpid() == parent and threading.current_thread() is holder.thread:
                holder.inside.set()
                holder.done.wait(TIMEOUT)
            return real.fixed_base_table(*args)

    monkeypatch.setattr(keys, "_kernels", Blocking())
    holder = _Holder.__new__(_Holder)
    holder.inside, holder.done = threading.Event(), threading.Event()
    holder.thread = threading.Thread(target=pk.precompute, daemon=True)
    holder.thread.start()
    assert holder.inside.wait(TIMEOUT)
    x = np.arange(-50, 50)

    def child() -> Any:
        assert pk._table is None  # the parent's half-built table was never stored
        pk.precompute()  # the child builds its own table
        enc = pk.encrypt_batch(x)
        return pk._table is not None, sk.decrypt_batch(enc + enc)

    try:
        built, got = _fork_call(child)
    finally:
        holder.release()
    assert built
    np.testing.assert_array_equal(got, 2 * x)
    assert pk._table is not None  # the parent's precompute finished after the release


@needs_fork
def test_config_lock_held_by_another_thread_at_fork():
    holder = _Holder(_config._lock)
    try:
        got = _fork_call(lambda: (ppml_fast.set_num_threads(3), ppml_fast.get_num_threads()))
    finally:
        holder.release()
    assert got == (None, 3)


@needs_fork
def test_budget_spend_in_flight_at_fork_is_counted_in_the_child():
    from ppml_fast.accounting import PrivacyBudget

    budget = PrivacyBudget(10.0, 1e-5)
    budget.spend(1.0)

    def half_spend(done: threading.Event) -> None:
        with budget._lock:  # as spend() does: history appended, sums not yet updated
            budget._history.append((2.0, 0.0))
            holder.inside.set()
            done.wait(TIMEOUT)
            budget._history.pop()

    holder = _Holder.__new__(_Holder)
    holder.inside, holder.done = threading.Event(), threading.Event()
    holder.thread = threading.Thread(target=half_spend, args=(holder.done,), daemon=True)
    holder.thread.start()
    assert holder.inside.wait(TIMEOUT)

    def child() -> Any:
        budget.spend(0.5)
        return budget.spent, len(budget)

    try:
        spent, n = _fork_call(child)
    finally:
        holder.release()
    assert n == 3
    assert spent[0] == pytest.approx(3.5)  # 1 + 2 (in flight at the fork) + 0.5
    assert budget.spent[0] == pytest.approx(1.0)


@needs_fork
def test_prv_accountant_lock_held_by_another_thread_at_fork():
    from ppml_fast.accounting import PRVAccountant

    acc = PRVAccountant()
    acc.step(noise_multiplier=1.1, sample_rate=0.01)
    want = acc.get_epsilon(1e-5)
    acc._cache.clear()
    holder = _Holder(acc._lock)
    try:
        got = _fork_call(lambda: acc.get_epsilon(1e-5))
    finally:
        holder.release()
    assert got == want


def test_fork_safe_lock_semantics():
    from ppml_fast._forksafe import ForkSafeLock

    lock = ForkSafeLock()
    with lock:
        assert lock.locked()
        assert not lock.acquire(blocking=False)
        with pytest.raises(RuntimeError, match="not re-entrant"):
            lock.acquire()
    assert not lock.locked()
    with pytest.raises(RuntimeError, match="does not hold"):
        lock.release()
    rlock = ForkSafeLock(reentrant=True)
    with rlock, rlock:
        assert rlock.locked()
        seen: list[bool] = []
        t = threading.Thread(target=lambda: seen.append(rlock.acquire(timeout=0.01)))
        t.start()
        t.join()
        assert seen == [False]
    assert not rlock.locked()


@needs_fork
def test_fork_safe_lock_held_by_the_forking_thread_stays_held_in_the_child():
    from ppml_fast._forksafe import ForkSafeLock

    repaired: list[int] = []
    lock = ForkSafeLock(reentrant=True, on_fork=lambda: repaired.append(1))

    def child() -> Any:
        held = lock.locked()
        lock.release()  # the forking thread still owns it and releases it as usual
        return held, lock.locked(), repaired

    with lock:
        got = _fork_call(child)
    assert got == (True, False, [])


# --- no process-wide side effects of import -------------------------------------------

_GOMP_PROBE = (
    "import os, subprocess, sys\n"
    "import ppml_fast\n"
    "from ppml_fast import noise\n"
    "ppml_fast.set_num_threads(2)\n"
    "noise.laplace(1.0, size=300_000, rng=1)\n"
    "child = subprocess.run([sys.executable, '-c', "
    "'import os; print(os.environ.get(\"GOMP_SPINCOUNT\"))'], capture_output=True, text=True)\n"
    "print(os.environ.get('GOMP_SPINCOUNT'), child.stdout.strip())\n"
)


def _gomp_probe(**env: str) -> tuple[list[str], str]:
    """Run the probe in a fresh interpreter: (our and a child's GOMP_SPINCOUNT, the
    spin count libgomp itself reports at its start)."""
    import subprocess

    base = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    base.pop("PPML_FAST_KEEP_OMP_SPIN", None)
    res = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", _GOMP_PROBE],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**base, "OMP_DISPLAY_ENV": "verbose", **env},
    )
    assert res.returncode == 0, res.stderr
    # libgomp prints its settings on stderr when it starts ("" : a build without OpenMP)
    shown = [ln.split("=", 1)[1] for ln in res.stderr.splitlines() if "GOMP_SPINCOUNT =" in ln]
    return res.stdout.splitlines()[-1].split(), (shown[0].strip(" '") if shown else "")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="GNU OpenMP on Linux")
def test_import_leaves_no_gomp_spincount_in_the_environment():
    seen, libgomp = _gomp_probe()
    assert seen == ["None", "None"]  # neither this process nor a child sees it
    assert libgomp in ("10000", "")  # libgomp read the short spin ("" : no GNU OpenMP)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="GNU OpenMP on Linux")
def test_users_own_gomp_settings_are_kept_and_the_opt_out_works():
    seen, libgomp = _gomp_probe(GOMP_SPINCOUNT="777")
    assert seen == ["777", "777"]
    assert libgomp in ("777", "")
    seen, libgomp = _gomp_probe(PPML_FAST_KEEP_OMP_SPIN="1")
    assert seen == ["None", "None"]
    assert libgomp != "10000"  # libgomp's own default
