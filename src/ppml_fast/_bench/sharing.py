"""Benchmark cases for :mod:`ppml_fast.sharing`: modular arithmetic, Shamir and Beaver.

References are pure numpy (``ppml_fast.reference.sharing``): ``numpy_mulmod`` (32-bit split
with a Mersenne fold, or float64-estimated quotients for a general prime),
``numpy_matmul_mod`` (21-bit limbs through one float64 BLAS product, recombined in numpy),
numpy's own wrapping int64 matmul for the ring, Horner + Lagrange for Shamir and a uint64
Beaver online phase. Peers: torch's int64 matmul (CrypTen's backend) when torch is
installed, MPyC's Shamir sharing (``mpyc.thresha``) when MPyC is installed, and a plain
float64 BLAS matmul of the same shape as the limit the integer products are measured
against (``vs float64 BLAS`` below 1 = slower). The targets are on the ``full`` sizes
(10^7 products, 1024 x 1024 matrices, 10^6 secrets, 512 x 512 Beaver).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from .. import sharing
from ..reference import sharing as ref
from . import Case, Data, Target, select

P61 = sharing.MERSENNE61
P62 = 4611686018427387847  # the largest prime below 2**62

Call = Callable[[], Any]


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _mul(n: int, full: bool) -> list[Case]:
    data = Data()
    gen = np.random.default_rng()

    def vec(p: int, tag: str) -> np.ndarray:
        return data.get(f"{p}{tag}", lambda: gen.integers(0, p, n, dtype=np.uint64))

    out = []
    for p, label in ((P61, "2^61-1"), (P62, "62-bit prime")):
        # out= given: a fresh result of 8n bytes costs page faults on every call (the numpy
        # reference pays that for its temporaries too)
        def native(p: int = p) -> Any:
            res = data.get(f"out{p}", lambda: np.empty(n, dtype=np.uint64))
            return sharing.mul(vec(p, "a"), vec(p, "b"), modulus=p, out=res)

        def reference(p: int) -> Any:
            return ref.numpy_mulmod(vec(p, "a"), vec(p, "b"), p)

        out.append(
            Case(
                f"mul mod {label} (out=)",
                f"{n:.0e}",
                native=native,
                reference=partial(reference, p),
                reference_name="numpy 32-bit split",
                items=n,
                target=Target("speed-up", 20.0, ">= 20x the pure-numpy split reference")
                if full
                else None,
                full=full,
                data=data,
                check=lambda r: np.shape(r) == (n,),
            )
        )
    return out


def _matmul(n: int, full: bool) -> list[Case]:
    data = Data()
    gen = np.random.default_rng()
    torch = _import("torch")

    def mat(p: int | None, tag: str) -> np.ndarray:
        hi = 2**64 if p is None else p
        return data.get(f"m{p}{tag}", lambda: gen.integers(0, hi, (n, n), dtype=np.uint64))

    def blas() -> Any:
        f = data.get("f64", lambda: gen.random((n, n)))
        return f @ f

    ring_peers: dict[str, Call] = {}
    if torch is not None:

        def torch_mm() -> Any:
            a = data.get("ta", lambda: torch.from_numpy(mat(None, "a").view(np.int64)))
            b = data.get("tb", lambda: torch.from_numpy(mat(None, "b").view(np.int64)))
            return a @ b

        ring_peers["torch"] = torch_mm
    ring_peers["float64 BLAS"] = blas
    ring_more = [Target("vs torch", 1.0, "at least as fast as torch's int64 matmul")]
    return [
        Case(
            "matmul mod 2^64",
            f"{n}x{n}",
            native=lambda: sharing.matmul(mat(None, "a"), mat(None, "b")),
            reference=lambda: mat(None, "a").view(np.int64) @ mat(None, "b").view(np.int64),
            reference_name="numpy int64 matmul",
            peers=ring_peers,
            target=Target("speed-up", 36.0, ">= 36x numpy's int64 matmul") if full else None,
            more_targets=[t for t in ring_more if t.metric.removeprefix("vs ") in ring_peers]
            if full
            else [],
            full=full,
            data=data,
            check=lambda r: np.shape(r) == (n, n),
        ),
        Case(
            "matmul mod 2^61-1",
            f"{n}x{n}",
            native=lambda: sharing.matmul(mat(P61, "a"), mat(P61, "b"), modulus=P61),
            reference=lambda: ref.numpy_matmul_mod(mat(P61, "a"), mat(P61, "b"), P61),
            reference_name="numpy limbs + BLAS",
            peers={"float64 BLAS": blas},
            target=Target("speed-up", 5.0, ">= 5x the BLAS-limb numpy reference") if full else None,
            # the limb method's floor: 9 exact float64 products of 21-bit limbs (3 x 3)
            more_targets=[
                Target(
                    "vs float64 BLAS", 1 / 10, "within 10 float64 matrix products (9 + recombining)"
                )
            ]
            if full
            else [],
            full=full,
            data=data,
            check=lambda r: np.shape(r) == (n, n),
        ),
    ]


def _shamir(n: int, full: bool) -> Case:
    """Share ``n`` secrets among 10 parties (threshold 5), reconstruct from 5; MPyC's
    ``thresha.random_split`` and ``recombine`` over GF(2^61 - 1) (degree t - 1 = 4) as a
    peer on the quick size when it is installed."""
    data = Data()
    pcg = np.random.Generator(np.random.PCG64())
    picked, xs = [0, 3, 5, 7, 9], [1, 4, 6, 8, 10]

    def secrets() -> np.ndarray:
        return data.get("x", lambda: np.random.default_rng().integers(0, P61, n, dtype=np.uint64))

    def native() -> Any:
        shares = sharing.shamir_share(secrets(), 10, 5, p=P61)
        return sharing.shamir_reconstruct(shares[picked], xs, p=P61)

    def reference() -> Any:
        shares = ref.numpy_shamir_share(secrets(), 10, 5, P61, pcg)
        return ref.numpy_shamir_reconstruct(shares[picked], xs, P61)

    peers: dict[str, Call] = {}
    thresha, finfields = _import("mpyc.thresha"), _import("mpyc.finfields")
    if thresha is not None and finfields is not None and not full:
        field = finfields.GF(P61)

        def mpyc_shamir() -> Any:
            values = data.get("mpyc", lambda: [field(int(v)) for v in secrets()])
            shares = thresha.random_split(field, values, 4, 10)
            return thresha.recombine(field, [(i + 1, shares[i]) for i in picked])

        peers["mpyc"] = mpyc_shamir
    return Case(
        "shamir share + reconstruct n=10 t=5",
        f"{n:.0e} secrets",
        native=native,
        reference=reference,
        reference_name="numpy Horner + Lagrange",
        peers=peers,
        items=n,
        target=Target("speed-up", 20.0, ">= 20x a numpy/Python-int reference") if full else None,
        full=full,
        data=data,
        check=lambda r: np.array_equal(r, secrets()),
    )


def _beaver(n: int, full: bool) -> Case:
    """Beaver matmul, 3 parties, ``n`` x ``n`` fixed point: the online phase (open, combine,
    truncate) on shares and a dealer's triple made beforehand."""
    data = Data()
    gen = np.random.default_rng()

    def inputs() -> tuple[Any, ...]:
        def make() -> tuple[Any, ...]:
            x = sharing.encode_fixed(gen.uniform(-1, 1, (n, n)))
            y = sharing.encode_fixed(gen.uniform(-1, 1, (n, n)))
            t = sharing.beaver_triples((n, n), 3, op="matmul", shape_b=(n, n))
            return sharing.additive_share(x, 3), sharing.additive_share(y, 3), t

        return tuple(data.get("beaver", make))

    def native() -> Any:
        xs, ys, t = inputs()
        return sharing.truncate(sharing.beaver_matmul(xs, ys, t))

    def reference() -> Any:
        xs, ys, t = inputs()
        return ref.numpy_beaver_matmul(xs, ys, t.a, t.b, t.c)

    def plaintext() -> Any:
        f = data.get("plain", lambda: gen.uniform(-1, 1, (n, n)))
        return f @ f

    return Case(
        "beaver matmul 3 parties (fixed point)",
        f"{n}x{n}",
        native=native,
        reference=reference,
        reference_name="numpy uint64 Beaver",
        peers={"float64 plaintext": plaintext},
        target=Target("speed-up", 10.0, ">= 10x a numpy reference") if full else None,
        more_targets=[Target("vs float64 plaintext", 0.1, "within 10x of plaintext float64")]
        if full
        else [],
        full=full,
        data=data,
    )


def cases(full: bool) -> list[Case]:
    """The sharing rows; ``full`` adds the large sizes and their targets.

    Parameters
    ----------
    full : bool
        Include the rows marked ``full``.

    Returns
    -------
    list of Case
        mul mod p on 10^6 values (two primes), matmul mod 2^64 and mod 2^61-1 at
        256 x 256, Shamir share + reconstruct of 10^5 secrets, Beaver matmul at 128 x 128;
        ``full`` adds 10^7, 1024 x 1024, 10^6 secrets and 512 x 512.
    """
    out = _mul(10**6, False) + _mul(10**7, True)
    out += _matmul(256, False) + _matmul(1024, True)
    out += [_shamir(10**5, False), _shamir(10**6, True)]
    out += [_beaver(128, False), _beaver(512, True)]
    return select(out, full)
