"""The package's exception and warning types; every ppml_fast error derives from PPMLError."""


class PPMLError(Exception):
    """Base class of the errors that ppml_fast raises itself (beyond TypeError/ValueError)."""


class PrivacyBudgetExhausted(PPMLError):
    """Raised before a spend that would exceed a privacy budget."""


class InsecureRandomnessWarning(UserWarning):
    """A seeded or otherwise non-cryptographic stream fed a privacy mechanism.

    Seeded noise is reproducible, which is what tests need and exactly what an
    attacker needs: anyone who knows the seed can subtract the noise.
    """


class KeyMismatchError(PPMLError, ValueError):
    """Paillier values under different public keys were combined (a ValueError, as in phe)."""


class EncodingOverflowError(PPMLError, ValueError, OverflowError):
    """A number does not fit a Paillier encoding (|mantissa| > max_int).

    Both a ``ValueError`` (what python-paillier raises when encoding) and an
    ``OverflowError`` (the error class for encodings that do not fit).
    """


class ResultOverflowError(PPMLError, ValueError, OverflowError):
    """A result would not fit its dtype (e.g. a value plus its noise beyond float64).

    Both a ``ValueError`` (the arguments -- a scale too large for the data -- are what is
    wrong) and an ``OverflowError`` (what such results raised before this class).
    """
