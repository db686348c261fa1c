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
