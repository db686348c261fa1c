"""pytest-benchmark: Paillier (2048-bit n), native batch API vs python-paillier vs textbook.

Run: ``pytest benchmarks/bench_paillier.py --benchmark-enable``. ``impl`` is ``native``
(``ppml_fast.paillier`` batch kernels), ``phe`` (python-paillier's per-number API in a
loop, with the same key and ciphertexts; skipped when not installed) or ``reference``
(pure Python ints, ``ppml_fast.reference.paillier``; cheap operations only). Set
``PPML_BENCH_FULL=1`` for 4x the sizes. ``extra_info["per_item_us"]`` is the time per
ciphertext.
"""

import os

import numpy as np
import pytest

from ppml_fast import paillier
from ppml_fast.reference import paillier as ref

SCALE = 4 if os.environ.get("PPML_BENCH_FULL") else 1
N_ENC, N_DEC, N_OPS = 32 * SCALE, 64 * SCALE, 2000 * SCALE


@pytest.fixture(scope="module")
def keys():
    pk, sk = paillier.generate_paillier_keypair(n_length=2048)
    pk.precompute()
    x = np.random.default_rng(0).integers(-(10**6), 10**6, N_OPS)
    enc = pk.encrypt_batch(x)
    cts = [int(c) for c in enc.ciphertexts(False)]
    return pk, sk, x, enc, cts


@pytest.fixture(scope="module")
def phe_keys(keys):
    phe = pytest.importorskip("phe.paillier")
    pk, sk, _, _, cts = keys
    ppk = phe.PaillierPublicKey(pk.n)
    psk = phe.PaillierPrivateKey(ppk, sk.p, sk.q)
    return ppk, psk, [phe.EncryptedNumber(ppk, c, 0) for c in cts]


def _run(benchmark, fn, items):
    result = benchmark(fn)
    if benchmark.stats is not None:
        benchmark.extra_info["per_item_us"] = benchmark.stats["min"] / items * 1e6
    return result


@pytest.mark.parametrize("impl", ["native-djn", "native-classic", "native-crt", "phe"])
def test_encrypt(benchmark, keys, impl, request):
    pk, sk, x, _, _ = keys
    vals = x[:N_ENC]
    if impl == "phe":
        ppk = request.getfixturevalue("phe_keys")[0]
        fn = lambda: [ppk.encrypt(int(v)) for v in vals]  # noqa: E731
    elif impl == "native-djn":
        fn = lambda: pk.encrypt_batch(vals)  # noqa: E731
    elif impl == "native-classic":
        fn = lambda: pk.encrypt_batch(vals, obfuscation="classic")  # noqa: E731
    else:
        fn = lambda: sk.encrypt_batch(vals, obfuscation="classic")  # noqa: E731
    _run(benchmark, fn, N_ENC)


@pytest.mark.parametrize("impl", ["native", "phe"])
def test_decrypt(benchmark, keys, impl, request):
    _, sk, x, enc, _ = keys
    if impl == "phe":
        psk, pe = request.getfixturevalue("phe_keys")[1:]
        out = _run(benchmark, lambda: [psk.decrypt(c) for c in pe[:N_DEC]], N_DEC)
    else:
        out = _run(benchmark, lambda: sk.decrypt_batch(enc[:N_DEC]), N_DEC)
    assert list(out) == list(x[:N_DEC])


@pytest.mark.parametrize("op", ["add", "mul_small", "sum"])
@pytest.mark.parametrize("impl", ["native", "phe", "reference"])
def test_homomorphic(benchmark, keys, op, impl, request):
    pk, _, _, enc, cts = keys
    half = N_OPS // 2
    k = np.random.default_rng(1).integers(1, 1000, N_OPS)
    if impl == "native":
        fns = {
            "add": lambda: enc[:half] + enc[half:],
            "mul_small": lambda: enc * k,
            "sum": lambda: enc.sum(),
        }
    elif impl == "phe":
        pe = request.getfixturevalue("phe_keys")[2]
        fns = {
            "add": lambda: [a + b for a, b in zip(pe[:half], pe[half:], strict=True)],
            "mul_small": lambda: [a * int(b) for a, b in zip(pe, k, strict=True)],
            "sum": lambda: sum(pe[1:], pe[0]),
        }
    else:
        fns = {
            "add": lambda: ref.add_loop(pk.n, cts[:half], cts[half:]),
            "mul_small": lambda: ref.mul_loop(pk.n, cts, k),
            "sum": lambda: ref.sum_ciphertexts(pk.n, cts),
        }
    _run(benchmark, fns[op], half if op == "add" else N_OPS)


@pytest.mark.parametrize("impl", ["native", "phe"])
def test_matmul(benchmark, keys, impl, request):
    _, _, _, enc, _ = keys
    w = np.random.default_rng(2).integers(-100, 100, (256, 4))
    if impl == "native":
        fn = lambda: enc[:256] @ w  # noqa: E731
    else:
        pe = request.getfixturevalue("phe_keys")[2][:256]
        fn = lambda: [
            sum(
                (pe[i] * int(w[i, j]) for i in range(1, 256)),  # noqa: E731
                pe[0] * int(w[0, j]),
            )
            for j in range(4)
        ]
    _run(benchmark, fn, 256 * 4)
