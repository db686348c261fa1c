"""Benchmark cases for :mod:`ppml_fast.paillier` (2048-bit keys).

The peer is python-paillier (``phe``, with gmpy2) when installed: the same key (built from
the same p and q) and the same ciphertexts, its per-number API in a Python loop, which is
how it is used; its encryption is classic ``r^n``. The reference of the homomorphic
operations is the textbook oracle in pure Python ints (``ppml_fast.reference.paillier``,
built-in ``pow``, no GMP); its encryption and decryption (80 ms per full exponentiation)
are left out. The DJN encryption row compares like with like: its reference is DJN
written in Python on gmpy2 (``ppml_fast.reference.paillier.DJNEncryptor``:
python-paillier's loop with ``r^n`` replaced by ``h_s^alpha``, alpha of n_length / 2
bits, one ``gmpy2.powmod`` each), and the peer "DJN Python table" walks a fixed-base
table of window 8 in Python (built once per key, like the native table); both are
variable-time, the native walk is constant-time.
The DJN rows time encryption after the key's fixed-base table exists (built once per key,
~0.1 s, 16 MB). The quick batches are small (the setup encrypts every operand, which
takes seconds for thousands of ciphertexts on a CPU without AVX-512 IFMA), so per-call
overheads weigh on their ratios; the targets, per-ciphertext ratios against
python-paillier, are on the ``full`` batches.

The packed row (:func:`ppml_fast.paillier.encrypt_packed`, BatchCrypt-style packing of
1e5 values in [-1, 1] with 16-bit slots and headroom for 100 clients) encrypts all 1e5
values natively; its reference (our per-value ``encrypt_batch`` of the same quantised
ints) and its python-paillier peer (the per-value ``encrypt`` loop) would take minutes and
half an hour on them, so both run on the first :data:`PACKED_SUBSET` values, as their
names say, and the row's target scales the peer's time by ``1e5 / PACKED_SUBSET``
(per-value cost times the value count): the table's ratios on that row compare a subset
with the whole, the targets table the whole with the whole.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import paillier
from ..reference import paillier as ref
from . import Case, Data, Row, Target, select

Call = Callable[[], Any]


def _phe() -> Any:
    try:
        return importlib.import_module("phe.paillier")
    except ImportError:
        return None


def _keys(data: Data, phe: Any) -> dict[str, Any]:
    """One 2048-bit key pair (with its DJN table) and its python-paillier twin."""

    def make() -> dict[str, Any]:
        pk, sk = paillier.generate_paillier_keypair(n_length=2048)
        pk.precompute()
        keys = {
            "pk": pk,
            "sk": sk,
            "djn": ref.DJNEncryptor(pk.n, pk.hs),
            "djn_table": ref.DJNEncryptor(pk.n, pk.hs, window=DJN_WINDOW),
        }
        if phe is not None:
            ppk = phe.PaillierPublicKey(pk.n)
            keys.update(ppk=ppk, psk=phe.PaillierPrivateKey(ppk, sk.p, sk.q))
        return keys

    return dict(data.get("keys", make))


def _batch(data: Data, phe: Any, n: int) -> dict[str, Any]:
    """``n`` plaintexts, their ciphertexts (ours, as Python ints and as phe's numbers)."""

    def make() -> dict[str, Any]:
        keys = _keys(data, phe)
        gen = np.random.default_rng()
        x = gen.integers(-(10**6), 10**6, n)
        enc = keys["pk"].encrypt_batch(x)
        cts = [int(c) for c in enc.ciphertexts(False)]
        out = {**keys, "x": x, "enc": enc, "cts": cts}
        out["k"] = gen.integers(1, 1000, n)
        out["w"] = gen.integers(-100, 100, (n, 4))
        out["ne"] = [paillier.EncryptedNumber(keys["pk"], c, 0) for c in cts]
        if phe is not None:
            out["pe"] = [phe.EncryptedNumber(keys["ppk"], c, 0) for c in cts]
        return out

    return dict(data.get(f"batch{n}", make))


#: Window of the Python fixed-base DJN table (the fastest width measured in Python).
DJN_WINDOW = 8

#: Batch sizes: (DJN encryptions, classic encryptions, decryptions, ciphertexts summed
#: (half as many pairs added), products by small ints, rows of the vector-matrix product).
QUICK = (16, 8, 16, 256, 128, 64)
FULL = (64, 32, 128, 10_000, 2000, 500)


def _rows(data: Data, phe: Any, sizes: tuple[int, ...], full: bool) -> list[Case]:
    n_enc, n_cls, n_dec, n_add, n_mul, n_mm = sizes
    n_all = max(n_add, n_dec, n_mul, n_mm)

    def s(name: str) -> Any:
        return _batch(data, phe, n_all)[name]

    def phe_peer(fn: Call) -> dict[str, Call]:
        return {} if phe is None else {"python-paillier": fn}

    def target(minimum: float, label: str) -> Target | None:
        if phe is None or not full:
            return None
        return Target("vs python-paillier", minimum, label)

    def vals(m: int) -> Any:
        return s("x")[:m]

    def decrypted(n: int) -> Callable[[Any], bool]:
        return lambda out: list(out) == list(s("x")[:n])

    common: dict[str, Any] = {"full": full, "data": data}
    out = [
        Case(
            "paillier encrypt_batch (DJN h_s^a, table)",
            f"{n_enc} x 2048-bit",
            native=lambda: s("pk").encrypt_batch(vals(n_enc)),
            reference=lambda: s("djn").encrypt_loop(vals(n_enc)),
            reference_name="DJN h_s^a in Python, gmpy2.powmod",
            peers={
                "DJN Python table": lambda: s("djn_table").encrypt_loop(vals(n_enc)),
                **phe_peer(lambda: [s("ppk").encrypt(int(v)) for v in vals(n_enc)]),
            },
            items=n_enc,
            target=target(20.0, ">= 20x python-paillier's encrypt loop"),
            **common,
        ),
        Case(
            "paillier encrypt_batch (classic r^n)",
            f"{n_cls} x 2048-bit",
            native=lambda: s("pk").encrypt_batch(vals(n_cls), obfuscation="classic"),
            peers=phe_peer(lambda: [s("ppk").encrypt(int(v)) for v in vals(n_cls)]),
            items=n_cls,
            target=target(1.8, ">= 1.8x python-paillier's encrypt loop (2 cores)"),
            **common,
        ),
        Case(
            "paillier encrypt_batch (classic, private-key CRT)",
            f"{n_cls} x 2048-bit",
            native=lambda: s("sk").encrypt_batch(vals(n_cls), obfuscation="classic"),
            peers=phe_peer(lambda: [s("ppk").encrypt(int(v)) for v in vals(n_cls)]),
            items=n_cls,
            **common,
        ),
        Case(
            "paillier decrypt_batch (CRT, constant-time power)",
            f"{n_dec} x 2048-bit",
            native=lambda: s("sk").decrypt_batch(s("enc")[:n_dec]),
            peers=phe_peer(lambda: [s("psk").decrypt(c) for c in s("pe")[:n_dec]]),
            items=n_dec,
            target=target(2.0, ">= 2x python-paillier's decrypt loop"),
            check=decrypted(n_dec),
            **common,
        ),
    ]
    half = n_add // 2
    out.append(
        Case(
            "paillier ciphertext + ciphertext",
            f"{half} pairs",
            native=lambda: s("enc")[:half] + s("enc")[half:n_add],
            reference=lambda: ref.add_loop(s("pk").n, s("cts")[:half], s("cts")[half:n_add]),
            reference_name="Python ints",
            peers=phe_peer(
                lambda: [x + y for x, y in zip(s("pe")[:half], s("pe")[half:n_add], strict=True)]
            ),
            items=half,
            target=target(4.0, ">= 4x python-paillier's + loop"),
            **common,
        )
    )
    out.append(
        Case(
            "paillier ciphertext * small int (1..999)",
            f"{n_mul}",
            native=lambda: s("enc")[:n_mul] * s("k")[:n_mul],
            reference=lambda: ref.mul_loop(s("pk").n, s("cts")[:n_mul], s("k")[:n_mul]),
            reference_name="Python ints",
            peers=phe_peer(
                lambda: [x * int(k) for x, k in zip(s("pe")[:n_mul], s("k")[:n_mul], strict=True)]
            ),
            items=n_mul,
            target=target(2.0, ">= 2x python-paillier's * loop"),
            **common,
        )
    )
    out.append(
        Case(
            "paillier sum of ciphertexts",
            f"{n_add}",
            native=lambda: s("enc")[:n_add].sum(),
            reference=lambda: ref.sum_ciphertexts(s("pk").n, s("cts")[:n_add]),
            reference_name="Python ints",
            peers=phe_peer(lambda: sum(s("pe")[1:n_add], s("pe")[0])),
            items=n_add,
            target=target(4.0, ">= 4x python-paillier's sum"),
            **common,
        )
    )

    def phe_matvec() -> Any:
        pe, w = s("pe")[:n_mm], s("w")[:n_mm]
        return [
            sum((pe[i] * int(w[i, j]) for i in range(1, n_mm)), pe[0] * int(w[0, j]))
            for j in range(w.shape[1])
        ]

    out.append(
        Case(
            "paillier enc @ W (ints in [-100, 100))",
            f"{n_mm} x 4",
            native=lambda: s("enc")[:n_mm] @ s("w")[:n_mm],
            peers=phe_peer(phe_matvec),
            items=n_mm * 4,
            **common,
        )
    )
    return out


#: Numbers per row of the per-number (python-paillier API) rows: quick, full.
PER_NUMBER = (16, 64)


def _per_number_rows(data: Data, phe: Any, n: int, full: bool) -> list[Case]:
    """The python-paillier API called number by number, as phe programs do: our drop-in
    against phe on the same key and ciphertexts (floats, so encoding is in the time)."""

    def s(name: str) -> Any:
        return _batch(data, phe, max(n, QUICK[2]))[name]

    def floats() -> list[float]:
        return [float(v) / 7 for v in s("x")[:n]]

    def phe_peer(fn: Call) -> dict[str, Call]:
        return {} if phe is None else {"python-paillier": fn}

    def target(minimum: float, label: str) -> Target | None:
        return Target("vs python-paillier", minimum, label) if phe is not None and full else None

    def pairs(key: str) -> Any:
        """The first n numbers, each with its mirror image."""
        return zip(s(key)[:n], s(key)[:n][::-1], strict=True)

    common: dict[str, Any] = {"full": full, "data": data, "items": n}
    return [
        Case(
            "paillier encrypt, number by number (phe API, DJN table)",
            f"{n} x 2048-bit",
            native=lambda: [s("pk").encrypt(v) for v in floats()],
            peers=phe_peer(lambda: [s("ppk").encrypt(v) for v in floats()]),
            target=target(5.0, ">= 5x python-paillier's encrypt, number by number"),
            **common,
        ),
        Case(
            "paillier decrypt, number by number (phe API)",
            f"{n} x 2048-bit",
            native=lambda: [s("sk").decrypt(e) for e in s("ne")[:n]],
            peers=phe_peer(lambda: [s("psk").decrypt(e) for e in s("pe")[:n]]),
            target=target(1.5, ">= 1.5x python-paillier's decrypt, number by number"),
            check=lambda out: list(out) == list(s("x")[:n]),
            **common,
        ),
        Case(
            "paillier EncryptedNumber + EncryptedNumber",
            f"{n} x 2048-bit",
            native=lambda: [a + b for a, b in pairs("ne")],
            peers=phe_peer(lambda: [a + b for a, b in pairs("pe")]),
            target=target(1.0, "never slower than python-paillier's +"),
            **common,
        ),
        Case(
            "paillier EncryptedNumber * int",
            f"{n} x 2048-bit",
            native=lambda: [a * 7 for a in s("ne")[:n]],
            peers=phe_peer(lambda: [a * 7 for a in s("pe")[:n]]),
            target=target(1.0, "never slower than python-paillier's *"),
            **common,
        ),
        Case(
            "paillier EncryptedNumber - EncryptedNumber",
            f"{n} x 2048-bit",
            native=lambda: [a - b for a, b in pairs("ne")],
            peers=phe_peer(lambda: [a - b for a, b in pairs("pe")]),
            target=target(1.0, "never slower than python-paillier's -"),
            **common,
        ),
    ]


#: The packed row: values, value width, clients, and the values its reference and peer
#: encrypt one by one (their times are scaled to all the values by the target).
PACKED_VALUES = 100_000
PACKED_BITS = 16
PACKED_CLIENTS = 100
PACKED_SUBSET = 1000


class ScaledPeerTarget(Target):
    """A ``"vs <peer>"`` target whose peer ran on ``1 / scale`` of the native call's work.

    :meth:`measure` returns ``scale * peer time / native time``: the peer's per-item cost
    times the native call's item count, against the native call.
    """

    scale: float

    def __init__(self, metric: str, minimum: float, label: str, scale: float) -> None:
        super().__init__(metric, minimum, label)
        object.__setattr__(self, "scale", float(scale))

    def measure(self, row: Row) -> float | None:
        """The scaled peer / native ratio, or None where the peer was not timed."""
        value = super().measure(row)
        return None if value is None else value * self.scale


def _packed_rows(data: Data, phe: Any) -> list[Case]:
    """encrypt_packed of 1e5 values against per-value encryption of the same ints."""
    n, m = PACKED_VALUES, PACKED_SUBSET

    def pack(pk: Any, x: Any) -> Any:
        return paillier.encrypt_packed(pk, x, bits=PACKED_BITS, clients=PACKED_CLIENTS, clip=1.0)

    def make() -> dict[str, Any]:
        keys = _keys(data, phe)
        x = np.random.default_rng().uniform(-1.0, 1.0, n)
        probe = pack(keys["pk"], x[:1])
        q = np.rint(x * 2.0**probe.frac_bits).astype(np.int64)  # the quantised ints
        return {**keys, "x": x, "q": q}

    def s(name: str) -> Any:
        return dict(data.get("packed", make))[name]

    def check(out: Any) -> bool:
        if isinstance(out, paillier.EncryptedPackedArray):
            got = paillier.decrypt_packed(s("sk"), out, integers=True)
            return bool(np.array_equal(got, s("q")))
        return bool(np.array_equal(s("sk").decrypt_batch(out), s("q")[:m]))

    peer = f"python-paillier, first {m:,} values"
    peers = {} if phe is None else {peer: lambda: [s("ppk").encrypt(int(v)) for v in s("q")[:m]]}
    target = None
    if phe is not None:
        target = ScaledPeerTarget(
            f"vs {peer}",
            100.0,
            f">= 100x python-paillier's per-value encrypt loop (its time on {m:,} values x "
            f"{n // m})",
            n / m,
        )
    return [
        Case(
            "paillier encrypt_packed 1e5 values (16-bit slots, 100 clients)",
            f"{n:,} values, 2048-bit",
            native=lambda: pack(s("pk"), s("x")),
            reference=lambda: s("pk").encrypt_batch(s("q")[:m]),
            reference_name=f"our per-value encrypt_batch, first {m:,} quantised ints",
            peers=peers,
            items=n,
            target=target,
            check=check,
            data=data,
            full=True,
        )
    ]


def cases(full: bool) -> list[Case]:
    """The Paillier rows; ``full`` adds larger batches.

    Parameters
    ----------
    full : bool
        Include the rows marked ``full``.

    Returns
    -------
    list of Case
        Encryption (DJN, classic, private-key CRT), decryption, ciphertext addition,
        multiplication by small ints, sum and an encrypted vector-matrix product, on
        batches of 8 to 256 ciphertexts (:data:`QUICK`; ``full`` adds :data:`FULL`, 32
        to 10,000), and packed encryption of 1e5 values (:data:`PACKED_VALUES`).
    """
    data = Data()
    phe = _phe()
    out = _rows(data, phe, QUICK, False) + _rows(data, phe, FULL, True)
    out += _per_number_rows(data, phe, PER_NUMBER[0], False)
    out += _per_number_rows(data, phe, PER_NUMBER[1], True)
    out += _packed_rows(data, phe)
    return select(out, full)
