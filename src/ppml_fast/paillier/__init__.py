"""Paillier homomorphic encryption: a drop-in for ``phe.paillier`` plus batched GMP kernels.

Replace ``from phe import paillier`` with ``from ppml_fast import paillier``: keys,
:class:`EncodedNumber` and :class:`EncryptedNumber` behave as python-paillier's do, and for
the same key and ``r_value`` the ciphertext integers are the same, so keys and ciphertexts
move between the two libraries unchanged. The batch API is what the package is for:
:meth:`PaillierPublicKey.encrypt_batch` returns an :class:`EncryptedArray` (ciphertexts as
rows of GMP limbs), whose ``+``, ``-``, ``*``, ``sum`` and plaintext ``@`` run as OpenMP
loops over GMP with the GIL released, and :meth:`PaillierPrivateKey.decrypt_batch` decrypts
by CRT on all cores.

The parts: :mod:`~ppml_fast.paillier.keys` (key generation, public and private keys,
keyring), :mod:`~ppml_fast.paillier.encoding` (:class:`EncodedNumber`),
:mod:`~ppml_fast.paillier.number` (:class:`EncryptedNumber`) and
:mod:`~ppml_fast.paillier.array` (:class:`EncryptedArray`, batch encryption and
decryption) and :mod:`~ppml_fast.paillier.packing` (:func:`encrypt_packed`: many quantised
values per plaintext for federated sums); every public name is importable from this package.

Maths
-----
A public key is n = pq with g = n + 1. Encryption of m in Z_n is
``c = g^m r^n mod n^2 = (1 + n m) r^n mod n^2`` for a random r in Z_n^*; decryption uses
``L(x) = (x - 1) / p``: ``m_p = L(c^(p-1) mod p^2) h_p mod p`` with
``h_p = L(g^(p-1) mod p^2)^-1 mod p`` (likewise mod q) joined by CRT. ``E(a) E(b) = E(a+b)``
and ``E(a)^k = E(ka)`` mod n^2. Signed and real numbers use python-paillier's encoding: a
value x is ``mantissa * BASE**exponent`` with BASE = 16, the mantissa stored mod n, and
|mantissa| <= max_int = n // 3 - 1 (values in between mean overflow).

Security
--------
* Every random value (r, the DJN exponent alpha, key primes) comes from the operating
  system's CSPRNG or the package's AES-CTR stream seeded from it; no seed is accepted.
* Obfuscation (the random factor ``r^n``) has two forms. ``"classic"`` draws r uniform
  in Z_n^* and computes r^n (what python-paillier does). ``"djn"`` (the default for keys
  of 512 bits and more) uses Damgard-Jurik-Nielsen's short-exponent form ``h_s^alpha`` with
  ``h_s = h^n mod n^2`` for a random ``h = -x^2 mod n`` published with the key, and a fresh
  nonzero alpha of ``n_length / 2`` bits per encryption (as Intel's IPCL does).
  h_s^alpha = (h^alpha)^n is an ordinary Paillier obfuscator, so the ciphertexts decrypt
  anywhere. Its semantic security rests on the decisional composite residuosity assumption
  *and* on the assumption that a random n_length/2-bit exponent of h_s is
  indistinguishable from a full one (the short-exponent assumption of Damgard, Jurik and
  Nielsen, 2010). With a precomputed fixed-base table (4 MB for a 2048-bit key) it costs
  205 modular multiplications instead of a full exponentiation. Choose
  ``obfuscation="classic"`` to rely on DCR alone.
* Secret exponents use constant-time code. Batched decryption (two ciphertexts or more) at
  the avx2 level and above runs p - 1 and q - 1 through ppml_fast's own power: four
  exponentiations side by side in the AVX2 lanes, Montgomery products in radix 2^26..2^28
  whose instruction sequence depends on no value, a fixed 5-bit window schedule over the
  exponent's full limb width, every table entry read and kept by masks, a final
  subtraction chosen by masks, and the reductions mod p^2 and q^2 by GMP's
  ``mpn_sec_div_r``; the test suite checks it with valgrind (the exponent marked
  undefined) and a Welch t-test on timings. A single ciphertext's halves, and h_s^alpha
  before a key has its table, use a MULX/ADX power built the same way (64-bit limbs, on
  CPUs with ADX) at the avx2 level. The generic level uses GMP's ``mpz_powm_sec``; so does
  n mod p(p-1) in private-key encryption without IFMA. The table walk reads every entry of
  each window and multiplies once per window whatever alpha's digit is (Montgomery
  products four alphas at a time in the AVX2 lanes, on GMP's ``mpn_addmul_1`` at the
  generic level, or the IFMA kernel, each with a final subtraction chosen by masks).
  Single encryptions build the key's table after 4 calls. The classic CRT path with IFMA
  raises r to the public exponent n itself modulo the secret p^2 and q^2, with Montgomery
  multiplications whose timing depends on no value. Plaintext multipliers (``*``, ``@``,
  exponent alignment) use variable-time powers: their time depends on the plaintext
  scalars, the caller's own data (as in python-paillier).
* Steps that still take variable time on secret-derived values, and why they are accepted:
  in decryption, the step after the power (``L_p(x) h_p mod p``) and the CRT recombination
  (``(m_q - m_p) p^-1 mod q``, then ``m_p + p (...)``) use GMP's ``mpz`` division and
  multiplication, and so does reducing the ciphertext mod p^2 and q^2 at the generic level
  (the avx2 paths use ``mpn_sec_div_r``); their time follows the operands' limb counts
  (fixed by the key size) and, in division, rare quotient corrections; the powers' setup
  finds the limb count of p^2 and q^2 (public: the key size); ``raw_decrypt`` first checks
  ``c mod p`` and ``c mod q`` in Python ints. None of them is an exponentiation with a
  secret exponent, the classic target of timing attacks. The DJN base's x draws its gcd in
  the clear (x is used once, to make the public h_s). The classic r is drawn without a gcd
  check for keys of 512 bits and more: a multiple of p or q has probability below 2^-254,
  and skipping the check keeps a variable-time gcd off the secret r.
* Scratch that held values modulo p^2 or q^2 in the decryption kernel is zeroed before it
  is freed; Python ints (p, q, the CRT constants) cannot be wiped and live until the key
  object is collected.
* Results of homomorphic operations are *not* re-randomised (as in python-paillier); call
  ``obfuscate()`` or serialise with ``be_secure=True`` before sending them to anyone.
* Key generation: primes p, q of n_length/2 bits drawn from the OS CSPRNG, the next prime
  found by GMP (Baillie-PSW plus Miller-Rabin) and re-checked with 40 more Miller-Rabin
  rounds, p != q, |n| = n_length exactly and gcd(n, (p-1)(q-1)) = 1. The default
  n_length, ``DEFAULT_KEYSIZE``, is 3072 bits (about 128-bit security), python-paillier's
  default: switching the import never weakens the keys a program generates.

Differences from python-paillier
--------------------------------
* Unsupported operands (``EncryptedNumber * EncryptedNumber``, strings, ...) return
  ``NotImplemented``, so Python raises ``TypeError`` (phe raised ``NotImplementedError``
  for the first).
* Encoding a number outside +-max_int raises :class:`EncodingOverflowError`, which is both
  the ``ValueError`` phe raises and an ``OverflowError``.
* Numpy integer and floating scalars are accepted wherever Python ints and floats are.
* ``raw_decrypt`` rejects ciphertexts outside [1, n^2) or not coprime to n (``ValueError``).
* Aligning exponents (``+``, ``sum``, ``@``, ``decrease_exponent_to``) lowers one by at
  most ``encoding.MAX_EXPONENT_SPREAD`` = 4096 per step and raises ``ValueError`` naming
  the operation beyond it, before any modular power: exponents set far apart in received
  data would otherwise cost seconds per element. Encoded floats differ by at most 524.
"""

# The Paillier kernels are compiled against gmpy2's gmp.h without linking GMP: its symbols
# must be global before any part of this package imports ppml_fast._native.paillier
# (see _native/_gmp.py). Python runs this file before any submodule, so loading here
# covers every import path.
from .._native import _gmp

_gmp.load()

from .._errors import EncodingOverflowError, KeyMismatchError  # noqa: E402
from .array import EncryptedArray  # noqa: E402
from .encoding import EncodedNumber  # noqa: E402
from .keys import (  # noqa: E402
    DEFAULT_KEYSIZE,
    PaillierPrivateKey,
    PaillierPrivateKeyring,
    PaillierPublicKey,
    generate_paillier_keypair,
)
from .number import EncryptedNumber  # noqa: E402
from .packing import (  # noqa: E402
    EncryptedPackedArray,
    decrypt_packed,
    encrypt_packed,
    sum_packed,
)

__all__ = [
    "DEFAULT_KEYSIZE",
    "EncodedNumber",
    "EncodingOverflowError",
    "EncryptedArray",
    "EncryptedNumber",
    "EncryptedPackedArray",
    "KeyMismatchError",
    "PaillierPrivateKey",
    "PaillierPrivateKeyring",
    "PaillierPublicKey",
    "decrypt_packed",
    "encrypt_packed",
    "generate_paillier_keypair",
    "sum_packed",
]
