"""ppml_fast: native kernels for privacy-preserving machine learning.

Areas: :mod:`ppml_fast.rng` (secure random streams), :mod:`ppml_fast.noise` (batched DP
noise), :mod:`ppml_fast.mechanisms` (DP mechanisms), :mod:`ppml_fast.stats` (DP
statistics), :mod:`ppml_fast.accounting` (RDP/PRV accounting, calibration, budgets),
:mod:`ppml_fast.clipping` (DP-SGD per-sample clipping and aggregation),
:mod:`ppml_fast.sharing` (ring/field arithmetic, additive and Shamir sharing, fixed point,
Beaver triples, SecretTensor), :mod:`ppml_fast.paillier` (a drop-in for python-paillier
with a batch API), :mod:`ppml_fast.aggregation` (federated and secure aggregation); and
:mod:`ppml_fast.simulation`, a federated-learning simulator built on them.
ARCHITECTURE.md in the source repository describes the layout and the policies.
"""

from ._config import (
    available_isas,
    get_isa,
    get_num_threads,
    isa,
    num_threads,
    set_isa,
    set_num_threads,
)
from ._errors import InsecureRandomnessWarning, PPMLError, PrivacyBudgetExhausted

__all__ = [
    "InsecureRandomnessWarning",
    "PPMLError",
    "PrivacyBudgetExhausted",
    "__version__",
    "available_isas",
    "get_isa",
    "get_num_threads",
    "isa",
    "num_threads",
    "set_isa",
    "set_num_threads",
]


def __getattr__(name: str) -> str:
    """``__version__``, read from the package metadata on first access (the version is
    defined once, in pyproject.toml; reading it at import would cost every import the
    metadata machinery)."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("ppml_fast")
    except PackageNotFoundError:  # a source tree on sys.path that was never installed
        value = "0+unknown"
    globals()["__version__"] = value
    return value
