"""The simulation's records: one :class:`RoundRecord` per round, the run's
:class:`SimulationResult`, and their text or Markdown table (:func:`history_table`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .._tables import render
from .._validation import check_bool
from .models import Model

__all__ = ["RoundRecord", "SimulationResult", "history_table"]


@dataclasses.dataclass(frozen=True)
class RoundRecord:
    """What one round did.

    Attributes
    ----------
    round : int
        The round, from 1.
    clients : int
        The clients sampled.
    survivors : int
        The clients whose updates the aggregate counts (fewer after SecAgg dropouts).
    train_loss, test_accuracy : float
        The global model's after the round (the loss over all clients' training data: a
        monitoring figure the simulation can see, not a released one).
    epsilon : float or None
        The ε spent so far at the run's δ (``None`` without DP).
    bytes_per_client : int or None
        What one client sends the server (``None`` when an aborted secure-aggregation
        round does not say).
    client_s, aggregation_s : float
        Wall seconds of the client phase and of the aggregation.
    aborted : bool
        The aggregate could not be computed (the model did not change).
    accounting : tuple of (float, float, int), optional
        The accountant history behind ``epsilon``, Opacus' ``(noise_multiplier,
        sample_rate, steps)`` triples (for DP-SGD, of the client with the largest ε).
    packing_factor : int, optional
        Under Paillier, the values each ciphertext carries: the packed layout's slots,
        or 1 without packing; under CKKS, the slots of a ciphertext, N/2 (``None`` in the
        other modes). ``bytes_per_client`` is the ciphertext bytes a client actually
        sent, about ``1 / packing_factor`` of the unpacked figure under Paillier.
    encrypt_s : float, optional
        Under Paillier and CKKS, the mean wall seconds a client spent encrypting its
        update (part of ``client_s``); ``None`` in the other modes.
    decrypt_s : float, optional
        Under Paillier and CKKS, the wall seconds the decryptor spent decrypting the
        aggregate (part of ``aggregation_s``); ``None`` in the other modes.
    clipped : int, optional
        Under CKKS, the coordinates of the round's updates that the aggregator's
        ``bound`` clipped (0 when the run equals FedAvg within its precision); ``None``
        in the other modes.
    """

    round: int
    clients: int
    survivors: int
    train_loss: float
    test_accuracy: float
    epsilon: float | None
    bytes_per_client: int | None
    client_s: float
    aggregation_s: float
    aborted: bool = False
    accounting: tuple[tuple[float, float, int], ...] | None = None
    packing_factor: int | None = None
    encrypt_s: float | None = None
    decrypt_s: float | None = None
    clipped: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The record's fields by name."""
        return dataclasses.asdict(self)


_COLUMNS = (
    ("round", "round", "{}"),
    ("clients", "clients", "{}"),
    ("survivors", "survivors", "{}"),
    ("train_loss", "train loss", "{:.4f}"),
    ("test_accuracy", "test acc", "{:.4f}"),
    ("epsilon", "epsilon", "{:.3f}"),
    ("bytes_per_client", "bytes/client", "{:,}"),
    ("client_s", "client s", "{:.3f}"),
    ("aggregation_s", "aggregation s", "{:.3f}"),
)
# Shown only when some record has them (Paillier and CKKS runs): values per ciphertext,
# the encryption and decryption parts of the two phases, and the values CKKS clipped.
_OPTIONAL_COLUMNS = (
    ("packing_factor", "values/ciphertext", "{}"),
    ("encrypt_s", "encrypt s", "{:.3f}"),
    ("decrypt_s", "decrypt s", "{:.3f}"),
    ("clipped", "clipped", "{:,}"),
)


def history_table(history: Sequence[RoundRecord], markdown: bool = False) -> str:
    """The per-round records as a text (or Markdown) table.

    Parameters
    ----------
    history : sequence of RoundRecord
    markdown : bool
        A Markdown table instead of aligned plain-text columns.

    Returns
    -------
    str
        One row per record; ``-`` for a missing value, ``(aborted)`` after the survivors
        of an aborted round. Paillier and CKKS runs get more columns: the values per
        ciphertext, the seconds of encryption (per client) and decryption, and (CKKS) the
        values clipped.
    """
    markdown = check_bool(markdown, "markdown")
    if isinstance(history, (str, bytes)) or not isinstance(history, Iterable):
        raise TypeError(f"history must be a sequence of RoundRecord, got {type(history).__name__}")
    try:
        records = list(history)
    except TypeError:  # e.g. a 0-d array
        raise TypeError("history must be a sequence of RoundRecord") from None
    for i, rec in enumerate(records):
        if not isinstance(rec, RoundRecord):
            raise TypeError(f"history[{i}] must be a RoundRecord, got {type(rec).__name__}")
    columns: tuple[tuple[str, str, str], ...] = _COLUMNS
    for column in _OPTIONAL_COLUMNS:
        if any(getattr(rec, column[0]) is not None for rec in records):
            columns += (column,)
    head = [title for _, title, _ in columns]
    body = []
    for rec in records:
        row = []
        for attr, _, fmt in columns:
            value = getattr(rec, attr)
            row.append("-" if value is None else fmt.format(value))
            if attr == "survivors" and rec.aborted:
                row[-1] += " (aborted)"
        body.append(row)
    return render(head, body, markdown)


@dataclasses.dataclass(frozen=True)
class SimulationResult:
    """The final global model and the per-round history.

    Attributes
    ----------
    params : ndarray, shape (P,)
        The global model's parameters after the last round.
    model : Model
    history : list of RoundRecord
    """

    params: np.ndarray
    model: Model
    history: list[RoundRecord]

    def records(self) -> list[dict[str, Any]]:
        """The history as a list of dicts (``pandas.DataFrame(result.records())``)."""
        return [r.as_dict() for r in self.history]

    def table(self, markdown: bool = False) -> str:
        """The history as a text (or Markdown) table (:func:`history_table`)."""
        return history_table(self.history, markdown)
