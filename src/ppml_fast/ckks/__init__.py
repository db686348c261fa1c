"""CKKS homomorphic encryption for federated learning, on TenSEAL.

CKKS (Cheon, Kim, Kim & Song, 2017) encrypts vectors of real numbers so that sums and
products by plaintexts can be computed on the ciphertexts; decryption returns the result
with a small error. TenSEAL (on Microsoft SEAL) is the engine: nothing here implements
lattice cryptography. What this package adds is what a TenSEAL user otherwise writes by
hand for federated learning, done fast and checked:

- contexts from checked parameters (:func:`make_context`; the HomomorphicEncryption.org
  security tables, 128-bit by default; a context below the level is refused), the
  addition-only preset sized for a number of clients and a precision
  (:func:`aggregation_parameters`), the general preset (N = 8192, scale 2^40), and the
  key split made explicit (:func:`public_context` for the aggregator);
- :func:`encrypt` of a flat array or a list of per-layer arrays into the fewest
  ciphertexts, on all cores (worker processes; TenSEAL holds the GIL), with seeded
  symmetric encryption that halves the bytes;
- :class:`EncryptedUpdate` with ``+``, ``-``, ``*`` and ``/`` by plaintext scalars (kept as
  a public factor: free and exact), ``*`` by plaintext arrays, :func:`sum_updates` over
  clients with per-client weights, :meth:`~EncryptedUpdate.decrypt` back to the original
  shapes and dtype, and bytes with their count (:meth:`~EncryptedUpdate.serialize`,
  :func:`load_update`);
- the error model (:func:`error_std`, :func:`error_bound`): the decryption error of an
  aggregate, bounded from the parameters.

:func:`ppml_fast.aggregation.encrypted_fedavg` is the server's weighted FedAvg on these
updates, and the simulation's ``"ckks"`` aggregator runs it per round.

TenSEAL is an optional dependency: ``pip install 'ppml_fast[ckks]'``.
"""

from __future__ import annotations

from .context import (
    context_parameters,
    load_context,
    make_context,
    public_context,
    serialize_context,
)
from .params import (
    ERROR_STD,
    MAX_COEFF_BITS,
    CKKSParameters,
    aggregation_parameters,
    error_bound,
    error_std,
    general_parameters,
    max_coeff_bits,
)
from .update import EncryptedUpdate, decrypt, encrypt, load_update, sum_updates

__all__ = [
    "ERROR_STD",
    "MAX_COEFF_BITS",
    "CKKSParameters",
    "EncryptedUpdate",
    "aggregation_parameters",
    "context_parameters",
    "decrypt",
    "encrypt",
    "error_bound",
    "error_std",
    "general_parameters",
    "load_context",
    "load_update",
    "make_context",
    "max_coeff_bits",
    "public_context",
    "serialize_context",
    "sum_updates",
]
