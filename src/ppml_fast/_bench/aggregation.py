"""Benchmark cases for :mod:`ppml_fast.aggregation`: the federated aggregators and secure
aggregation.

- FedAvg over 1000 clients (10^4 parameters in the quick run; 10^5, 400 MB, with
  ``full``) against the plain numpy ``(w[:, None] * X).sum(0) / w.sum()``; peers
  "numpy gemv" (``w @ X``, one BLAS matrix-vector product) and "read probe" (one plain
  read of X on all threads, ``_native.clipping.read_probe``), so ``vs read probe`` is the
  fraction of the machine's read bandwidth, measured in the same run, that FedAvg
  reaches (the target is at most 1.5 reads' time: >= 0.67, at 10^5);
- StreamingFedAvg (one ``add`` per client) against a numpy loop ``acc += w_i x_i``;
- DP-FedAvg on the same matrix against tuned numpy in float32 (``einsum`` norms, the
  weighted sum of the clipped rows as one ``gemv``, float32 noise; no float64 copy);
  peer "numpy f64 copy": the literal formula on a float64 copy (norms, clipped copy,
  sum, noise, mean);
- coordinate median and 10% trimmed mean over 100 clients against ``numpy.median`` and
  ``scipy.stats.trim_mean``;
- Krum over 100 clients against numpy with one Gram matrix (float64, centred on the
  column means, as the native code computes it); peers: the same Gram in float32 (one
  ``sgemm``, no copy, less accurate) and the pairwise-difference loop (4950 difference
  vectors), against which the target is >= 5x at 10^6 parameters (a ``full`` row, whose
  loop takes seconds per call);
- the FedProx gradient against the numpy formula;
- secure aggregation (:mod:`ppml_fast.aggregation.secure`): the round's hot path, the
  masked-sum phase of SecAgg+ (each surviving client expands its self mask and one mask
  per neighbour and adds them to its quantised update; the server sums the masked
  vectors and removes the survivors' self masks and the masks shared with dropped
  clients), with the seeds already agreed: the same seeds and the same work for both
  sides. Native: the AES-CTR kernel fused with the ring addition. Reference: the same
  phase with numpy PCG64 masks and wrapping uint64 adds
  (``ppml_fast.reference.aggregation_secure``). When Flower is installed, its SecAgg+ mask
  code (``pseudo_rand_gen``: numpy RandomState seeded with 32 bits, int64 arithmetic mod
  2^32) runs the same phase as a peer. A whole round (X25519, HKDF, Shamir, AES-GCM shares
  included) is timed for scale, and the kernel's keystream rate next to
  ``cryptography``'s AES-128-CTR ``update_into`` on one core.
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _config, aggregation, sharing
from .._native import clipping as _clip_kernels
from ..aggregation import secure as _secagg
from ..reference import aggregation as ref
from ..reference import aggregation_secure as ref_secure
from . import Case, Data, Target, select

Call = Callable[[], Any]


def _matrix(data: Data, n: int, d: int, dtype: Any = np.float32) -> np.ndarray:
    def make() -> np.ndarray:
        x = np.random.default_rng(n + d).standard_normal((n, d), dtype=np.float32)
        return x.astype(dtype, copy=False)

    return data.get(f"x{n}x{d}{np.dtype(dtype).str}", make)


def _weights(n: int) -> np.ndarray:
    return np.random.default_rng(n).integers(1, 500, n).astype(np.float64)


def _size(n: int, d: int, dtype: Any = np.float32) -> str:
    return f"{n} x {d:.0e} {'f32' if np.dtype(dtype) == np.float32 else 'f64'}"


def _vector(d: int) -> Callable[[Any], bool]:
    return lambda v: np.shape(v) == (d,)


def _fedavg(data: Data, n: int, d: int, dtype: Any, full: bool) -> Case:
    w = _weights(n)
    wd = w.astype(dtype)
    total = np.dtype(dtype).type(w.sum())

    def x() -> np.ndarray:
        return _matrix(data, n, d, dtype)

    target = None
    if full:
        target = Target(
            "vs read probe", 1 / 1.5, "within 1.5x of one read of the matrix (read probe)"
        )
    return Case(
        "fedavg",
        _size(n, d, dtype),
        native=lambda: aggregation.fedavg(x(), w),
        reference=lambda: ref.fedavg_numpy(x(), w),
        reference_name="numpy (w*X).sum",
        peers={
            "numpy gemv": lambda: (wd @ x()) / total,
            "read probe": lambda: _clip_kernels.read_probe(x(), _config.omp_threads()),
        },
        nbytes=n * d * np.dtype(dtype).itemsize,
        target=target,
        full=full,
        data=data,
        check=_vector(d),
    )


def _streaming(data: Data, n: int, d: int, full: bool) -> Case:
    w = _weights(n)

    def native() -> Any:
        agg = aggregation.StreamingFedAvg()
        for row, wi in zip(_matrix(data, n, d), w, strict=True):
            agg.add(row, wi)
        return agg.result()

    def reference() -> Any:
        acc = np.zeros(d)
        for row, wi in zip(_matrix(data, n, d), w, strict=True):
            acc += wi * row
        return (acc / w.sum()).astype(np.float32)

    return Case(
        "StreamingFedAvg.add x n",
        _size(n, d),
        native=native,
        reference=reference,
        reference_name="numpy acc += w*x",
        nbytes=n * d * 4,
        full=full,
        data=data,
        check=_vector(d),
    )


def _dp_fedavg(data: Data, n: int, d: int, full: bool) -> Case:
    pcg = np.random.Generator(np.random.PCG64())
    return Case(
        "dp_fedavg",
        _size(n, d),
        native=lambda: (
            aggregation.dp_fedavg(_matrix(data, n, d), 50.0, 1.0, expected_clients=n).update
        ),
        reference=lambda: ref.dp_fedavg_numpy(
            _matrix(data, n, d), 50.0, 1.0, pcg, denominator=float(n)
        ),
        reference_name="numpy f32: einsum norms, gemv, noise",
        peers={
            "numpy f64 copy": lambda: ref.dp_fedavg(
                _matrix(data, n, d), 50.0, 1.0, pcg, denominator=float(n)
            )
        },
        nbytes=n * d * 4,
        full=full,
        data=data,
        check=_vector(d),
    )


def _robust(data: Data, n: int, d: int, full: bool) -> list[Case]:
    trim_ref: Call | None = None
    try:
        trim_mean = importlib.import_module("scipy.stats").trim_mean
        trim_ref = lambda: trim_mean(_matrix(data, n, d), 0.1, axis=0)  # noqa: E731
    except ImportError:
        pass
    return [
        Case(
            "coordinate_median",
            _size(n, d),
            native=lambda: aggregation.coordinate_median(_matrix(data, n, d)),
            reference=lambda: np.median(_matrix(data, n, d), axis=0),
            reference_name="numpy.median",
            items=n * d,
            full=full,
            data=data,
            check=_vector(d),
        ),
        Case(
            "trimmed_mean 10%",
            _size(n, d),
            native=lambda: aggregation.trimmed_mean(_matrix(data, n, d), 0.1),
            reference=trim_ref,
            reference_name="scipy trim_mean",
            items=n * d,
            full=full,
            data=data,
            check=_vector(d),
        ),
    ]


def _krum(data: Data, n: int, d: int, full: bool) -> Case:
    """Krum against numpy with one Gram matrix, float64 and centred like the native
    code; peers: the same in float32 (``sgemm``, no copy, less accurate) and the pairwise
    loop. The target, for 100 x 10^6, is against the pairwise loop: at 10^5 or less a row
    fits in L2, so the loop's difference vectors are cheaper than at full size."""
    target = None
    if d >= 10**6:
        target = Target("vs numpy pair loop", 5.0, ">= 5x the pairwise numpy reference")
    return Case(
        "krum f=10",
        _size(n, d),
        native=lambda: aggregation.krum(_matrix(data, n, d), 10).indices,
        reference=lambda: ref.krum_gram(_matrix(data, n, d), 10)[1],
        reference_name="numpy Gram, f64 centred",
        peers={
            "numpy Gram f32": lambda: ref.krum_gram(_matrix(data, n, d), 10, centred=False)[1],
            "numpy pair loop": lambda: ref.krum(_matrix(data, n, d), 10)[1],
        },
        nbytes=n * d * 4,
        target=target,
        full=full,
        data=data,
        check=lambda idx: np.shape(idx) == (1,),
    )


def _fedprox(data: Data, size: int, full: bool) -> Case:
    def native() -> Any:
        g, w, wg = _matrix(data, 3, size)
        return aggregation.fedprox_gradient(g, w, wg, 0.01)

    def reference() -> Any:
        g, w, wg = _matrix(data, 3, size)
        return ref.fedprox_gradient(g, w, wg, 0.01)

    return Case(
        "fedprox_gradient",
        f"{size:.0e} f32",
        native=native,
        reference=reference,
        reference_name="numpy",
        items=size,
        full=full,
        data=data,
        check=_vector(size),
    )


def _plan(n: int, k: int, dropped: set[int], seed: int) -> tuple[dict[int, Any], tuple[Any, Any]]:
    """Agreed seeds of a SecAgg+ round: each survivor's (seeds, signs) and the server's."""
    graph = _secagg.secagg_graph(n, k, seed)
    pair = {}
    for u in range(n):
        for v in graph[u].tolist():
            if u < v:
                pair[(u, v)] = os.urandom(16)
    self_seed = {u: os.urandom(16) for u in range(n)}
    clients = {}
    for u in range(n):
        if u in dropped:
            continue
        seeds, signs = [self_seed[u]], [1]
        for v in graph[u].tolist():
            seeds.append(pair[(min(u, v), max(u, v))])
            signs.append(1 if v > u else -1)
        clients[u] = (seeds, signs)
    s_seeds, s_signs = [], []
    for u in clients:
        s_seeds.append(self_seed[u])
        s_signs.append(-1)
    for v in sorted(dropped):
        for u in graph[v].tolist():
            if u in clients:
                s_seeds.append(pair[(min(u, v), max(u, v))])
                s_signs.append(-1 if v > u else 1)
    return clients, (s_seeds, s_signs)


def native_masked_round(
    q: np.ndarray, clients: dict[int, Any], server: tuple[Any, Any]
) -> np.ndarray:
    """The masked-sum phase with ppml_fast's kernels: ``sum of q[survivors]`` (mod 2^64).

    Parameters
    ----------
    q : numpy.ndarray
        Quantised updates, (n, D) uint64.
    clients : dict
        Each survivor's ``(seeds, signs)``.
    server : tuple
        The server's ``(seeds, signs)``: survivors' self masks, masks shared with the
        dropped clients.

    Returns
    -------
    numpy.ndarray
        The unmasked sum, uint64.
    """
    total = None
    y = np.empty(q.shape[1], dtype=np.uint64)
    for u, (seeds, signs) in clients.items():
        _secagg.expand_masks(y, seeds, signs, base=q[u])  # client u's masked input
        # the server adds it on arrival, mod 2^64 in place (a copy for the first input)
        total = y.copy() if total is None else sharing.add(total, y, out=total)
    assert total is not None
    _secagg.expand_masks(total, *server)
    return total


def _flower(state: Callable[[], dict[str, Any]], dim: int) -> dict[str, Call]:
    """Flower's SecAgg+ mask code on the same phase (its RandomState PRG seeded with 32
    bits, int64 arithmetic mod 2^32), when Flower is installed."""
    try:
        flwr_utils = importlib.import_module("flwr.common.secure_aggregation.secaggplus_utils")
        flwr_arith = importlib.import_module("flwr.common.secure_aggregation.ndarrays_arithmetic")
    except ImportError:
        return {}

    def flower() -> Any:
        s = state()
        mod = 1 << 32
        dims = [(dim,)]

        def apply(vec: list[Any], seeds: list[bytes], signs: list[int]) -> list[Any]:
            for seed, sign in zip(seeds, signs, strict=True):
                mask = flwr_utils.pseudo_rand_gen(seed, mod, dims)
                vec = (
                    flwr_arith.parameters_addition(vec, mask)
                    if sign > 0
                    else flwr_arith.parameters_subtraction(vec, mask)
                )
            return list(flwr_arith.parameters_mod(vec, mod))

        total = [np.zeros(dim, np.int64)]
        for u, (seeds, signs) in s["clients"].items():
            y = apply([(s["q"][u] & np.uint64(mod - 1)).astype(np.int64)], seeds, signs)
            total = flwr_arith.parameters_mod(flwr_arith.parameters_addition(total, y), mod)
        return apply(total, *s["server"])

    return {"flower": flower}


def _secure(n: int, dim: int, full: bool) -> list[Case]:
    """The masked-sum phase and a whole SecAgg+ round, ``n`` clients x ``dim``."""
    data = Data()
    k = max(2, 2 * round(math.log2(n)))

    def state() -> dict[str, Any]:
        def make() -> dict[str, Any]:
            gen = np.random.default_rng()
            dropped = set(gen.choice(n, size=n // 10, replace=False).tolist())
            q = _secagg.quantize(gen.uniform(-1, 1, (n, dim)), 1.0, 16)
            clients, server = _plan(n, k, dropped, 1)
            expected = q[sorted(clients)].sum(axis=0, dtype=np.uint64)
            return {"q": q, "clients": clients, "server": server, "expected": expected}

        return dict(data.get("plan", make))

    def round_input() -> np.ndarray:
        return data.get("x", lambda: np.random.default_rng().uniform(-1, 1, (n, dim)))

    def native() -> Any:
        s = state()
        return native_masked_round(s["q"], s["clients"], s["server"])

    def reference() -> Any:
        s = state()
        return ref_secure.numpy_masked_round(s["q"], s["clients"], s["server"])

    target = None
    if full:
        target = Target("speed-up", 10.0, ">= 10x the same protocol with numpy masks")
    words = (n - n // 10) * (k + 1) * dim + (n - n // 10) * dim
    return [
        Case(
            f"secagg+ masked-sum round (k={k}, 10% dropouts)",
            f"{n} x {dim:.0e}",
            native=native,
            reference=reference,
            reference_name="numpy PCG64 masks",
            peers=_flower(state, dim),
            nbytes=8 * words,
            target=target,
            full=full,
            data=data,
            check=lambda total: np.array_equal(total, state()["expected"]),  # masks cancel
        ),
        Case(
            f"secagg+ whole round (X25519, Shamir; k={k}, 10% dropouts)",
            f"{n} x {dim:.0e}",
            native=lambda: _secagg.secure_aggregate(round_input(), neighbors=k, dropout=0.1, rng=3),
            full=full,
            data=data,
        ),
    ]


def _mask_expansion() -> Case:
    data = Data()
    words = 10**6
    seed = [os.urandom(16)]

    def buf() -> np.ndarray:
        return data.get("buf", lambda: np.zeros(words, np.uint64))

    peers: dict[str, Call] = {}
    try:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        def crypto_ctr() -> Any:
            zeros = data.get("zeros", lambda: bytes(8 * words))
            sink = data.get("sink", lambda: bytearray(8 * words))
            enc = Cipher(algorithms.AES(seed[0]), modes.CTR(bytes(16))).encryptor()
            return enc.update_into(zeros, sink)

        peers["cryptography AES-CTR (1 core)"] = crypto_ctr
    except ImportError:  # pragma: no cover
        pass
    return Case(
        "mask expansion: AES-128-CTR keystream added mod 2^64",
        "1e6 words",
        native=lambda: _secagg.expand_masks(buf(), seed, [1]),
        peers=peers,
        nbytes=8 * words,
        data=data,
    )


def _plain(d_avg: int, d_robust: int, d_krum: list[int], d_prox: int, full: bool) -> list[Case]:
    """The plain aggregators; one operand cache per size, so that each is dropped early."""
    data = Data()
    out = [
        _fedavg(data, 1000, d_avg, dt, full)
        for dt in ([np.float32, np.float64] if full else [np.float32])
    ]
    out += [_streaming(data, 1000, d_avg, full), _dp_fedavg(data, 1000, d_avg, full)]
    out += _robust(data, 100, d_robust, full)
    out += [_krum(data, 100, d, full) for d in d_krum]
    out.append(_fedprox(data, d_prox, full))
    return out


def cases(full: bool) -> list[Case]:
    """The aggregation rows; ``full`` adds the large sizes and their targets.

    Parameters
    ----------
    full : bool
        Include the rows marked ``full``.

    Returns
    -------
    list of Case
        FedAvg, StreamingFedAvg and DP-FedAvg on 1000 x 10^4 float32, the coordinate
        median, trimmed mean and Krum on 100 x 10^4, the FedProx gradient on 10^6, the
        SecAgg+ masked-sum phase and a whole round on 100 x 10^4, and the mask
        expansion on 10^6 words. ``full`` adds FedAvg on 1000 x 10^5 float32 and
        float64, the others on 1000 x 10^5 / 100 x 10^5, Krum on 100 x 10^5 and
        100 x 10^6, FedProx on 10^7, and SecAgg+ on 100 x 10^5 and 100 x 10^6.
    """
    out = _plain(10**4, 10**4, [10**4], 10**6, False)
    out += [*_secure(100, 10**4, False), _mask_expansion()]
    out += _plain(10**5, 10**5, [10**5, 10**6], 10**7, True)
    out += _secure(100, 10**5, True) + _secure(100, 10**6, True)[:1]
    return select(out, full)
