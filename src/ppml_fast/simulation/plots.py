"""The simulation's figure: test accuracy (and ε) against the round, drawn with
matplotlib, which is imported only when a figure is drawn."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from .records import RoundRecord, SimulationResult

__all__ = ["plot"]


def pyplot(caller: str) -> Any:
    """``matplotlib.pyplot`` on a non-interactive backend (unless one was chosen).

    Raises
    ------
    ImportError
        matplotlib is not installed (the message names ``caller``).
    """
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(f"{caller} needs matplotlib: pip install matplotlib") from exc
    return plt


def plot(history: SimulationResult | Sequence[RoundRecord], path: str | os.PathLike[str]) -> None:
    """Save test accuracy (and ε, for DP runs) against the round to ``path``.

    Parameters
    ----------
    history : SimulationResult or sequence of RoundRecord
    path : str or path-like
        The image file; matplotlib picks the format from its suffix.

    Raises
    ------
    ImportError
        matplotlib is not installed.
    """
    plt = pyplot("plot")
    recs = history.history if isinstance(history, SimulationResult) else list(history)
    rounds = [r.round for r in recs]
    private = any(r.epsilon is not None for r in recs)
    fig, axes = plt.subplots(
        1, 2 if private else 1, figsize=(10 if private else 5, 3.5), squeeze=False
    )
    axes[0, 0].plot(rounds, [r.test_accuracy for r in recs], marker="o")
    axes[0, 0].set(xlabel="round", ylabel="test accuracy")
    if private:
        axes[0, 1].plot(rounds, [r.epsilon for r in recs], marker="o", color="tab:red")
        axes[0, 1].set(xlabel="round", ylabel="epsilon spent")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
