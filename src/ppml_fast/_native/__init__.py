"""Native kernels (Cython and Numba). No argument validation happens here: the public
modules validate, convert and allocate, then call these with typed arrays.

OpenMP waiting: GNU OpenMP makes a thread that waits at a barrier spin for a long while
(``GOMP_SPINCOUNT``, 300,000 iterations by default) before it sleeps. On a machine where
another process holds a core, the spinning thread keeps its core while its partner waits
for a time slice, and a 1 ms kernel can take ten times as long.
Unless the user has chosen a policy (``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY`` set), the
spin is cut to 10,000 iterations, read by libgomp when the first kernel module loads it
(below this package, so this runs first); on a quiet machine the shorter spin costs nothing.
"""

import os as _os
from collections.abc import Callable as _Callable

if "GOMP_SPINCOUNT" not in _os.environ and "OMP_WAIT_POLICY" not in _os.environ:
    _os.environ["GOMP_SPINCOUNT"] = "10000"


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
