"""TenSEAL contexts from checked parameters, and who holds which key.

Key roles
---------
- The **key holder** makes the context with :func:`make_context`; it holds the secret key
  and is the only party that can decrypt. In cross-silo FL this is the clients (all of
  them share one key, made by one and sent to the others over a secure channel) or a key
  server that never sees ciphertexts of individual clients.
- The **aggregator** receives :func:`public_context` (a context without the secret key)
  and the clients' ciphertexts. It can add them and multiply them by plaintexts; it
  cannot decrypt. In the symmetric setting (``symmetric=True``, the clients hold the
  secret key and encrypt with it, which halves the ciphertexts) the public context has no
  encryption key at all: the aggregator can only evaluate.
- A client that only encrypts (asymmetric setting) may also get the public context: it
  holds the public key.

Security
--------
The parameters are checked against the HomomorphicEncryption.org standard before TenSEAL
sees them (:class:`~ppml_fast.ckks.params.CKKSParameters`); a context below the requested
level is refused. A context made elsewhere is checked by :func:`context_parameters`.
CKKS decryption results reveal the error term, and with it information about the secret
key, to whoever sees them (Li & Micciancio, 2021): a decrypted aggregate given to
untrusted parties should be rounded to its stated precision, or have noise added, first.
"""

from __future__ import annotations

import threading
from typing import Any

from .._validation import POSITIVE, check_bool, check_int, check_scalar
from . import _wire
from .params import CKKSParameters, general_parameters

__all__ = [
    "context_parameters",
    "load_context",
    "make_context",
    "public_context",
    "serialize_context",
]


def _tenseal() -> Any:
    try:
        import tenseal
    except ImportError as exc:  # pragma: no cover - exercised without the extra
        raise ImportError(
            "ppml_fast.ckks needs TenSEAL: pip install 'ppml_fast[ckks]' (tenseal>=0.3.18)"
        ) from exc
    return tenseal


def make_context(
    params: CKKSParameters | str = "general",
    *,
    poly_modulus_degree: int | None = None,
    coeff_mod_bit_sizes: tuple[int, ...] | list[int] | None = None,
    scale: float | None = None,
    security: int = 128,
    galois_keys: bool | None = None,
    symmetric: bool = False,
    n_threads: int | None = None,
) -> Any:
    """A TenSEAL CKKS context (``tenseal.Context``) with the secret key, from checked
    parameters.

    Parameters
    ----------
    params : CKKSParameters or {"general"}
        A parameter set (e.g. from :func:`~ppml_fast.ckks.aggregation_parameters`, the
        addition-only preset), or ``"general"``: N = 8192, primes [60, 40, 40, 60], scale
        2^40, Galois keys. Ignored where ``poly_modulus_degree`` and
        ``coeff_mod_bit_sizes`` are given.
    poly_modulus_degree, coeff_mod_bit_sizes, scale
        Explicit parameters, as for ``tenseal.context`` (``scale`` defaults to 2^40).
    security : {128, 192, 256}
        The level the parameters must reach; a context below it is refused.
    galois_keys : bool, optional
        Generate Galois (rotation) keys; default: the parameter set's choice. They are
        large (tens of MB at N = 8192) and aggregation never needs them.
    symmetric : bool
        Secret-key encryption only (no public key): the clients hold the secret key, and
        their ciphertexts are seeded, half the bytes of public-key ones.
    n_threads : int, optional
        TenSEAL's thread count for its own parallel operations.

    Returns
    -------
    tenseal.Context
        The key holder's context; :func:`public_context` makes the aggregator's.

    Raises
    ------
    ValueError
        Parameters below ``security`` or otherwise invalid (the message names the
        parameter and the bound).
    """
    ts = _tenseal()
    check_int(security, "security")
    if scale is not None:
        scale = check_scalar(scale, "scale", POSITIVE)
    if (isinstance(params, str) and params != "general") or not isinstance(
        params, (str, CKKSParameters)
    ):
        raise ValueError(f"params must be a CKKSParameters or 'general', got {params!r}")
    if poly_modulus_degree is not None or coeff_mod_bit_sizes is not None:
        if poly_modulus_degree is None or coeff_mod_bit_sizes is None:
            raise ValueError("poly_modulus_degree and coeff_mod_bit_sizes must be given together")
        p = CKKSParameters(
            poly_modulus_degree,
            coeff_mod_bit_sizes,  # type: ignore[arg-type]
            2.0**40 if scale is None else scale,
            security=security,
            galois_keys=False if galois_keys is None else galois_keys,
        )
    elif isinstance(params, CKKSParameters):
        p = params
        if p.security < security:
            p = CKKSParameters(
                p.poly_modulus_degree, p.coeff_mod_bit_sizes, p.scale, security, p.galois_keys
            )
    elif params == "general":
        p = general_parameters(security)
    else:
        raise ValueError(f"params must be a CKKSParameters or 'general', got {params!r}")
    if scale is not None and p.scale != scale:
        p = CKKSParameters(
            p.poly_modulus_degree, p.coeff_mod_bit_sizes, scale, p.security, p.galois_keys
        )
    want_galois = p.galois_keys if galois_keys is None else check_bool(galois_keys, "galois_keys")
    sym = check_bool(symmetric, "symmetric")
    kwargs: dict[str, Any] = {}
    if sym:
        kwargs["encryption_type"] = ts.ENCRYPTION_TYPE.SYMMETRIC
    if n_threads is not None:
        kwargs["n_threads"] = check_int(n_threads, "n_threads", minimum=1, maximum=1024)
    try:
        ctx = ts.context(
            ts.SCHEME_TYPE.CKKS,
            poly_modulus_degree=p.poly_modulus_degree,
            coeff_mod_bit_sizes=list(p.coeff_mod_bit_sizes),
            **kwargs,
        )
    except (RuntimeError, ValueError) as exc:
        raise ValueError(
            f"coeff_mod_bit_sizes {list(p.coeff_mod_bit_sizes)} cannot be used with "
            f"poly_modulus_degree={p.poly_modulus_degree}: {exc}"
        ) from None
    ctx.global_scale = p.scale
    ctx._ppml_fast_security = p.security
    if want_galois:
        ctx.generate_galois_keys()
    return ctx


def _check_context(context: Any, name: str = "context") -> Any:
    ts = _tenseal()
    if not isinstance(context, ts.Context):
        raise TypeError(f"{name} must be a tenseal.Context, got {type(context).__name__}")
    return context


def context_parameters(context: Any, *, security: int = 128) -> CKKSParameters:
    """The parameters of a TenSEAL CKKS context, checked at ``security`` bits.

    Raises ``ValueError`` for a context below the level (e.g. one made with a custom
    modulus elsewhere) or a BFV context.
    """
    _check_context(context)
    import tenseal.sealapi as sa

    raw = _wire.context_part(
        context.serialize(save_public_key=False, save_galois_keys=False, save_relin_keys=False), 1
    )
    parms = sa.EncryptionParameters(sa.SCHEME_TYPE.CKKS)
    _wire.load_bytes(parms.load, raw)
    if parms.scheme() != sa.SCHEME_TYPE.CKKS:
        raise ValueError("context must be a CKKS context, got another scheme")
    moduli = parms.coeff_modulus()
    bits = tuple(m.bit_count() for m in moduli)
    scale = context.global_scale if _has_scale(context) else 1.0
    return CKKSParameters(
        parms.poly_modulus_degree(),
        bits,
        scale,
        security=security,
        galois_keys=context.has_galois_keys(),
        primes=tuple(m.value() for m in moduli),
    )


def _has_scale(context: Any) -> bool:
    try:
        context.global_scale  # noqa: B018 - TenSEAL raises when no scale was set
    except ValueError:
        return False
    return True


def has_public_key(context: Any) -> bool:
    """Whether ``context`` holds a public key (TenSEAL raises for symmetric contexts)."""
    try:
        return bool(context.has_public_key())
    except ValueError:
        return False


def public_context(context: Any) -> Any:
    """A copy of ``context`` without the secret key: what the aggregator receives.

    The copy keeps the public key (asymmetric contexts), the relinearisation and Galois
    keys and the scale; it can evaluate but not decrypt. ``context`` is unchanged.
    """
    _check_context(context)
    if context.is_private() and not has_public_key(context):
        # TenSEAL refuses make_context_public for symmetric contexts: reload the
        # serialisation without the secret key instead.
        ctx = _tenseal().context_from(serialize_context(context))
        ctx._ppml_fast_security = getattr(context, "_ppml_fast_security", 128)
        return ctx
    ctx = context.copy()
    if ctx.is_private():
        ctx.make_context_public()
    ctx._ppml_fast_security = getattr(context, "_ppml_fast_security", 128)
    return ctx


def serialize_context(context: Any, *, secret_key: bool = False, galois_keys: bool = True) -> bytes:
    """``context`` as bytes, without the secret key unless ``secret_key`` is true.

    The bytes for an aggregator are ``serialize_context(ctx)``; a secret key is only ever
    sent to another key holder, over a secure channel.
    """
    _check_context(context)
    sk = check_bool(secret_key, "secret_key")
    if sk and not context.is_private():
        raise ValueError("secret_key=True needs a context that holds the secret key")
    return bytes(
        context.serialize(
            save_public_key=has_public_key(context),
            save_secret_key=sk,
            save_galois_keys=check_bool(galois_keys, "galois_keys") and context.has_galois_keys(),
            save_relin_keys=context.has_relin_keys(),
        )
    )


def load_context(data: bytes, *, security: int = 128) -> Any:
    """A TenSEAL context from :func:`serialize_context`'s bytes, checked at ``security``."""
    ts = _tenseal()
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    try:
        ctx = ts.context_from(bytes(data))
    except Exception as exc:  # TenSEAL raises several types on malformed input
        raise ValueError(f"data is not a serialised TenSEAL context: {exc}") from None
    context_parameters(ctx, security=security)
    ctx._ppml_fast_security = security  # encrypt() re-checks at this level
    return ctx


_worker_bytes_lock = threading.Lock()


def worker_context_bytes(context: Any, symmetric: bool) -> bytes:
    """The smallest serialisation of ``context`` that can encrypt: its public key, or its
    secret key for seeded symmetric encryption (no Galois or relinearisation keys).

    The public one is cached on the context object; the secret one is made afresh each
    time, so no copy of the key outlives the call (Python bytes cannot be wiped).
    """
    if symmetric:
        return bytes(
            context.serialize(
                save_public_key=False,
                save_secret_key=True,
                save_galois_keys=False,
                save_relin_keys=False,
            )
        )
    with _worker_bytes_lock:
        cached = getattr(context, "_ppml_fast_public_bytes", None)
        if cached is None:
            cached = bytes(
                context.serialize(
                    save_public_key=True,
                    save_secret_key=False,
                    save_galois_keys=False,
                    save_relin_keys=False,
                )
            )
            try:
                context._ppml_fast_public_bytes = cached
            except AttributeError:  # pragma: no cover - a slotted subclass
                pass
        return bytes(cached)
