"""What a TenSEAL user writes by hand: the baselines of :mod:`ppml_fast.ckks`.

A model update of D floats is cut into chunks of N/2 values (4096 at N = 8192), each
encrypted by its own ``tenseal.ckks_vector`` call and serialised, one after another on one
core; the server adds the clients' vectors one by one (TenSEAL loops over a vector's
ciphertexts in C++), multiplying each by its weight first for a weighted sum; the key
holder decrypts chunk by chunk. Nothing here is faster than TenSEAL itself allows: these
are the loops the benchmarks compare :func:`ppml_fast.ckks.encrypt`,
:func:`ppml_fast.aggregation.encrypted_fedavg` and :meth:`ppml_fast.ckks.EncryptedUpdate.
decrypt` against, on the same context and values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "chunk_vectors",
    "decrypt_loop",
    "encrypt_loop",
    "sum_loop",
    "weighted_sum_loop",
]


def _chunks(x: np.ndarray, slots: int) -> list[list[float]]:
    flat = np.asarray(x, dtype=np.float64).reshape(-1)
    return [flat[i : i + slots].tolist() for i in range(0, flat.shape[0], slots)]


def encrypt_loop(context: Any, x: np.ndarray, slots: int = 4096) -> list[bytes]:
    """``x`` encrypted chunk by chunk, each chunk its own serialised ``CKKSVector``.

    Parameters
    ----------
    context : tenseal.Context
        A CKKS context that can encrypt (public or secret key; TenSEAL picks by the
        context's encryption type) with its global scale set.
    x : ndarray
        The values, flattened in C order.
    slots : int
        Values per chunk: N/2 for the context's ring degree N.

    Returns
    -------
    list of bytes
        One serialised vector per chunk (their total length is the bytes sent).
    """
    import tenseal as ts

    return [ts.ckks_vector(context, c).serialize() for c in _chunks(x, slots)]


def chunk_vectors(context: Any, x: np.ndarray, slots: int = 4096) -> list[Any]:
    """``x`` as in-memory ``CKKSVector`` objects, one per chunk of ``slots`` values."""
    import tenseal as ts

    return [ts.ckks_vector(context, c) for c in _chunks(x, slots)]


def sum_loop(vectors: Sequence[Any]) -> Any:
    """Σ_k v_k over the clients' vectors: one out-of-place addition (a new vector for the
    result), then ``+=`` for each further client."""
    if len(vectors) == 1:
        return vectors[0].copy()
    acc = vectors[0] + vectors[1]
    for v in vectors[2:]:
        acc += v
    return acc


def weighted_sum_loop(vectors: Sequence[Any], weights: Sequence[float]) -> Any:
    """Σ_k w_k v_k over the clients' vectors: TenSEAL's ``v * w`` (a plaintext
    multiplication and a rescale) for each client, added with ``+=``."""
    acc = vectors[0] * float(weights[0])
    for v, w in zip(vectors[1:], weights[1:], strict=True):
        acc += v * float(w)
    return acc


def decrypt_loop(vectors: Sequence[Any]) -> np.ndarray:
    """The values of per-chunk vectors, decrypted one by one and joined (float64)."""
    return np.concatenate([np.asarray(v.decrypt(), dtype=np.float64) for v in vectors])
