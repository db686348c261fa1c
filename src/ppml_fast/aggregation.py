"""Federated aggregation and secure aggregation (work in progress: names are forwarded
lazily from the private modules that implement them, ``_robust`` and ``_secagg``)."""
from __future__ import annotations

import importlib
from typing import Any

_PARTS = ("_robust", "_secagg")


def __getattr__(name: str) -> Any:
    for part in _PARTS:
        try:
            mod = importlib.import_module(f"ppml_fast.{part}")
        except ModuleNotFoundError as exc:
            if exc.name == f"ppml_fast.{part}":
                continue
            raise
        if name in getattr(mod, "__all__", ()):
            return getattr(mod, name)
    raise AttributeError(f"module 'ppml_fast.aggregation' has no attribute {name!r}")
