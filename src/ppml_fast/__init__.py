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

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from ._config import get_num_threads, num_threads, set_num_threads
from ._errors import InsecureRandomnessWarning, PPMLError, PrivacyBudgetExhausted

try:
    __version__ = _version("ppml_fast")
except PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0+unknown"

__all__ = [
    "InsecureRandomnessWarning",
    "PPMLError",
    "PrivacyBudgetExhausted",
    "__version__",
    "get_num_threads",
    "num_threads",
    "set_num_threads",
]
