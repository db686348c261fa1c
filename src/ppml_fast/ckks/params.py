"""CKKS parameters: the security tables, the presets and the error model.

Security
--------
A CKKS (RLWE) parameter set is a ring degree N and a coefficient modulus Q, the product
of the primes of ``coeff_mod_bit_sizes`` (the last one is SEAL's special prime, used only
for key switching; ciphertexts live modulo the others). Its security depends on N and
log2 Q. :data:`MAX_COEFF_BITS` is the HomomorphicEncryption.org security standard's table
(Albrecht et al., 2018) for a uniform ternary secret and error of standard deviation 3.2,
the distributions SEAL uses: the largest total log2 Q for which the best known attacks
(estimated with the lattice estimator) cost at least 2^128, 2^192 or 2^256 operations.
SEAL enforces the 128-bit column itself; the checks here name the parameter and the bound,
and add the 192- and 256-bit levels.

Error model
-----------
Decryption returns each slot with an additive error. In units of one coefficient (before
dividing by the scale Δ), with σ = 3.2 the error's standard deviation, u and s uniform
ternary (variance 2/3 per coefficient) and N the ring degree:

- encoding rounds N coefficients to integers: variance 1/12 each;
- symmetric (secret-key) encryption adds e: variance σ² per coefficient;
- public-key encryption adds e1 + e2·s - e·u (variance σ²(1 + 4N/3)) at the key level,
  whose modulus includes the special prime p, and SEAL then divides by p with rounding:
  what is left is that error over p² plus the rounding of c0 and of c1 times s, variance
  (1 + 2N/3)/12 per coefficient.

A slot is an evaluation of the coefficient polynomial at a root of unity, a sum of N
independent terms: its real part has variance N/2 times the coefficient variance. The
terms that do not involve the secret key (encoding, symmetric encryption's e) give a
Gaussian slot error by the central limit theorem. The rounding of c1 times s does not:
in the slots it is a product, the slot of the rounding times the slot of s (the same s
in every ciphertext), and the real part of a product of two independent complex
Gaussians is Laplace distributed, whose tails are far heavier (a fixed key has slots
where s is large, and they stay large in every ciphertext and every sum).

A sum of ciphertexts adds the variances; a ciphertext multiplied by a plaintext scalar w
scales its error by |w|, and the rescale that follows adds rounding of variance
(1 + 2N/3)/12 per coefficient (again times s), plus the weight's own encoding error
|x| / (2Δ). :func:`error_bound` turns the standard deviation S into a bound that every
slot of the result meets with probability at least 1 - p (``failure_probability``), by a
union bound over the slots: the Laplace quantile S·ln(values/p)/√2 when a key-dependent
term is present (public-key encryption, or any plaintext multiplication), else the
Gaussian one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from scipy.special import ndtri

from .._validation import (
    OPEN_UNIT,
    POSITIVE,
    as_finite_array,
    check_bool,
    check_choice,
    check_int,
    check_scalar,
)

__all__ = [
    "ERROR_STD",
    "MAX_COEFF_BITS",
    "CKKSParameters",
    "aggregation_parameters",
    "error_bound",
    "error_std",
    "general_parameters",
    "max_coeff_bits",
]

#: Standard deviation of SEAL's error distribution (a rounded Gaussian, cut at 6σ).
ERROR_STD = 3.2

#: The HomomorphicEncryption.org standard's largest total coefficient-modulus bits for
#: ring degree N at each security level (ternary secret), as SEAL also tabulates them.
MAX_COEFF_BITS: dict[int, dict[int, int]] = {
    128: {1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881},
    192: {1024: 19, 2048: 37, 4096: 75, 8192: 152, 16384: 305, 32768: 611},
    256: {1024: 14, 2048: 29, 4096: 58, 8192: 118, 16384: 237, 32768: 476},
}

_DEGREES = (1024, 2048, 4096, 8192, 16384, 32768)
_ENCRYPTIONS = ("asymmetric", "symmetric")


def max_coeff_bits(poly_modulus_degree: int, security: int = 128) -> int:
    """The largest total coefficient-modulus size in bits that ``poly_modulus_degree``
    allows at ``security`` bits (128, 192 or 256), from :data:`MAX_COEFF_BITS`."""
    n = check_int(poly_modulus_degree, "poly_modulus_degree")
    sec = check_int(security, "security")
    if sec not in MAX_COEFF_BITS:
        raise ValueError(f"security must be 128, 192 or 256, got {sec}")
    if n not in MAX_COEFF_BITS[sec]:
        raise ValueError(f"poly_modulus_degree must be a power of two in [1024, 32768], got {n}")
    return MAX_COEFF_BITS[sec][n]


@dataclass(frozen=True)
class CKKSParameters:
    """A checked CKKS parameter set.

    Parameters
    ----------
    poly_modulus_degree : int
        The ring degree N, a power of two in [1024, 32768]; a ciphertext holds N/2 slots.
    coeff_mod_bit_sizes : sequence of int
        The bit sizes of the coefficient-modulus primes (each in [10, 60]), the last one
        SEAL's special prime; their sum must not exceed :func:`max_coeff_bits` for N at
        ``security``.
    scale : float
        The CKKS scale Δ (a value x is encoded as round(x·Δ)); at most 2^(bits of the
        first prime - 1).
    security : {128, 192, 256}
        The security level the parameters must reach.
    galois_keys : bool
        Whether a context built from these parameters generates Galois (rotation) keys.

    Raises
    ------
    ValueError
        A value out of its range, or a modulus above the security level's bound (the
        message names both).
    """

    poly_modulus_degree: int
    coeff_mod_bit_sizes: tuple[int, ...]
    scale: float
    security: int = 128
    galois_keys: bool = False
    #: The primes' values, when known (a context's parameters); SEAL picks them from the
    #: bit sizes. Not part of equality.
    primes: tuple[int, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        n = check_int(self.poly_modulus_degree, "poly_modulus_degree")
        if n not in _DEGREES:
            raise ValueError(
                f"poly_modulus_degree must be a power of two in [1024, 32768], got {n}"
            )
        if isinstance(self.coeff_mod_bit_sizes, (str, bytes)) or not isinstance(
            self.coeff_mod_bit_sizes, Sequence
        ):
            raise TypeError(
                "coeff_mod_bit_sizes must be a sequence of ints, got "
                f"{type(self.coeff_mod_bit_sizes).__name__}"
            )
        bits = tuple(check_int(b, "coeff_mod_bit_sizes[i]") for b in self.coeff_mod_bit_sizes)
        if len(bits) < 2:
            raise ValueError(
                "coeff_mod_bit_sizes must have at least 2 primes (the last is the special "
                f"prime for key switching), got {len(bits)}"
            )
        for b in bits:
            if not 10 <= b <= 60:
                raise ValueError(f"coeff_mod_bit_sizes entries must be in [10, 60], got {b}")
        limit = max_coeff_bits(n, self.security)
        if sum(bits) > limit:
            raise ValueError(
                f"coeff_mod_bit_sizes sum to {sum(bits)} bits, above the {limit} bits that "
                f"poly_modulus_degree={n} allows at {self.security}-bit security "
                "(HomomorphicEncryption.org standard)"
            )
        scale = check_scalar(self.scale, "scale", POSITIVE)
        if not 1.0 <= scale < 2.0 ** (bits[0] - 1):
            raise ValueError(
                f"scale must be in [1, 2^{bits[0] - 1}) for a first prime of {bits[0]} bits, "
                f"got 2^{math.log2(scale):.2f}"
            )
        object.__setattr__(self, "poly_modulus_degree", n)
        object.__setattr__(self, "coeff_mod_bit_sizes", bits)
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "galois_keys", check_bool(self.galois_keys, "galois_keys"))
        if isinstance(self.primes, (str, bytes)) or not isinstance(self.primes, Sequence):
            raise TypeError(f"primes must be a sequence of ints, got {type(self.primes).__name__}")
        primes = tuple(check_int(q, "primes[i]", minimum=2) for q in self.primes)
        if primes and (
            len(primes) != len(bits)
            or any(q.bit_length() != b for q, b in zip(primes, bits, strict=True))
        ):
            raise ValueError("primes must have the bit sizes of coeff_mod_bit_sizes")
        object.__setattr__(self, "primes", primes)

    @property
    def slots(self) -> int:
        """Values per ciphertext: N/2."""
        return self.poly_modulus_degree // 2

    @property
    def data_bits(self) -> int:
        """Bits of the modulus a fresh ciphertext lives under (all primes but the last)."""
        return sum(self.coeff_mod_bit_sizes[:-1])

    @property
    def levels(self) -> int:
        """Rescales available: plaintext multiplications a fresh ciphertext can take."""
        return len(self.coeff_mod_bit_sizes) - 2

    @property
    def max_value(self) -> float:
        """The largest |value| a slot can hold at the last level without wrapping: the
        first prime over 2Δ (a slot's value times Δ must stay below half the modulus)."""
        return 2.0 ** (self.coeff_mod_bit_sizes[0] - 1) / self.scale

    @property
    def max_encoded(self) -> float:
        """The largest |value| one plaintext can encode: half :attr:`max_value` (SEAL's
        encoder refuses a coefficient of as many bits as the first prime less one)."""
        return 2.0 ** (self.coeff_mod_bit_sizes[0] - 2) / self.scale


def general_parameters(security: int = 128) -> CKKSParameters:
    """The general-purpose preset: N = 8192, primes [60, 40, 40, 60], scale 2^40, Galois
    keys. Two multiplicative levels; 4096 slots per ciphertext. It meets 128-bit security
    (218 bits allowed, 200 used), not 192 or 256: a higher ``security`` raises."""
    return CKKSParameters(8192, (60, 40, 40, 60), 2.0**40, security=security, galois_keys=True)


def _check_params(params: object) -> None:
    if not isinstance(params, CKKSParameters):
        raise TypeError(f"params must be a CKKSParameters, got {type(params).__name__}")


def error_std(
    params: CKKSParameters,
    *,
    encryption: str = "asymmetric",
    clients: int = 1,
    weights: Sequence[float] | None = None,
    bound: float = 0.0,
) -> float:
    """Standard deviation of one slot's decryption error of a (weighted) sum of fresh
    ciphertexts, in the units of the values (see the module's error model).

    With ``weights`` the sum is Σ w_k·Enc(x_k), each product followed by a rescale;
    ``bound`` (the largest |x_k| of any slot) adds the weights' encoding error. Without
    ``weights`` it is the plain sum of ``clients`` ciphertexts.
    """
    _check_params(params)
    check_choice(encryption, "encryption", _ENCRYPTIONS)
    n_deg = params.poly_modulus_degree
    s2 = ERROR_STD**2
    if encryption == "asymmetric":
        special = 2.0 ** (params.coeff_mod_bit_sizes[-1] - 1)  # a lower bound on p
        coeff_var = (
            1.0 / 12.0
            + (1.0 + 2.0 * n_deg / 3.0) / 12.0
            + s2 * (1.0 + 4.0 * n_deg / 3.0) / special**2
        )
    else:
        coeff_var = 1.0 / 12.0 + s2
    slot_var = n_deg / 2.0 * coeff_var / params.scale**2
    if weights is None:
        k = check_int(clients, "clients", minimum=1)
        return math.sqrt(k * slot_var)
    w_arr = as_finite_array(weights, "weights", float)
    if w_arr.ndim != 1:
        raise ValueError(f"weights must be 1-D, got shape {w_arr.shape}")
    w = w_arr.tolist()
    rescale_var = n_deg / 2.0 * (1.0 + 2.0 * n_deg / 3.0) / 12.0 / params.scale**2
    # sum_updates keeps one weight w_ref as the public factor and multiplies the others'
    # sums by w/w_ref: each multiplication's rescale and weight-encoding errors are then
    # scaled by w_ref, at most the largest |w|.
    w_max = max((abs(x) for x in w), default=0.0)
    var = sum(x * x for x in w) * slot_var + len(w) * w_max * w_max * rescale_var
    # Each relative weight is encoded as round(r·Δ)/Δ: an error of at most |x|/(2Δ) per
    # client before the factor, taken as uniform (variance (w_max·|x|/(2Δ))²/3).
    enc = w_max * check_scalar(bound, "bound") / (2.0 * params.scale)
    var += len(w) * (enc * enc) / 3.0  # inf, not OverflowError, for an absurd bound
    return math.sqrt(var)


def error_bound(
    params: CKKSParameters,
    *,
    values: int,
    encryption: str = "asymmetric",
    clients: int = 1,
    weights: Sequence[float] | None = None,
    bound: float = 0.0,
    failure_probability: float = 1e-9,
) -> float:
    """A bound on the largest absolute decryption error over ``values`` slots of a (weighted)
    sum of ``clients`` fresh ciphertexts, met with probability ≥ 1 - ``failure_probability``.

    It is z·:func:`error_std`, z the quantile at ``failure_probability / values`` (a union
    bound over the slots) of the Laplace distribution with unit variance where the error
    has a key-dependent term (public-key encryption, ``weights``), of the standard
    Gaussian otherwise (symmetric encryption, plain sums). It covers the
    encryption, encoding and rescale errors; it assumes the values never exceed
    :attr:`CKKSParameters.max_value`, which :func:`aggregation_parameters` ensures.
    """
    _check_params(params)
    v = check_int(values, "values", minimum=1)
    p = check_scalar(failure_probability, "failure_probability", OPEN_UNIT)
    check_choice(encryption, "encryption", _ENCRYPTIONS)
    if encryption == "asymmetric" or weights is not None:
        # Laplace with variance 1: P(|X| > t) = exp(-√2·t).
        z = math.log(v / p) / math.sqrt(2.0)
    else:
        z = float(-ndtri(p / (2.0 * v)))
    return z * error_std(
        params, encryption=encryption, clients=clients, weights=weights, bound=bound
    )


def aggregation_parameters(
    clients: int,
    *,
    bound: float = 1.0,
    precision: float = 1e-6,
    values: int = 10**6,
    security: int = 128,
    encryption: str = "asymmetric",
    failure_probability: float = 1e-9,
) -> CKKSParameters:
    """The smallest parameters that hold the sum of ``clients`` updates at ``precision``.

    The addition-only preset: no multiplicative level, so a ciphertext is one data prime
    (plus SEAL's special prime, which the ciphertext does not carry) and is as small as the
    ring allows. For each ring degree N from the smallest up, the data prime is the largest
    the security level allows (at most 60 bits), the scale Δ the largest for which a sum of
    ``clients`` values of magnitude ``bound`` cannot wrap around (|Σ|·Δ < q/2 with a factor
    2 of margin), and N is accepted when :func:`error_bound` over ``values`` slots is at
    most ``precision``.

    Parameters
    ----------
    clients : int
        The number of updates summed (≥ 1).
    bound : float
        The largest |value| of any client's update (after its weight, when clients weight
        their own updates).
    precision : float
        The largest absolute error allowed in any slot of the aggregate.
    values : int
        Slots the error bound is taken over (the update's length, at least).
    security, encryption, failure_probability
        As for :class:`CKKSParameters` and :func:`error_bound`.

    Raises
    ------
    ValueError
        No ring degree up to 32768 meets ``precision`` at ``security`` bits.
    """
    k = check_int(clients, "clients", minimum=1)
    b = check_scalar(bound, "bound", POSITIVE)
    eps = check_scalar(precision, "precision", POSITIVE)
    check_int(values, "values", minimum=1)
    check_choice(encryption, "encryption", _ENCRYPTIONS)
    sec = check_int(security, "security")
    if sec not in MAX_COEFF_BITS:
        raise ValueError(f"security must be 128, 192 or 256, got {sec}")
    # Bits above Δ: the sum's magnitude, with a factor 2 of margin.
    magnitude = math.log2(k) + math.log2(b)
    if magnitude > 58:
        raise ValueError(
            f"bound must be such that clients × bound < 2^58 (a sum a 60-bit prime holds), "
            f"got {k} × {b:g}"
        )
    headroom = max(0, math.ceil(magnitude)) + 2
    for n_deg in _DEGREES:
        limit = MAX_COEFF_BITS[sec][n_deg]
        data = min(60, limit - 20)  # the special prime gets at least 20 bits
        if data < 20:
            continue
        special = min(60, limit - data)
        scale_bits = data - 1 - headroom
        if scale_bits < 10:
            continue
        try:
            params = CKKSParameters(n_deg, (data, special), 2.0**scale_bits, security=sec)
        except ValueError:
            continue
        err = error_bound(
            params,
            values=values,
            encryption=encryption,
            clients=k,
            failure_probability=failure_probability,
        )
        if err <= eps:
            return params
    raise ValueError(
        "precision must be reachable for these clients, bound, values, security and "
        f"failure_probability: no ring degree up to 32768 holds a sum of {k} values of "
        f"magnitude {b:g} at precision {eps:g} with {sec}-bit security"
    )
