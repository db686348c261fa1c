"""The one place that sets Numba options for every jitted kernel.

``fastmath`` stays off: fast-math lets the compiler reorder and contract floating-point
operations, and the floating-point attacks on DP noise feed on exactly such details.
``cache`` is on when a cache directory is writable (else Numba refuses to import the
module with "no locator available"), so the first call in a fresh process pays the
compile only once per installation.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

import numba


def _cache_ok() -> bool:
    if os.environ.get("NUMBA_CACHE_DIR"):
        return True
    here = os.path.join(os.path.dirname(__file__), "__pycache__")
    for d in (here, os.path.dirname(__file__)):
        if os.path.isdir(d) and os.access(d, os.W_OK):
            return True
    home = os.path.join(os.path.expanduser("~"), ".cache")
    return os.access(home if os.path.isdir(home) else tempfile.gettempdir(), os.W_OK)


OPTIONS: dict[str, Any] = {"nogil": True, "fastmath": False, "cache": _cache_ok()}


def njit(*args: Any, **overrides: Any) -> Callable[..., Any]:
    """``numba.njit`` with the project's options (``parallel=True`` may be passed)."""
    opts = {**OPTIONS, **overrides}
    if args and callable(args[0]):
        return numba.njit(**opts)(args[0])
    return numba.njit(*args, **opts)
