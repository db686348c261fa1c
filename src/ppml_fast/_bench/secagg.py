"""Benchmark rows for secure aggregation (:mod:`ppml_fast.aggregation.secure`).

The timed part is the round's hot path, the masked-sum phase of SecAgg+ (each surviving
client expands its self mask and one mask per neighbour and adds them to its quantised
update; the server sums the masked vectors and removes the survivors' self masks and
the masks shared with dropped clients), with the seeds already agreed: the same seeds and
the same work for both sides. Native: the AES-CTR kernel fused with the ring addition.
Reference: the same phase with numpy PCG64 masks and wrapping uint64 adds
(``ppml_fast.reference.aggregation_secure``). A third row times a whole round (X25519, HKDF, Shamir,
AES-GCM shares included) for scale, and a fourth gives the kernel's keystream rate next
to ``cryptography``'s AES-128-CTR ``update_into`` on one core. When Flower is installed,
its SecAgg+ mask code (``pseudo_rand_gen``: numpy RandomState seeded with 32 bits, int64
arithmetic mod 2^32) runs the same phase as a peer column.
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from ..aggregation import secure as _secagg
from . import Case, Target

Call = Callable[[], Any]


def _plan(n: int, k: int, dropped: set[int], seed: int) -> tuple[dict, tuple]:
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


def native_masked_round(q: np.ndarray, clients: dict, server: tuple) -> np.ndarray:
    total = None
    y = np.empty(q.shape[1], dtype=np.uint64)
    for u, (seeds, signs) in clients.items():
        _secagg.expand_masks(y, seeds, signs, base=q[u])  # client u's masked input
        total = _secagg._accumulate(total, y)  # the server adds it on arrival
    assert total is not None
    _secagg.expand_masks(total, *server)
    return total


def cases(full: bool) -> list[Case]:
    ref = importlib.import_module("ppml_fast.reference.aggregation_secure")
    n = 100
    dim = 10**6 if full else 10**5
    k = max(2, 2 * round(math.log2(n)))
    state: dict[str, Any] = {}

    def setup() -> dict[str, Any]:
        if not state:
            gen = np.random.default_rng()
            dropped = set(gen.choice(n, size=n // 10, replace=False).tolist())
            q = _secagg.quantize(gen.uniform(-1, 1, (n, dim)), 1.0, 16)
            clients, server = _plan(n, k, dropped, 1)
            state.update(
                q=q, clients=clients, server=server, x=gen.uniform(-1, 1, (n, min(dim, 10**5)))
            )
        return state

    def native() -> Any:
        s = setup()
        return native_masked_round(s["q"], s["clients"], s["server"])

    def reference() -> Any:
        s = setup()
        return ref.numpy_masked_round(s["q"], s["clients"], s["server"])

    peers: dict[str, Call] = {}
    try:
        flwr_utils = importlib.import_module("flwr.common.secure_aggregation.secaggplus_utils")
        flwr_arith = importlib.import_module("flwr.common.secure_aggregation.ndarrays_arithmetic")

        def flower() -> Any:
            """The same phase with Flower's SecAgg+ mask code (its RandomState PRG seeded
            with 32 bits, int64 arithmetic mod 2^32)."""
            s = setup()
            mod = 1 << 32
            dims = [(dim,)]

            def apply(vec: list, seeds: list, signs: list) -> list:
                for seed, sign in zip(seeds, signs, strict=True):
                    mask = flwr_utils.pseudo_rand_gen(seed, mod, dims)
                    vec = (
                        flwr_arith.parameters_addition(vec, mask)
                        if sign > 0
                        else flwr_arith.parameters_subtraction(vec, mask)
                    )
                return flwr_arith.parameters_mod(vec, mod)

            total = [np.zeros(dim, np.int64)]
            for u, (seeds, signs) in s["clients"].items():
                y = apply([(s["q"][u] & np.uint64(mod - 1)).astype(np.int64)], seeds, signs)
                total = flwr_arith.parameters_mod(flwr_arith.parameters_addition(total, y), mod)
            return apply(total, *s["server"])

        peers["flower"] = flower
    except ImportError:
        pass
    words = (n - n // 10) * (k + 1) * dim + (n - n // 10) * dim
    out = [
        Case(
            f"secagg+ masked-sum round (k={k}, 10% dropouts)",
            f"{n} x {dim:.0e}",
            native=native,
            reference=reference,
            reference_name="numpy PCG64 masks",
            peers=peers,
            nbytes=8 * words,
            target=Target("speed-up", 10.0, ">= 10x the same protocol with numpy masks"),
        )
    ]
    out.append(
        Case(
            f"secagg+ whole round (X25519, Shamir; k={k}, 10% dropouts)",
            f"{n} x {min(dim, 10**5):.0e}",
            native=lambda: _secagg.secure_aggregate(setup()["x"], neighbors=k, dropout=0.1, rng=3),
        )
    )
    buf = np.zeros(10**6, np.uint64)
    seed = [os.urandom(16)]
    peers = {}
    try:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        zeros = bytes(8 * buf.size)
        sink = bytearray(8 * buf.size)

        def crypto_ctr() -> Any:
            enc = Cipher(algorithms.AES(seed[0]), modes.CTR(bytes(16))).encryptor()
            return enc.update_into(zeros, sink)

        peers["cryptography AES-CTR (1 core)"] = crypto_ctr
    except ImportError:  # pragma: no cover
        pass
    out.append(
        Case(
            "mask expansion: AES-128-CTR keystream added mod 2^64",
            "1e6 words",
            native=lambda: _secagg.expand_masks(buf, seed, [1]),
            peers=peers,
            nbytes=8 * buf.size,
        )
    )
    return out
