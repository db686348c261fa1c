"""Benchmark rows for :mod:`ppml_fast.sharing` (part 1: modular arithmetic).

References are pure numpy (``ppml_fast.reference.sharing``): ``numpy_mulmod`` (32-bit split
with a Mersenne fold, or float64-estimated quotients for a general prime) and
``numpy_matmul_mod`` (21-bit limbs through one float64 BLAS product, recombined in numpy),
and numpy's own wrapping int64 matmul for the ring. Peers: torch's int64 matmul (CrypTen's
backend) when torch is installed, MPyC's Shamir sharing (``mpyc.thresha``) when MPyC is
installed, and a plain float64 BLAS matmul of the same shape as the limit the integer
products are measured against (``vs float64 BLAS`` below 1 = slower).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import sharing
from . import Case, Target

N_MUL = 10**7
N_MM = 1024
N_SHAMIR = 10**6
P61 = sharing.MERSENNE61
P62 = 4611686018427387847  # the largest prime below 2**62

Call = Callable[[], Any]


class _Data:
    """Operands made on first use (``collect`` builds every area's cases up front)."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def get(self, name: str, make: Callable[[], Any]) -> Any:
        if name not in self._cache:
            self._cache[name] = make()
        return self._cache[name]


def cases(full: bool) -> list[Case]:
    ref = importlib.import_module("ppml_fast.reference.sharing")
    try:
        torch: Any = importlib.import_module("torch")
    except ImportError:
        torch = None
    data = _Data()
    gen = np.random.default_rng()

    def vec(p: int, tag: str) -> np.ndarray:
        return data.get(f"v{p}{tag}", lambda: gen.integers(0, p, N_MUL, dtype=np.uint64))

    def mat(p: int | None, tag: str) -> np.ndarray:
        hi = 2**64 if p is None else p
        return data.get(f"m{p}{tag}", lambda: gen.integers(0, hi, (N_MM, N_MM), dtype=np.uint64))

    out: list[Case] = []
    for p, label in ((P61, "2^61-1"), (P62, "62-bit prime")):
        # out= given: a fresh 80 MB result costs 15 ms to 200 ms of page faults on this
        # machine (the numpy reference pays that for its temporaries too)
        res = np.empty(N_MUL, dtype=np.uint64)  # pages touched on first use only

        def native_mul(p: int = p, res: np.ndarray = res) -> Any:
            return sharing.mul(vec(p, "a"), vec(p, "b"), modulus=p, out=res)

        def ref_mul(p: int = p) -> Any:
            return ref.numpy_mulmod(vec(p, "a"), vec(p, "b"), p)

        out.append(
            Case(
                f"mul mod {label} (out=)",
                "1e7",
                native=native_mul,
                reference=ref_mul,
                reference_name="numpy 32-bit split",
                items=N_MUL,
                target=Target("speed-up", 20.0, ">= 20x the pure-numpy split reference"),
            )
        )

    blas: Call = lambda: (
        data.get("f64", lambda: gen.random((N_MM, N_MM)))
        @ data.get(  # noqa: E731
            "f64", lambda: gen.random((N_MM, N_MM))
        )
    )
    ring_peers: dict[str, Call] = {}
    if torch is not None:

        def torch_mm() -> Any:
            a = data.get("ta", lambda: torch.from_numpy(mat(None, "a").view(np.int64)))
            b = data.get("tb", lambda: torch.from_numpy(mat(None, "b").view(np.int64)))
            return a @ b

        ring_peers["torch"] = torch_mm
    ring_peers["float64 BLAS"] = blas
    more = [Target("vs torch", 1.0, "at least as fast as torch's int64 matmul")]
    out.append(
        Case(
            "matmul mod 2^64",
            f"{N_MM}x{N_MM}",
            native=lambda: sharing.matmul(mat(None, "a"), mat(None, "b")),
            reference=lambda: mat(None, "a").view(np.int64) @ mat(None, "b").view(np.int64),
            reference_name="numpy int64 matmul",
            peers=ring_peers,
            target=Target("speed-up", 36.0, ">= 36x numpy's int64 matmul"),
            more_targets=[t for t in more if t.metric.removeprefix("vs ") in ring_peers],
        )
    )
    out.append(
        Case(
            "matmul mod 2^61-1",
            f"{N_MM}x{N_MM}",
            native=lambda: sharing.matmul(mat(P61, "a"), mat(P61, "b"), modulus=P61),
            reference=lambda: ref.numpy_matmul_mod(mat(P61, "a"), mat(P61, "b"), P61),
            reference_name="numpy limbs + BLAS",
            peers={"float64 BLAS": blas},
            target=Target("speed-up", 10.0, ">= 10x the numpy reference"),
        )
    )

    def shamir_native() -> Any:
        x = vec(P61, "a")[:N_SHAMIR]
        shares = sharing.shamir_share(x, 10, 5, p=P61)
        return sharing.shamir_reconstruct(shares[[0, 3, 5, 7, 9]], [1, 4, 6, 8, 10], p=P61)

    pcg = np.random.Generator(np.random.PCG64())

    def shamir_ref() -> Any:
        x = vec(P61, "a")[:N_SHAMIR]
        shares = ref.numpy_shamir_share(x, 10, 5, P61, pcg)
        return ref.numpy_shamir_reconstruct(shares[[0, 3, 5, 7, 9]], [1, 4, 6, 8, 10], P61)

    out.append(
        Case(
            "shamir share + reconstruct n=10 t=5",
            "1e6 secrets",
            native=shamir_native,
            reference=shamir_ref,
            reference_name="numpy Horner + Lagrange",
            items=N_SHAMIR,
            target=Target("speed-up", 20.0, ">= 20x a numpy/Python-int reference"),
        )
    )
    # the same at 1e5 secrets, with MPyC's Shamir sharing (thresha.random_split and
    # recombine over GF(2^61 - 1), degree t - 1 = 4) as a peer when it is installed
    n_small = 10**5
    shamir_peers: dict[str, Call] = {}
    try:
        mpyc_thresha: Any = importlib.import_module("mpyc.thresha")
        mpyc_finfields: Any = importlib.import_module("mpyc.finfields")
    except ImportError:
        mpyc_thresha = None
    if mpyc_thresha is not None:
        field = mpyc_finfields.GF(P61)

        def mpyc_shamir() -> Any:
            secrets = data.get(
                "mpyc_secrets", lambda: [field(int(v)) for v in vec(P61, "a")[:n_small]]
            )
            shares = mpyc_thresha.random_split(field, secrets, 4, 10)
            picked = [(i + 1, shares[i]) for i in (0, 3, 5, 7, 9)]
            return mpyc_thresha.recombine(field, picked)

        shamir_peers["mpyc"] = mpyc_shamir

    def shamir_native_small() -> Any:
        x = vec(P61, "a")[:n_small]
        shares = sharing.shamir_share(x, 10, 5, p=P61)
        return sharing.shamir_reconstruct(shares[[0, 3, 5, 7, 9]], [1, 4, 6, 8, 10], p=P61)

    out.append(
        Case(
            "shamir share + reconstruct n=10 t=5",
            "1e5 secrets",
            native=shamir_native_small,
            peers=shamir_peers,
            items=n_small,
        )
    )

    # Beaver matmul, 3 parties, 512 x 512 fixed point: the online phase (open, combine,
    # truncate) on shares and a dealer's triple made beforehand
    n_b = 512

    def beaver_inputs() -> tuple[Any, ...]:
        def make() -> tuple[Any, ...]:
            x = sharing.encode_fixed(gen.uniform(-1, 1, (n_b, n_b)))
            y = sharing.encode_fixed(gen.uniform(-1, 1, (n_b, n_b)))
            t = sharing.beaver_triples((n_b, n_b), 3, op="matmul", shape_b=(n_b, n_b))
            return sharing.additive_share(x, 3), sharing.additive_share(y, 3), t

        return tuple(data.get("beaver", make))

    def beaver_native() -> Any:
        xs, ys, t = beaver_inputs()
        return sharing.truncate(sharing.beaver_matmul(xs, ys, t))

    def beaver_ref() -> Any:
        xs, ys, t = beaver_inputs()
        return ref.numpy_beaver_matmul(xs, ys, t.a, t.b, t.c)

    plain = data.get("p512", lambda: gen.uniform(-1, 1, (n_b, n_b)))
    out.append(
        Case(
            "beaver matmul 3 parties (fixed point)",
            f"{n_b}x{n_b}",
            native=beaver_native,
            reference=beaver_ref,
            reference_name="numpy uint64 Beaver",
            peers={"float64 plaintext": lambda: plain @ plain},
            target=Target("speed-up", 10.0, ">= 10x a numpy reference"),
            more_targets=[Target("vs float64 plaintext", 0.1, "within 10x of plaintext float64")],
        )
    )
    return out
