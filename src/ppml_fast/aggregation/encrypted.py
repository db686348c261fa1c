"""FedAvg on CKKS-encrypted updates (:mod:`ppml_fast.ckks`).

The server holds the aggregator's public context and the clients' encrypted updates; it
computes Σ_k w_k x_k / Σ_k w_k without decrypting, and the key holder decrypts the
average. Two ways to weight:

- the clients weight their own updates (``ckks.encrypt(ctx, x, weight=n_k)``): the server
  only adds ciphertexts, and divides by the public total of the weights as a public factor
  (no ciphertext multiplication, no level used, no extra error);
- the server weights them (``weights=``): each distinct weight costs one plaintext
  multiplication of the sum of the updates that share it, and needs a context with a
  multiplicative level.

The server learns the weights (they are public here, as in plaintext FedAvg) and the
layout; not the updates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._validation import as_finite_array

if TYPE_CHECKING:
    from ..ckks import EncryptedUpdate

__all__ = ["encrypted_fedavg"]


def encrypted_fedavg(
    encrypted_updates: Sequence[EncryptedUpdate],
    weights: Sequence[float] | np.ndarray | None = None,
) -> EncryptedUpdate:
    """The weighted average Σ_k w_k x_k / Σ_k w_k of encrypted updates, still encrypted.

    Parameters
    ----------
    encrypted_updates : sequence of ckks.EncryptedUpdate
        One per client, one layout, linked to one context (the aggregator's public one
        suffices).
    weights : array_like, optional
        Non-negative weights (e.g. sample counts), one per update, not all zero. Default:
        the weights the clients encrypted with (``encrypt(..., weight=)``), or equal
        weights. Giving both is an error.

    Returns
    -------
    ckks.EncryptedUpdate
        The encrypted average (its ``decrypt`` gives the plaintext FedAvg within the
        stated precision: :func:`ppml_fast.ckks.error_bound`).
    """
    from ..ckks import update as _update

    ups = _update._check_updates(encrypted_updates, "encrypted_updates")
    client_weights = [u.weight for u in ups]
    preweighted = any(w != 1.0 for w in client_weights)
    if weights is not None:
        if preweighted:
            raise ValueError(
                "weights must be None for updates the clients weighted themselves "
                "(encrypt(..., weight=)): the average divides by their total"
            )
        w = as_finite_array(weights, "weights", np.float64)
        if w.ndim != 1 or w.shape[0] != len(ups):
            raise ValueError(
                f"weights must have one entry per update ({len(ups)}), got shape {w.shape}"
            )
        if (w < 0).any():
            raise ValueError("weights must be >= 0")
        total = float(w.sum())
        if total <= 0:
            raise ValueError("weights must not all be 0")
        summed = _update.sum_updates(ups, w)
    else:
        total = float(sum(client_weights))
        summed = _update.sum_updates(_as_unweighted(ups))
    out: Any = summed / total  # a public factor: no ciphertext operation
    out._weight = 1.0
    return out  # type: ignore[no-any-return]


def _as_unweighted(ups: list[EncryptedUpdate]) -> list[EncryptedUpdate]:
    """The updates with their recorded client weights cleared (the values already carry
    them), so they add as one group. The copies share the ciphertexts."""
    out = []
    for u in ups:
        if u.weight != 1.0:
            u = u.copy()
            u._weight = 1.0
        out.append(u)
    return out
