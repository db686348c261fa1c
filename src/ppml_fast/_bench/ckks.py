"""Benchmark cases for :mod:`ppml_fast.ckks` (CKKS on TenSEAL), and the comparison table of
one federated round under plaintext FedAvg, DP-FedAvg, SecAgg+, packed Paillier and CKKS.

Rows. The reference is what a TenSEAL user writes by hand (``ppml_fast.reference.ckks``):

- encryption of a D-float update (D = 10^5; ``full``: 10^6) on the general preset (N =
  8192, primes [60, 40, 40, 60], scale 2^40; no Galois keys, which encryption never
  uses): :func:`ppml_fast.ckks.encrypt` (worker processes on every core, the serialised
  wire form as the result) against the seed-style loop of ``ts.ckks_vector(ctx, chunk)
  .serialize()`` over 4096-slot chunks on one core. The worker pool persists across
  calls; the runners' untimed warm-up call starts it, and the operands' setup already
  encrypts once, so no timed call forks. Symmetric (seeded) encryption and the
  addition-only preset (:func:`ppml_fast.ckks.aggregation_parameters` for 100 clients)
  are timed against the same loop; their byte targets compare the bytes each sends with
  the loop's (the measured value is loop bytes / ours);
- the server's :func:`ppml_fast.aggregation.encrypted_fedavg` of in-memory (deserialised,
  linked to the aggregator's public context) updates of 10^5 values from 10 clients
  (``full``: 100): with client-side weights (additions only) against the loop of TenSEAL
  additions it needs; with distinct server-side weights against the same additions (a
  lower bound: no weighting at all) and against the loop of TenSEAL ``v * w`` and
  additions;
- decryption of a D-float aggregate against the loop of ``.decrypt()`` over per-chunk
  vectors and against TenSEAL's ``.decrypt()`` of the same joined vector.

Without TenSEAL (the ``ckks`` extra) the area has no rows.

Comparison. :func:`comparison_table` runs one round of ``clients`` clients with a
``dim``-parameter update under each scheme, and :func:`comparison_markdown` renders it;
``ppml-fast bench --comparison`` prints it (``--full``: 100 clients, 10^5 parameters).
"""

from __future__ import annotations

import functools
import importlib.util
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._tables import render
from . import Case, Data, Row, Target, select

Call = Callable[[], Any]

#: Update length of the encryption and decryption rows: quick, full.
DIMS = (10**5, 10**6)
#: Clients of the server rows (updates of :data:`SERVER_DIM` values): quick, full.
SERVER_CLIENTS = (10, 100)
SERVER_DIM = 10**5
#: Clients the addition-only preset is sized for.
PRESET_CLIENTS = 100
#: Slots per chunk of the seed-style loop (N = 8192).
SEED_SLOTS = 4096


def available() -> bool:
    """Whether TenSEAL (the ``ckks`` extra) is installed."""
    return importlib.util.find_spec("tenseal") is not None


@dataclass(frozen=True)
class BytesTarget(Target):
    """A goal on bytes sent, not time: ``loop bytes / our bytes >= minimum``.

    ``sizes()`` returns ``(ours, loop)`` in bytes (made on first use, from the row's
    operands).
    """

    sizes: Callable[[], tuple[int, int]] = lambda: (1, 1)

    def measure(self, row: Row) -> float | None:
        """The seed loop's bytes over ours."""
        ours, loop = self.sizes()
        return loop / ours


def _contexts(data: Data) -> dict[str, Any]:
    """The key holder's contexts: general asymmetric and symmetric, addition-only."""

    def make() -> dict[str, Any]:
        from .. import ckks

        preset = ckks.aggregation_parameters(PRESET_CLIENTS)
        return {
            "general": ckks.make_context("general", galois_keys=False),
            "general_sym": ckks.make_context("general", galois_keys=False, symmetric=True),
            "addonly": ckks.make_context(preset),
            "addonly_sym": ckks.make_context(preset, symmetric=True),
        }

    return dict(data.get("contexts", make))


def _update(data: Data, d: int) -> np.ndarray:
    def make() -> np.ndarray:
        return np.random.default_rng().uniform(-1.0, 1.0, d)

    return data.get(f"x{d}", make)  # type: ignore[no-any-return]


def _bound(d: int, clients: int = 1) -> float:
    """The stated error bound of a sum of ``clients`` fresh general-preset ciphertexts of
    ``d`` values (public-key encryption: the larger error)."""
    from .. import ckks

    return ckks.error_bound(ckks.general_parameters(), values=d, clients=clients)


def _encrypt_rows(data: Data, d: int, full: bool) -> list[Case]:
    from .. import ckks
    from ..reference import ckks as ref

    def ctx(name: str) -> Any:
        return _contexts(data)[name]

    def x() -> np.ndarray:
        return _update(data, d)

    # Bytes sent, kept beyond the operands' cache (the targets are measured after the
    # runner cleared it): ours per context, and the seed loop's.
    nbytes: dict[str, int] = {}

    def warm(name: str) -> Any:
        """The context, after one encryption (it starts the worker pool and caches the
        context in the workers) that also gives the bytes sent."""
        nbytes[name] = data.get(f"warm-{name}", lambda: ckks.encrypt(ctx(name), x()).nbytes)
        return ctx(name)

    def sizes(name: str) -> Callable[[], tuple[int, int]]:
        def get() -> tuple[int, int]:
            if name not in nbytes:
                warm(name)
            if "loop" not in nbytes:
                sent = ref.encrypt_loop(ctx("general"), x(), SEED_SLOTS)
                nbytes["loop"] = sum(len(b) for b in sent)
            return nbytes[name], nbytes["loop"]

        return get

    tol = 2.0 * _bound(d)

    def check(out: Any) -> bool:
        if isinstance(out, list):  # the seed loop: one serialised vector per chunk
            return len(out) == -(-d // SEED_SLOTS)
        return bool(np.max(np.abs(out.decrypt() - x())) <= tol)

    seed = "ts.ckks_vector + serialize per 4096-slot chunk, 1 core"
    size = f"{d:,} floats"
    common: dict[str, Any] = {"full": full, "data": data, "items": d}
    return [
        Case(
            "ckks encrypt (general N=8192, asymmetric)",
            size,
            native=lambda: ckks.encrypt(warm("general"), x()),
            reference=lambda: ref.encrypt_loop(ctx("general"), x(), SEED_SLOTS),
            reference_name=seed,
            target=Target("speed-up", 1.8, ">= 1.8x the seed loop (all cores vs one)")
            if full
            else None,
            more_targets=[
                BytesTarget(
                    "bytes: seed loop / ours",
                    0.99,
                    "bytes on the wire within 1% of the seed loop's (no packing overhead)",
                    sizes("general"),
                )
            ]
            if full
            else [],
            check=check,
            **common,
        ),
        Case(
            "ckks encrypt (general N=8192, symmetric seeded)",
            size,
            native=lambda: ckks.encrypt(warm("general_sym"), x()),
            reference=lambda: ref.encrypt_loop(ctx("general"), x(), SEED_SLOTS),
            reference_name=seed,
            peers={
                "seed loop, TenSEAL symmetric context": lambda: ref.encrypt_loop(
                    ctx("general_sym"), x(), SEED_SLOTS
                )
            },
            target=BytesTarget(
                "bytes: seed loop / ours",
                2.0,
                "bytes on the wire <= half the seed loop's",
                sizes("general_sym"),
            )
            if full
            else None,
            check=check,
            **common,
        ),
        *(
            Case(
                f"ckks encrypt (addition-only preset, {PRESET_CLIENTS} clients, {kind})",
                size,
                native=lambda name=name: ckks.encrypt(warm(name), x()),  # type: ignore[misc]
                reference=lambda: ref.encrypt_loop(ctx("general"), x(), SEED_SLOTS),
                reference_name=seed,
                target=BytesTarget(
                    "bytes: seed loop / ours",
                    1.0,
                    "fewer bytes than the seed loop (reported; no issue target)",
                    sizes(name),
                )
                if full
                else None,
                check=check,
                **common,
            )
            for kind, name in (("asymmetric", "addonly"), ("symmetric", "addonly_sym"))
        ),
    ]


def _server_rows(data: Data, n: int, full: bool) -> list[Case]:
    from .. import aggregation, ckks
    from ..reference import ckks as ref

    d = SERVER_DIM

    def make() -> dict[str, Any]:
        ctx = _contexts(data)["general"]
        pub = ckks.public_context(ctx)
        gen = np.random.default_rng()
        xs = gen.uniform(-1.0, 1.0, (n, d))
        counts = gen.integers(50, 500, n).astype(np.float64)
        weights = gen.uniform(0.5, 2.0, n)  # distinct server-side weights

        def received(client_weights: np.ndarray | None) -> list[Any]:
            """What the server holds: each client's bytes, loaded and deserialised."""
            ups = []
            for k in range(n):
                w = None if client_weights is None else float(client_weights[k])
                sent = ckks.encrypt(ctx, xs[k], weight=w).serialize()
                u = ckks.load_update(sent, pub)
                u._vec()  # deserialise now: the rows time in-memory updates
                ups.append(u)
            return ups

        weighted = received(counts)
        plain = received(None)
        return {
            "ctx": ctx,
            "xs": xs,
            "counts": counts,
            "weights": weights,
            "weighted": weighted,
            "weighted_vecs": [u._vec() for u in weighted],
            "plain": plain,
            "plain_vecs": [u._vec() for u in plain],
        }

    def s(name: str) -> Any:
        return dict(data.get(f"server{n}", make))[name]

    def close(got: np.ndarray, want: np.ndarray) -> bool:
        # 2x the stated bound of a sum of n (the weights are at most 500, the sum is
        # divided by their total: the bound of the mean is below that of the sum)
        return bool(np.max(np.abs(got - want)) <= 2.0 * _bound(d, clients=n))

    def check_counts(out: Any) -> bool:
        c, xs = s("counts"), s("xs")
        if isinstance(out, ckks.EncryptedUpdate):
            return close(np.asarray(out.decrypt(s("ctx"))), c @ xs / c.sum())
        got = np.asarray(out.decrypt(s("ctx").secret_key()))
        return close(got / c.sum(), c @ xs / c.sum())

    def check_weights(out: Any) -> bool:
        w, xs = s("weights"), s("xs")
        if isinstance(out, ckks.EncryptedUpdate):
            return close(np.asarray(out.decrypt(s("ctx"))), w @ xs / w.sum())
        return True  # the reference's additions are not the weighted sum

    size = f"{n} clients x {d:,}"
    common: dict[str, Any] = {"full": full, "data": data, "items": n * d}
    adds = "TenSEAL additions (v0 + v1, then +=)"
    return [
        Case(
            "ckks encrypted_fedavg, client-side weights (additions)",
            size,
            native=lambda: aggregation.encrypted_fedavg(s("weighted")),
            reference=lambda: ref.sum_loop(s("weighted_vecs")),
            reference_name=adds,
            target=Target("speed-up", 0.5, "within 2x of the TenSEAL additions it needs")
            if full
            else None,
            check=check_counts,
            **common,
        ),
        Case(
            "ckks encrypted_fedavg, distinct server-side weights",
            size,
            native=lambda: aggregation.encrypted_fedavg(s("plain"), s("weights")),
            reference=lambda: ref.sum_loop(s("plain_vecs")),
            reference_name=f"{adds} only: unweighted, a lower bound",
            peers={
                "TenSEAL v * w + additions": lambda: ref.weighted_sum_loop(
                    s("plain_vecs"), s("weights")
                )
            },
            check=check_weights,
            **common,
        ),
    ]


def _decrypt_rows(data: Data, d: int, full: bool) -> list[Case]:
    from .. import aggregation, ckks
    from ..reference import ckks as ref

    def make() -> dict[str, Any]:
        ctx = _contexts(data)["general"]
        gen = np.random.default_rng()
        xs = gen.uniform(-1.0, 1.0, (2, d))
        agg = aggregation.encrypted_fedavg([ckks.encrypt(ctx, v) for v in xs])
        return {
            "ctx": ctx,
            "mean": xs.mean(axis=0),
            "agg": agg,
            "vec": agg._vec(),
            "chunks": ref.chunk_vectors(ctx, xs.mean(axis=0), SEED_SLOTS),
        }

    def s(name: str) -> Any:
        return dict(data.get(f"decrypt{d}", make))[name]

    def check(out: Any) -> bool:
        return bool(np.max(np.abs(out - s("mean"))) <= 2.0 * _bound(d, clients=2))

    return [
        Case(
            "ckks decrypt (general N=8192)",
            f"{d:,} floats",
            native=lambda: s("agg").decrypt(),
            reference=lambda: ref.decrypt_loop(s("chunks")),
            reference_name="per-chunk .decrypt() loop",
            peers={"TenSEAL .decrypt() of the vector": lambda: s("vec").decrypt()},
            items=d,
            check=check,
            full=full,
            data=data,
        )
    ]


def cases(full: bool) -> list[Case]:
    """The CKKS rows (none without TenSEAL); ``full`` adds the large sizes.

    Parameters
    ----------
    full : bool
        Include the rows marked ``full``.

    Returns
    -------
    list of Case
        Encryption (general preset asymmetric and symmetric, addition-only preset) and
        decryption of :data:`DIMS` floats, and the server's encrypted FedAvg of
        :data:`SERVER_CLIENTS` updates of :data:`SERVER_DIM` values.
    """
    if not available():
        return []
    out: list[Case] = []
    for big, (d, n) in enumerate(zip(DIMS, SERVER_CLIENTS, strict=True)):
        data = Data()  # one cache per size: the quick operands go before the large ones
        out += _encrypt_rows(data, d, bool(big))
        out += _server_rows(data, n, bool(big))
        out += _decrypt_rows(data, d, bool(big))
    return select(out, full)


# ------------------------------------------------------------------------ comparison

#: What the server learns, per scheme.
LEARNS = {
    "fedavg": "every client's update",
    "dp-fedavg": "every client's update (the published mean is DP)",
    "secagg+": "the sum of the survivors' quantised updates, and who dropped",
    "paillier": "ciphertexts only; the key holder learns the sum",
    "ckks": "ciphertexts only; the key holder learns the sum",
    "ckks-sym": "ciphertexts only; the key holder learns the sum (any client can decrypt "
    "any other's update)",
}


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """The seconds of one call of ``fn`` and what it returned."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _best_of_two(fn: Callable[[], Any]) -> tuple[float, Any]:
    """The faster of two calls of ``fn`` (the first may load or compile code) and what
    the second returned."""
    t1, _ = _timed(fn)
    t2, out = _timed(fn)
    return min(t1, t2), out


def comparison_table(
    clients: int = 100,
    dim: int = 10**5,
    *,
    dropout: float = 0.1,
    seed: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """One federated round under each scheme: times, bytes, what leaks, the error.

    Every scheme averages the same ``clients`` float32 updates of ``dim`` values (normal,
    standard deviation 0.01), with equal weights.

    Parameters
    ----------
    clients : int
        Clients in the round (>= 10, so that SecAgg+ has a neighbourhood and 10% drop).
    dim : int
        Values per update.
    dropout : float
        SecAgg+'s dropout rate (those clients' updates are not in its mean; its error is
        against the survivors' mean).
    seed : int, optional
        Seed of the updates (the schemes' own randomness is always fresh).
    progress : callable, optional
        ``progress(scheme)`` before each scheme.

    Returns
    -------
    list of dict
        One per scheme: ``scheme``, ``client_s`` (one client's encoding, encryption or
        masking and serialisation; the median over the clients), ``server_s`` (the
        server's work from the received bytes to the aggregate, deserialising included),
        ``decrypt_s`` (the key holder's decryption of the aggregate, 0 where there is
        none), ``bytes_per_client``, ``learns``, ``max_abs_error`` (of the aggregate
        against the exact float64 mean of the float32 updates) and ``bound`` (the stated
        error bound, NaN where there is none).
    """
    from .. import aggregation, ckks, paillier

    n = int(clients)
    if n < 10:
        raise ValueError(f"clients must be >= 10, got {n}")
    gen = np.random.default_rng(seed)
    x = np.clip(gen.normal(0.0, 0.01, (n, dim)), -1.0, 1.0).astype(np.float32)
    exact = x.astype(np.float64).mean(axis=0)
    rows: list[dict[str, Any]] = []

    def say(name: str) -> None:
        if progress is not None:
            progress(name)

    def err(got: Any, want: np.ndarray = exact) -> float:
        return float(np.max(np.abs(np.asarray(got, dtype=np.float64) - want)))

    # plaintext FedAvg: the clients send their float32 updates
    say("fedavg")
    sent = []
    times = []
    for k in range(n):
        t, b = _timed(x[k].tobytes)
        times.append(t)
        sent.append(b)
    t_srv, mean = _best_of_two(
        lambda: aggregation.fedavg(np.stack([np.frombuffer(b, np.float32) for b in sent]))
    )
    rows.append(
        _row("plaintext FedAvg", times, t_srv, 0.0, len(sent[0]), "fedavg", err(mean), math.nan)
    )

    # DP-FedAvg (central DP): clip at the largest norm (nothing clipped), sigma = 1
    say("dp-fedavg")
    c = float(np.max(np.linalg.norm(x.astype(np.float64), axis=1)))
    sigma = 1.0

    def dp_server() -> Any:
        ups = np.stack([np.frombuffer(b, np.float32) for b in sent])
        return aggregation.dp_fedavg(ups, c, sigma).update

    t_srv, mean = _best_of_two(dp_server)
    rows.append(
        _row(
            "DP-FedAvg (sigma=1, C=max norm)",
            times,
            t_srv,
            0.0,
            len(sent[0]),
            "dp-fedavg",
            err(mean),
            math.nan,
        )
    )

    rows.append(_secagg_row(x, dropout, gen, say, err))
    rows.append(_paillier_row(x, say, err, paillier))

    for preset in ("general", "addonly"):
        for sym in (False, True):
            rows.append(_ckks_row(x, exact, preset, sym, say, err, ckks, aggregation))
    return rows


def _row(
    scheme: str,
    client_times: list[float],
    server_s: float,
    decrypt_s: float,
    nbytes: int,
    learns: str,
    error: float,
    bound: float,
) -> dict[str, Any]:
    return {
        "scheme": scheme,
        "client_s": statistics.median(client_times),
        "server_s": server_s,
        "decrypt_s": decrypt_s,
        "bytes_per_client": int(nbytes),
        "learns": LEARNS[learns],
        "max_abs_error": error,
        "bound": bound,
    }


def _secagg_row(
    x: np.ndarray,
    dropout: float,
    gen: np.random.Generator,
    say: Callable[[str], None],
    err: Callable[..., float],
) -> dict[str, Any]:
    """SecAgg+ (k = the even number nearest 2 log2 n) with ``dropout`` of the clients
    dropping after sharing keys; the phases of ``secure_aggregate``, each party timed."""
    from ..aggregation import SecAggClient, SecAggServer, dequantize, quantize, secagg_graph
    from ..aggregation.secure import _S_CHUNKS

    say("secagg+")
    n, dim = x.shape
    clip, frac_bits = 1.0, 16
    k = max(2, 2 * round(math.log2(n)))
    graph = secagg_graph(n, k if k < n - 1 else None, gen)
    degree = len(graph[0])
    t = (degree + 1) // 2 + 1
    drop = set(gen.choice(n, round(dropout * n), replace=False).tolist())
    client_t = [0.0] * n
    server_t = 0.0

    def timed(u: int | None, fn: Callable[[], Any]) -> Any:
        nonlocal server_t
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        if u is None:
            server_t += dt
        else:
            client_t[u] += dt
        return out

    parties = [SecAggClient(u) for u in range(n)]

    def masked(u: int) -> Any:
        return parties[u].masked_input(quantize(x[u], clip, frac_bits))

    server = SecAggServer(n, t, graph)
    keys = {u: timed(u, p.advertise_keys) for u, p in enumerate(parties)}
    roster = timed(None, lambda: server.collect_keys(keys))
    outboxes = {
        u: timed(u, functools.partial(p.share_keys, roster, graph[u], t))
        for u, p in enumerate(parties)
    }
    routed = timed(None, lambda: server.route_shares(outboxes))
    for u, box in routed.items():
        timed(u, functools.partial(parties[u].receive_shares, box))
    alive = [u for u in range(n) if u not in drop]
    for u in alive:
        y = timed(u, functools.partial(masked, u))
        timed(None, functools.partial(server.add_masked, u, y))
    timed(None, server.check_recoverable)
    survivors = server.survivors()
    dropped = [u for u in range(n) if u not in set(survivors)]
    revealed = {
        u: timed(u, functools.partial(parties[u].unmask, survivors, dropped)) for u in survivors
    }
    total = timed(None, lambda: server.unmask(revealed, dim))
    mean = dequantize(total, frac_bits) / len(survivors)
    want = x[survivors].astype(np.float64).mean(axis=0)
    share_bytes = max((len(b) for box in outboxes.values() for b in box.values()), default=0)
    # as secure_aggregate counts it: keys, encrypted shares, masked input, revealed shares
    per_client = 64 + share_bytes * degree + 8 * dim + degree * 8 * _S_CHUNKS
    return _row(
        f"SecAgg+ (k={degree}, {len(drop)} of {n} drop, 16 fraction bits)",
        [client_t[u] for u in survivors],
        server_t,
        0.0,
        per_client,
        "secagg+",
        err(mean, want),
        2.0 ** -(frac_bits + 1),
    )


def _paillier_row(
    x: np.ndarray, say: Callable[[str], None], err: Callable[..., float], paillier: Any
) -> dict[str, Any]:
    """Packed Paillier (2048-bit key, 16-bit slots, clip 1, headroom for n clients)."""
    say("paillier")
    n = x.shape[0]
    pk, sk = paillier.generate_paillier_keypair(n_length=2048)
    pk.precompute()

    def client(k: int) -> bytes:
        out: bytes = paillier.encrypt_packed(pk, x[k], bits=16, clients=n, clip=1.0).to_bytes()
        return out

    times, sent = [], []
    for k in range(n):
        t, b = _timed(functools.partial(client, k))
        times.append(t)
        sent.append(b)

    def server() -> Any:
        arrays = [paillier.EncryptedPackedArray.from_bytes(b, pk) for b in sent]
        return paillier.sum_packed(arrays)

    t_srv, total = _best_of_two(server)
    t_dec, plain = _best_of_two(lambda: paillier.decrypt_packed(sk, total))
    probe = paillier.encrypt_packed(pk, x[0, :1], bits=16, clients=n, clip=1.0)
    return _row(
        "packed Paillier (2048-bit, 16-bit slots)",
        times,
        t_srv,
        t_dec,
        len(sent[0]),
        "paillier",
        err(plain / n),
        2.0 ** -(probe.frac_bits + 1),
    )


def _ckks_row(
    x: np.ndarray,
    exact: np.ndarray,
    preset: str,
    symmetric: bool,
    say: Callable[[str], None],
    err: Callable[..., float],
    ckks: Any,
    aggregation: Any,
) -> dict[str, Any]:
    """CKKS: the key holder's context (the clients' in the symmetric setting), the
    aggregator's public one, the clients' serialised updates, the server's
    encrypted_fedavg from the bytes, the key holder's decryption."""
    n, dim = x.shape
    name = "symmetric" if symmetric else "asymmetric"
    say(f"ckks {preset} {name}")
    if preset == "general":
        params = ckks.general_parameters()
        ctx = ckks.make_context("general", galois_keys=False, symmetric=symmetric)
        label = "general N=8192"
    else:
        params = ckks.aggregation_parameters(
            n, values=max(dim, 1), encryption="symmetric" if symmetric else "asymmetric"
        )
        ctx = ckks.make_context(params, symmetric=symmetric)
        label = f"addition-only N={params.poly_modulus_degree}"
    pub = ckks.public_context(ctx)
    client_ctx = ctx if symmetric else pub  # asymmetric clients hold only the public key
    ckks.encrypt(client_ctx, x[0])  # start the worker pool (once per process)
    times, sent = [], []

    # float64 in, float64 out: the aggregate's error is CKKS's, not a float32 rounding of
    # the result (the values are the float32 updates', exactly)
    def client(k: int) -> bytes:
        out: bytes = ckks.encrypt(client_ctx, x[k].astype(np.float64)).serialize()
        return out

    for k in range(n):
        t, b = _timed(functools.partial(client, k))
        times.append(t)
        sent.append(b)

    def server() -> Any:
        return aggregation.encrypted_fedavg([ckks.load_update(b, pub) for b in sent])

    t_srv, agg = _best_of_two(server)
    t_dec, mean = _best_of_two(lambda: agg.decrypt(ctx))
    bound = ckks.error_bound(params, values=dim, encryption=name, clients=n) / n
    return _row(
        f"CKKS {name} ({label})",
        times,
        t_srv,
        t_dec,
        len(sent[0]),
        "ckks-sym" if symmetric else "ckks",
        err(mean, exact),
        bound,
    )


def _fmt_s(s: float) -> str:
    if s == 0.0:
        return "-"
    return f"{s:.2f} s" if s >= 1 else f"{s * 1e3:.1f} ms" if s >= 1e-3 else f"{s * 1e6:.0f} us"


def _fmt_bytes(b: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if b >= size:
            return f"{b / size:.2f} {unit}"
    return f"{b} B"


def comparison_markdown(rows: list[dict[str, Any]], markdown: bool = True) -> str:
    """:func:`comparison_table`'s rows as a table (Markdown, or aligned plain text).

    Parameters
    ----------
    rows : list of dict
        :func:`comparison_table`'s result.
    markdown : bool
        A Markdown table instead of aligned plain text.

    Returns
    -------
    str
        Columns scheme, client time, server time, decryption, bytes per client, what
        the server learns, max abs error and the stated bound.
    """
    head = [
        "scheme",
        "client time",
        "server time",
        "decrypt (key holder)",
        "bytes per client",
        "server learns",
        "max abs error",
        "stated bound",
    ]
    body = [
        [
            r["scheme"],
            _fmt_s(r["client_s"]),
            _fmt_s(r["server_s"]),
            _fmt_s(r["decrypt_s"]),
            _fmt_bytes(r["bytes_per_client"]),
            r["learns"],
            f"{r['max_abs_error']:.2e}",
            "-" if math.isnan(r["bound"]) else f"{r['bound']:.2e}",
        ]
        for r in rows
    ]
    return render(head, body, markdown)


#: The notes printed under the comparison table.
COMPARISON_NOTES = (
    "One round, every scheme on the same float32 updates (normal, standard deviation "
    "0.01), equal weights. Client time: one client's encoding, encryption or masking and "
    "serialisation (the median over the clients; encryption uses every core). Server "
    "time: from the received bytes to the aggregate (deserialising included; the better "
    "of two runs); the key holder's decryption is its own column. FedAvg's and "
    "DP-FedAvg's means are float32, like the updates (FedAvg's error is that rounding); "
    "CKKS decrypts to float64. SecAgg+: all four rounds of the protocol, "
    "each party's share of the time; its error is against the survivors' mean. DP-FedAvg: "
    "central DP, noise multiplier 1 at a clip norm equal to the largest update norm (no "
    "update clipped): its error is the noise. Paillier and SecAgg+ quantise each value "
    "(clip 1): their error is the rounding. CKKS: the stated bound is "
    "ckks.error_bound of the sum over the clients, divided by their number (probability "
    "of exceeding it below 1e-9). Every client is simulated in one process on a shared "
    "machine: compare ratios, not absolute times."
)
