"""The p-value thresholds of the statistical tests, written once.

Fixed seeds use p > 1e-4: they are deterministic and pass or fail the same way every run.
The one fresh seed per run (``FRESH``) uses p > 1e-6, so that the suite's ~40 fresh-seed
assertions raise a false alarm in fewer than 1 run in 10,000.
"""

from __future__ import annotations

import numpy as np

FRESH = int(np.random.SeedSequence().entropy % 2**63)
P_MIN = 1e-4
P_MIN_FRESH = 1e-6


def p_min(seed: object) -> float:
    """The threshold for a test run on ``seed``."""
    return P_MIN_FRESH if seed == FRESH else P_MIN
