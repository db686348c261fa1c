"""Native kernels (Cython and Numba). No argument validation happens here: the public
modules validate, convert and allocate, then call these with typed arrays.

OpenMP waiting: GNU OpenMP makes a thread that waits at a barrier spin for a long while
(``GOMP_SPINCOUNT``, 300,000 iterations by default) before it sleeps. On a machine where
another process holds a core, the spinning thread keeps its core while its partner waits
for a time slice, and a 1 ms kernel can take ten times as long. libgomp reads its settings
from the environment once, when it is loaded. So when this package loads libgomp (see
:func:`_load_openmp_runtime`, run once below) it sets ``GOMP_SPINCOUNT=10000`` for that
moment only and removes it right after: nothing else in the process, and no child
process, sees it. It does nothing when the user chose a policy (``GOMP_SPINCOUNT`` or
``OMP_WAIT_POLICY`` set), when ``PPML_FAST_KEEP_OMP_SPIN`` is set to a non-empty value
(the opt-out), or when libgomp is already loaded (it belongs to someone else, who
configured it). On a quiet machine the shorter spin costs nothing.
"""

import os as _os
import sys as _sys
from collections.abc import Callable as _Callable

#: The spin count set while libgomp loads (iterations of a waiting thread before it sleeps).
GOMP_SPIN = "10000"
#: The first OpenMP kernel module; loading it loads libgomp.
_OPENMP_PROBE = "noise"


def _load_openmp_runtime() -> bool:
    """Load libgomp now, with ``GOMP_SPINCOUNT`` set only while it reads its settings.

    The kernel module :data:`_OPENMP_PROBE` is loaded with ``ctypes`` (not imported: its
    module code runs later, on its ordinary import, which reuses this load), so libgomp
    comes from the same place as for every kernel module. Returns whether the spin count
    was applied (False when skipped: see the module docstring).
    """
    env = _os.environ
    if not _sys.platform.startswith("linux") or env.get("PPML_FAST_KEEP_OMP_SPIN"):
        return False
    if "GOMP_SPINCOUNT" in env or "OMP_WAIT_POLICY" in env:
        return False  # the user's own choice
    import ctypes
    import importlib.util

    try:  # already loaded (by another library, or before this package): not ours to tune
        ctypes.CDLL("libgomp.so.1", mode=_os.RTLD_NOLOAD)
        return False
    except OSError:
        pass
    try:
        spec = importlib.util.find_spec(f"{__name__}.{_OPENMP_PROBE}")
    except ImportError:  # pragma: no cover - a broken install: the import will say so
        return False
    if spec is None or not spec.origin or not spec.origin.endswith((".so", ".pyd")):
        return False
    env["GOMP_SPINCOUNT"] = GOMP_SPIN
    try:
        ctypes.CDLL(spec.origin)
    except OSError:  # pragma: no cover - the import will raise the real error
        return False
    finally:
        del env["GOMP_SPINCOUNT"]
    return True


# --- ISA levels (see _isa.h) -------------------------------------------------------------
# Chosen once, when the first kernel module loads: the CPU's highest level, or the lower
# one $PPML_FAST_ISA names. Each extension with variants keeps its own copy of the level
# and registers its setter here; set_level() updates every registered copy.

LEVELS = ("generic", "avx2", "avx512")
_setters: list[_Callable[[int], None]] = []
_level: int | None = None


def cpu_level() -> int:
    """Index in LEVELS of the highest level this CPU supports."""
    from . import _cpu

    return int(_cpu.cpu_isa())


def parse_level(name: object, *, what: str = "level") -> int:
    """Index in LEVELS of ``name``; a clear error for a name that is not a level or that
    this CPU cannot run."""
    if not isinstance(name, str):
        kind = type(name).__name__
        raise TypeError(f"{what} must be a str, one of {', '.join(LEVELS)}; got {kind}")
    key = name.strip().lower()
    if key not in LEVELS:
        raise ValueError(f"{what} must be one of {', '.join(LEVELS)}, got {name!r}")
    index = LEVELS.index(key)
    best = cpu_level()
    if index > best:
        raise ValueError(
            f"{what}={key!r} asks for more than this CPU supports (its highest level is "
            f"{LEVELS[best]!r}); a level can only be lowered"
        )
    return index


def level() -> int:
    """The level the kernels run at (decided on first use)."""
    global _level
    if _level is None:
        env = _os.environ.get("PPML_FAST_ISA", "").strip()
        _level = parse_level(env, what="PPML_FAST_ISA") if env else cpu_level()
    return _level


def set_level(index: int) -> None:
    """Make every loaded kernel module (and every one loaded later) run at ``index``."""
    global _level
    _level = index
    for setter in _setters:
        setter(index)


def register(setter: _Callable[[int], None]) -> None:
    """Called by each extension with variants when it loads: it runs at the current level."""
    setter(level())
    _setters.append(setter)


_load_openmp_runtime()
