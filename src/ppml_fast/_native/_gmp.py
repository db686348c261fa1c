"""Make GMP's symbols visible to the Paillier extension before it is imported.

The extension is compiled against the ``gmp.h`` that ships inside the gmpy2 wheel and is
not linked with GMP (the wheel's ``gmpy2.libs/libgmp-<hash>.so`` has no stable name to
link against). Importing gmpy2 loads that library privately; re-opening it here with
``RTLD_GLOBAL`` puts its ``__gmpz_*`` symbols in the global namespace, where the
extension's undefined references resolve when it is loaded. A gmpy2 built against a
system GMP is covered by the ``ctypes.util.find_library`` fallback.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os

_loaded: list[ctypes.CDLL] = []


def load() -> None:
    """Load GMP globally (idempotent)."""
    if _loaded:
        return
    import gmpy2

    site = os.path.dirname(os.path.dirname(os.path.abspath(gmpy2.__file__)))
    candidates = sorted(glob.glob(os.path.join(site, "gmpy2.libs", "libgmp*.so*")))
    system = ctypes.util.find_library("gmp")
    if system:
        candidates.append(system)
    errors = []
    for path in candidates:
        try:
            _loaded.append(ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL))
            return
        except OSError as exc:  # pragma: no cover - depends on the installation
            errors.append(f"{path}: {exc}")
    raise ImportError(  # pragma: no cover
        "ppml_fast.paillier needs the GMP library that gmpy2 ships; none could be loaded"
        + (": " + "; ".join(errors) if errors else " (gmpy2.libs not found)")
    )
