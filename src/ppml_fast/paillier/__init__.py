"""Paillier homomorphic encryption (a package being split into parts; see array.py)."""

from .array import (
    DEFAULT_KEYSIZE,
    EncodedNumber,
    EncodingOverflowError,
    EncryptedArray,
    EncryptedNumber,
    KeyMismatchError,
    PaillierPrivateKey,
    PaillierPrivateKeyring,
    PaillierPublicKey,
    generate_paillier_keypair,
)

__all__ = [
    "DEFAULT_KEYSIZE",
    "EncodedNumber",
    "EncodingOverflowError",
    "EncryptedArray",
    "EncryptedNumber",
    "KeyMismatchError",
    "PaillierPrivateKey",
    "PaillierPrivateKeyring",
    "PaillierPublicKey",
    "generate_paillier_keypair",
]
