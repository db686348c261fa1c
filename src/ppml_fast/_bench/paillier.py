"""Benchmark rows for :mod:`ppml_fast.paillier` (2048-bit keys).

The peer is python-paillier (``phe``, with gmpy2) when installed: the same key (built from
the same p and q) and the same ciphertexts, its per-number API in a Python loop, which is
how it is used. The reference is the textbook oracle in pure Python ints
(``ppml_fast.reference.paillier``, built-in ``pow``, no GMP); its encryption and decryption
(80 ms per full exponentiation) are left out of the quick table. The DJN rows time
encryption after the key's fixed-base table exists (built once per key, ~0.1 s, 16 MB).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import paillier
from . import Case, Target

Call = Callable[[], Any]


def cases(full: bool) -> list[Case]:
    ref = importlib.import_module("ppml_fast.reference.paillier")
    try:
        phe: Any = importlib.import_module("phe.paillier")
    except ImportError:
        phe = None
    scale = 4 if full else 1
    n_enc, n_cls, n_dec = 64 * scale, 32 * scale, 128 * scale
    n_add, n_mul, n_mm = 10_000 * scale, 2_000 * scale, 500 * scale
    state: dict[str, Any] = {}

    def setup() -> dict[str, Any]:
        if not state:
            pk, sk = paillier.generate_paillier_keypair(n_length=2048)
            pk.precompute()
            gen = np.random.default_rng()
            x = gen.integers(-(10**6), 10**6, n_add)
            enc = pk.encrypt_batch(x)
            state.update(
                pk=pk,
                sk=sk,
                x=x,
                enc=enc,
                gen=gen,
                a=enc[: n_add // 2],
                b=enc[n_add // 2 :],
                k=gen.integers(1, 1000, n_mul),
                w=gen.integers(-100, 100, (n_mm, 4)),
                cts=[int(c) for c in enc.ciphertexts(False)],
            )
            if phe is not None:
                ppk = phe.PaillierPublicKey(pk.n)
                psk = phe.PaillierPrivateKey(ppk, sk.p, sk.q)
                pe = [phe.EncryptedNumber(ppk, c, 0) for c in state["cts"]]
                state.update(ppk=ppk, psk=psk, pe=pe)
        return state

    def s(name: str) -> Any:
        return setup()[name]

    def phe_peer(fn: Call) -> dict[str, Call]:
        return {} if phe is None else {"python-paillier": fn}

    def target(minimum: float, label: str) -> Target | None:
        return None if phe is None else Target("vs python-paillier", minimum, label)

    out: list[Case] = []
    vals = lambda m: s("x")[:m]  # noqa: E731
    out.append(
        Case(
            "paillier encrypt_batch (DJN h_s^a, table)",
            f"{n_enc} x 2048-bit",
            native=lambda: s("pk").encrypt_batch(vals(n_enc)),
            peers=phe_peer(lambda: [s("ppk").encrypt(int(v)) for v in vals(n_enc)]),
            items=n_enc,
            target=target(20.0, ">= 20x python-paillier's encrypt loop"),
        )
    )
    out.append(
        Case(
            "paillier encrypt_batch (classic r^n)",
            f"{n_cls} x 2048-bit",
            native=lambda: s("pk").encrypt_batch(vals(n_cls), obfuscation="classic"),
            peers=phe_peer(lambda: [s("ppk").encrypt(int(v)) for v in vals(n_cls)]),
            items=n_cls,
            target=target(1.8, ">= 1.8x python-paillier's encrypt loop (2 cores)"),
        )
    )
    out.append(
        Case(
            "paillier encrypt_batch (classic, private-key CRT)",
            f"{n_cls} x 2048-bit",
            native=lambda: s("sk").encrypt_batch(vals(n_cls), obfuscation="classic"),
            peers=phe_peer(lambda: [s("ppk").encrypt(int(v)) for v in vals(n_cls)]),
            items=n_cls,
        )
    )
    out.append(
        Case(
            "paillier decrypt_batch (CRT, powm_sec)",
            f"{n_dec} x 2048-bit",
            native=lambda: s("sk").decrypt_batch(s("enc")[:n_dec]),
            peers=phe_peer(lambda: [s("psk").decrypt(c) for c in s("pe")[:n_dec]]),
            items=n_dec,
            target=target(1.8, ">= 1.8x python-paillier's decrypt loop"),
        )
    )
    half = n_add // 2
    out.append(
        Case(
            "paillier ciphertext + ciphertext",
            f"{half} pairs",
            native=lambda: s("a") + s("b"),
            reference=lambda: ref.add_loop(s("pk").n, s("cts")[:half], s("cts")[half:]),
            reference_name="Python ints",
            peers=phe_peer(
                lambda: [x + y for x, y in zip(s("pe")[:half], s("pe")[half:], strict=True)]
            ),
            items=half,
            target=target(4.0, ">= 4x python-paillier's + loop"),
        )
    )
    out.append(
        Case(
            "paillier ciphertext * small int (1..999)",
            f"{n_mul}",
            native=lambda: s("enc")[:n_mul] * s("k"),
            reference=lambda: ref.mul_loop(s("pk").n, s("cts")[:n_mul], s("k")),
            reference_name="Python ints",
            peers=phe_peer(
                lambda: [x * int(k) for x, k in zip(s("pe")[:n_mul], s("k"), strict=True)]
            ),
            items=n_mul,
            target=target(2.0, ">= 2x python-paillier's * loop"),
        )
    )
    out.append(
        Case(
            "paillier sum of ciphertexts",
            f"{n_add}",
            native=lambda: s("enc").sum(),
            reference=lambda: ref.sum_ciphertexts(s("pk").n, s("cts")),
            reference_name="Python ints",
            peers=phe_peer(lambda: sum(s("pe")[1:], s("pe")[0])),
            items=n_add,
            target=target(4.0, ">= 4x python-paillier's sum"),
        )
    )

    def phe_matvec() -> Any:
        pe, w = s("pe")[:n_mm], s("w")
        return [
            sum((pe[i] * int(w[i, j]) for i in range(1, n_mm)), pe[0] * int(w[0, j]))
            for j in range(w.shape[1])
        ]

    out.append(
        Case(
            "paillier enc @ W (ints in [-100, 100))",
            f"{n_mm} x 4",
            native=lambda: s("enc")[:n_mm] @ s("w"),
            peers=phe_peer(phe_matvec),
            items=n_mm * 4,
        )
    )
    return out
