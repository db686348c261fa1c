"""ppml_fast: native kernels for privacy-preserving machine learning.

Areas: :mod:`ppml_fast.rng` (secure random streams), :mod:`ppml_fast.noise` (batched DP
noise), :mod:`ppml_fast.mechanisms` (DP mechanisms), :mod:`ppml_fast.stats` (DP
statistics), :mod:`ppml_fast.accounting` (RDP/PRV accounting, calibration, budgets),
:mod:`ppml_fast.clipping` (DP-SGD per-sample clipping and aggregation),
:mod:`ppml_fast.sharing` (ring/field arithmetic, additive and Shamir sharing, fixed point,
Beaver triples, SecretTensor).
See DESIGN.md for the architecture.
"""

from ._config import get_num_threads, num_threads, set_num_threads
from ._errors import InsecureRandomnessWarning, PPMLError, PrivacyBudgetExhausted

__version__ = "0.1.0"

__all__ = [
    "InsecureRandomnessWarning",
    "PPMLError",
    "PrivacyBudgetExhausted",
    "__version__",
    "get_num_threads",
    "num_threads",
    "set_num_threads",
]
