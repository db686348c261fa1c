"""Pure-numpy oracles of :mod:`ppml_fast.split`."""

from __future__ import annotations

import numpy as np

__all__: list[str] = []

# ------------------------------------------------------------- distance correlation


# ------------------------------------------------------------------------ defences


# ------------------------------------------------------------------------- leakage


_ = np
