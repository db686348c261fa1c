"""Privacy accounting (being split into modules; everything is in :mod:`.prv` for now)."""

from .prv import *  # noqa: F403
from .prv import __all__  # noqa: F401
