"""Textbook Paillier in pure Python ints: the oracle for :mod:`ppml_fast.paillier`.

Deliberately different formulas from the fast path, so agreement means something:
encryption is ``pow(n + 1, m, n^2) * pow(r, n, n^2)`` (not ``1 + n m``), decryption uses
Carmichael's lambda and mu = L(g^lambda mod n^2)^-1 mod n over n^2 (not CRT), and the
encoding is exact :class:`fractions.Fraction` arithmetic. Python's built-in ``pow`` does the
big-integer work (no GMP), so these are also the "reference" timings of the benchmarks.

:class:`DJNEncryptor` is the other kind of baseline: Damgard-Jurik-Nielsen encryption
written in Python on gmpy2 (GMP), as a Python Paillier library would write it, for the
benchmarks' like-for-like encryption rows.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from fractions import Fraction

import gmpy2

BASE = 16


def encrypt(n: int, m: int, r: int) -> int:
    """E(m; r) = (n + 1)^m r^n mod n^2 for an int m (taken mod n) and r in Z_n^*."""
    n2 = n * n
    return pow(n + 1, m % n, n2) * pow(r, n, n2) % n2


def decrypt(p: int, q: int, c: int) -> int:
    """m = L(c^lambda mod n^2) * mu mod n with lambda = lcm(p-1, q-1)."""
    n = p * q
    n2 = n * n
    lam = math.lcm(p - 1, q - 1)
    mu = pow((pow(n + 1, lam, n2) - 1) // n, -1, n)
    return (pow(c, lam, n2) - 1) // n * mu % n


def add(n: int, c1: int, c2: int) -> int:
    """E(a + b) = E(a) E(b) mod n^2."""
    return c1 * c2 % (n * n)


def mul(n: int, c: int, k: int) -> int:
    """E(k a) = E(a)^k mod n^2 for any int k (negative: through the inverse)."""
    return pow(c, k, n * n)


def encode(
    n: int,
    value: int | float,
    precision: float | None = None,
    max_exponent: int | None = None,
    base: int = BASE,
) -> tuple[int, int]:
    """(encoding mod n, exponent) of python-paillier's scheme, by exact fractions."""
    if precision is None:
        if isinstance(value, int):
            exponent = 0
        else:
            exponent = math.floor((math.frexp(value)[1] - 53) / math.log2(base))
    else:
        exponent = math.floor(math.log(precision, base))
    if max_exponent is not None:
        exponent = min(exponent, max_exponent)
    mantissa = round(Fraction(value) / Fraction(base) ** exponent)
    if abs(mantissa) > n // 3 - 1:
        raise OverflowError("mantissa exceeds max_int")
    return mantissa % n, exponent


def decode(n: int, encoding: int, exponent: int, base: int = BASE) -> int | float:
    """The value of an encoding (int for exponent >= 0, else a correctly rounded float)."""
    max_int = n // 3 - 1
    if encoding <= max_int:
        mantissa = encoding
    elif encoding >= n - max_int:
        mantissa = encoding - n
    else:
        raise OverflowError("overflow band")
    if exponent >= 0:
        return mantissa * base**exponent
    return mantissa / base**-exponent


def encrypt_loop(n: int, values: Sequence[int], rs: Sequence[int]) -> list[int]:
    """Encrypt ints one by one (the benchmarks' reference loop)."""
    return [encrypt(n, int(v), r) for v, r in zip(values, rs, strict=True)]


def decrypt_loop(p: int, q: int, cs: Sequence[int]) -> list[int]:
    """Decrypt ciphertexts one by one (the benchmarks' reference loop)."""
    return [decrypt(p, q, c) for c in cs]


def add_loop(n: int, a: Sequence[int], b: Sequence[int]) -> list[int]:
    n2 = n * n
    return [x * y % n2 for x, y in zip(a, b, strict=True)]


def mul_loop(n: int, cs: Sequence[int], ks: Sequence[int]) -> list[int]:
    n2 = n * n
    return [pow(c, int(k), n2) for c, k in zip(cs, ks, strict=True)]


def sum_ciphertexts(n: int, cs: Sequence[int]) -> int:
    n2 = n * n
    acc = 1
    for c in cs:
        acc = acc * c % n2
    return acc


def matmul(n: int, cs: Sequence[Sequence[int]], w: Sequence[Sequence[int]]) -> list[list[int]]:
    """out[i][j] = prod_k cs[i][k]^w[k][j] mod n^2 (E(x) @ W for integer W)."""
    n2 = n * n
    rows, inner, cols = len(cs), len(w), len(w[0]) if w else 0
    out = []
    for i in range(rows):
        row = []
        for j in range(cols):
            acc = 1
            for k in range(inner):
                acc = acc * pow(cs[i][k], int(w[k][j]), n2) % n2
            row.append(acc)
        out.append(row)
    return out


class DJNEncryptor:
    """Paillier encryption with Damgard-Jurik-Nielsen's short-exponent obfuscator, in
    Python on gmpy2: the baseline of the DJN encryption benchmark.

    ``E(m) = (1 + n m) h_s^alpha mod n^2`` with ``alpha`` a fresh nonzero random int of
    ``n_length // 2`` bits and ``h_s = h^n mod n^2`` the key's published base (for
    ppml_fast's keys ``h = -x^2 mod n`` for a random unit x). ``h_s^alpha = (h^alpha)^n``
    is an n-th power, an ordinary Paillier obfuscator, so the ciphertexts decrypt with
    the key as usual. This replaces the classic ``r^n`` (an exponent of n_length bits)
    by an exponent of half the length, the same trick as the fast path.

    Parameters
    ----------
    n : int
        The public modulus.
    hs : int
        The DJN base ``h_s``, an n-th residue mod n^2.
    window : int, optional
        None: one ``gmpy2.powmod(h_s, alpha, n^2)`` per encryption (python-paillier's
        structure with ``r^n`` replaced by ``h_s^alpha``). An int w: a fixed-base table
        of ``h_s^(d 2^(w j))`` for every w-bit digit d and window j of alpha, built
        once here, and one modular product per nonzero digit of alpha.

    Security
    --------
    Not constant time, unlike ppml_fast's: ``powmod`` and the table walk (which skips
    zero digits and indexes the table by alpha's digits) both leak alpha through their
    timing. This is a speed baseline, not an encryptor to use. alpha comes from
    :mod:`secrets`.
    """

    def __init__(self, n: int, hs: int, *, window: int | None = None) -> None:
        self.n = gmpy2.mpz(n)
        self.nsquare = self.n * self.n
        self.hs = gmpy2.mpz(hs)
        self.alpha_bits = max(int(n).bit_length() // 2, 1)
        self.window = window
        self.table: list[list[gmpy2.mpz]] = []
        if window is not None:
            base = self.hs
            for _ in range(-(-self.alpha_bits // window)):
                row = [gmpy2.mpz(1), base]
                for _ in range(2, 1 << window):
                    row.append(row[-1] * base % self.nsquare)
                self.table.append(row)
                base = row[-1] * base % self.nsquare  # h_s^(2^(w (j + 1)))

    def random_alpha(self) -> int:
        """A fresh nonzero alpha of ``n_length // 2`` bits (OS CSPRNG)."""
        alpha = 0
        while alpha == 0:
            alpha = secrets.randbits(self.alpha_bits)
        return alpha

    def obfuscator(self, alpha: int) -> int:
        """``h_s^alpha mod n^2``, by ``powmod`` or by the fixed-base table."""
        if self.window is None:
            return int(gmpy2.powmod(self.hs, alpha, self.nsquare))
        w, mask = self.window, (1 << self.window) - 1
        acc = gmpy2.mpz(1)
        for j, row in enumerate(self.table):
            digit = (alpha >> (w * j)) & mask
            if digit:
                acc = acc * row[digit] % self.nsquare
        return int(acc)

    def encrypt(self, m: int, alpha: int | None = None) -> int:
        """``(1 + n (m mod n)) h_s^alpha mod n^2``; a fresh alpha unless one is given."""
        a = self.random_alpha() if alpha is None else alpha
        nude = 1 + self.n * (int(m) % self.n)
        return int(nude * self.obfuscator(a) % self.nsquare)

    def encrypt_loop(self, values: Sequence[int]) -> list[int]:
        """Encrypt ints one by one, each with a fresh alpha (the benchmarks' loop)."""
        return [self.encrypt(int(v)) for v in values]
