"""Encrypted model updates: packing, parallel encryption, arithmetic, decryption, bytes.

Packing. An update (a flat array, or a list of per-layer arrays of any shapes) is
flattened in order into one float64 vector and cut into chunks of N/2 values, one CKKS
ciphertext each: ``ceil(D / (N/2))`` ciphertexts, the fewest the slots allow. The layer
shapes and the dtype are kept beside the ciphertexts, so :meth:`EncryptedUpdate.decrypt`
returns what was encrypted.

Parallel encryption. TenSEAL holds the GIL while it encrypts, so threads cannot share the
work: :func:`encrypt` cuts the chunks into one block per worker process, each worker
encrypts and serialises its block, and the parent joins the serialised blocks (TenSEAL's
vector format is a protobuf message, which concatenation merges). The workers are a
set of fresh interpreters kept for the life of the process (not forked: a TenSEAL
context's threads make ``fork`` unsafe; not ``multiprocessing``'s spawn: it re-imports the
caller's main module), or any ``concurrent.futures.Executor`` given as ``executor``.
The result is the wire form; it is deserialised only when the holder computes on it (an
aggregator), never by a client.

Arithmetic. ``+`` and ``-`` between updates, and with plaintext scalars or arrays of the
update's layout, run on the ciphertexts (TenSEAL's loops over the chunks, in C++). ``*``
and ``/`` by a plaintext scalar are kept as a public factor that decryption applies
(decryption is linear): they cost nothing, add no error and use no level. ``*`` by a
plaintext array (one weight per value) multiplies the ciphertexts and uses one level.

Security. A client's ciphertext reveals nothing of its update to anyone without the
secret key (CKKS is IND-CPA secure under RLWE at the checked parameters). The aggregator
learns the sizes (layer shapes) and any public factors and weights. Symmetric encryption
needs the secret key at every client: any client can then decrypt any other's update, so
it fits settings where the clients trust each other and only the server is untrusted.
"""

from __future__ import annotations

import json
import math
import numbers
import struct
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import Any

import numpy as np

from .._errors import EncodingOverflowError
from .._validation import (
    POSITIVE,
    as_finite_array,
    check_bool,
    check_int,
    check_scalar,
)
from . import _wire, _workers
from .context import (
    _check_context,
    _tenseal,
    context_parameters,
    has_public_key,
    worker_context_bytes,
)
from .params import CKKSParameters

__all__ = [
    "EncryptedUpdate",
    "decrypt",
    "encrypt",
    "load_update",
    "sum_updates",
]

_MAGIC = b"PPCK"
_VERSION = 1

# ---------------------------------------------------------------------------- workers


def _default_workers() -> int:
    from .. import get_num_threads

    return max(1, get_num_threads())


# ---------------------------------------------------------------------------- layout


def _layout(update: Any) -> tuple[list[np.ndarray], bool]:
    """The update's arrays (finite, real) and whether it was given as a list of layers."""
    if isinstance(update, (list, tuple)) and not all(
        isinstance(a, numbers.Number) or (isinstance(a, np.ndarray) and a.ndim == 0) for a in update
    ):
        # A list of layers; a list of plain numbers is one flat vector (as TenSEAL takes).
        if not update:
            raise ValueError("update must have at least one layer, got an empty list")
        arrays = [as_finite_array(a, f"update[{i}]") for i, a in enumerate(update)]
        dtypes = {a.dtype for a in arrays}
        if len(dtypes) > 1:
            raise TypeError(
                f"update's layers must share one dtype, got {sorted(str(d) for d in dtypes)}"
            )
        return arrays, True
    return [as_finite_array(update, "update")], False


class EncryptedUpdate:
    """A model update encrypted under CKKS: its ciphertexts, layout and public factor.

    Made by :func:`encrypt` (or :func:`load_update` from bytes); not constructed directly.

    Attributes
    ----------
    shapes : tuple of tuple of int
        The layer shapes (one entry for a flat array).
    dtype : numpy.dtype
        float32 or float64: what :meth:`decrypt` returns.
    size : int
        The number of values, the sum of the layers' sizes.
    factor : float
        A public scalar that :meth:`decrypt` multiplies the result by (the pending
        plaintext scalars of ``*`` and ``/``).
    weight : float
        The weight the client multiplied its update by before encrypting (1.0 if none);
        :func:`~ppml_fast.aggregation.encrypted_fedavg` divides the sum by the weights'
        total.
    """

    __slots__ = (
        "_context",
        "_factor",
        "_is_list",
        "_parts",
        "_rescales",
        "_shapes",
        "_vector",
        "_weight",
        "dtype",
    )

    # numpy arrays on the left of + - * defer to the reflected operators here (instead of
    # broadcasting over this object as if it were a scalar).
    __array_ufunc__ = None

    def __init__(
        self,
        context: Any,
        *,
        vector: Any = None,
        wire: bytes | list[bytes | memoryview] | None = None,
        shapes: tuple[tuple[int, ...], ...],
        is_list: bool,
        dtype: np.dtype,
        factor: float = 1.0,
        weight: float = 1.0,
        rescales: int = 0,
    ) -> None:
        self._context = context
        self._rescales = rescales
        self._vector = vector
        # The wire form as consecutive parts (the workers' blocks), joined only when sent.
        self._parts: list[bytes | memoryview] | None = (
            None if wire is None else ([wire] if isinstance(wire, bytes) else wire)
        )
        self._shapes = shapes
        self._is_list = is_list
        self.dtype = dtype
        self._factor = factor
        self._weight = weight

    # ------------------------------------------------------------------ properties
    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        return self._shapes

    @property
    def size(self) -> int:
        return sum(math.prod(s) for s in self._shapes)

    @property
    def factor(self) -> float:
        return self._factor

    @property
    def weight(self) -> float:
        return self._weight

    @property
    def context(self) -> Any:
        """The TenSEAL context the ciphertexts are linked to (None until :meth:`link`)."""
        return self._context

    @property
    def ciphertexts(self) -> int:
        """The number of CKKS ciphertexts (chunks)."""
        if self._vector is not None:
            # Every chunk but the last is full (encrypt packs them so).
            return -(-self.size // _params_of(self._context).slots)
        assert self._parts is not None
        return sum(_wire.vector_chunks(p)[1] for p in self._parts)

    @property
    def nbytes(self) -> int:
        """Bytes on the wire: the length of :meth:`serialize`'s result."""
        return len(self._header()) + sum(len(p) for p in self._wire_parts())

    def __repr__(self) -> str:
        return (
            f"EncryptedUpdate(size={self.size}, shapes={list(self._shapes)}, "
            f"dtype={self.dtype}, factor={self._factor:g}, weight={self._weight:g})"
        )

    # ------------------------------------------------------------------ plumbing
    def link(self, context: Any) -> EncryptedUpdate:
        """Attach ``context`` (e.g. the aggregator's public context) and return self."""
        _check_context(context)
        if self._vector is not None:
            self._vector.link_context(context)
        self._context = context
        return self

    def _vec(self) -> Any:
        """The TenSEAL vector, deserialised from the wire form on first use."""
        if self._vector is None:
            if self._context is None:
                raise ValueError("this EncryptedUpdate has no context: call link(context) first")
            ts = _tenseal()
            assert self._parts is not None
            try:
                self._vector = ts.ckks_vector_from(self._context, b"".join(self._parts))
            except Exception as exc:  # TenSEAL raises several types on bad input
                raise ValueError(f"the ciphertexts do not belong to this context: {exc}") from None
        return self._vector

    def _like(
        self, vector: Any, factor: float | None = None, rescales: int | None = None
    ) -> EncryptedUpdate:
        return EncryptedUpdate(
            self._context,
            vector=vector,
            shapes=self._shapes,
            is_list=self._is_list,
            dtype=self.dtype,
            factor=self._factor if factor is None else factor,
            weight=self._weight,
            rescales=self._rescales if rescales is None else rescales,
        )

    def copy(self) -> EncryptedUpdate:
        """A copy that shares the ciphertexts: no operation here modifies a vector in
        place once an update holds it (``+=`` makes a new one), so sharing is safe and
        free, where TenSEAL's own ``copy()`` serialises and reloads."""
        if self._vector is None:
            out = self._like(None)
            out._parts = self._parts
            return out
        return self._like(self._vector)

    def _flat(self, other: Any, name: str = "other") -> np.ndarray:
        """``other`` (an array, or a list of layers, of this update's layout) as one flat
        float64 vector."""
        if isinstance(other, (list, tuple)):
            arrays, _ = _layout(other)
            shapes = tuple(a.shape for a in arrays)
            if shapes != self._shapes:
                raise ValueError(
                    f"{name} must have this update's layer shapes {list(self._shapes)}, "
                    f"got {list(shapes)}"
                )
        else:
            arrays = [as_finite_array(other, name)]
            if arrays[0].size != self.size or (
                arrays[0].ndim > 1 and (arrays[0].shape,) != self._shapes
            ):
                raise ValueError(
                    f"{name} must have this update's layout {list(self._shapes)}, "
                    f"got shape {arrays[0].shape}"
                )
        return np.concatenate([a.reshape(-1) for a in arrays]).astype(np.float64)

    def _plain(self, other: Any, name: str = "other") -> list[float] | float:
        """``other`` (a scalar, or values of this update's layout) divided by the pending
        factor: what is added to the ciphertexts so that the decryption gains ``other``."""
        if self._factor == 0.0:
            raise ValueError("this update's factor is 0: adding a plaintext is undefined")
        limit = _params_of(self._context).max_encoded if self._context is not None else math.inf
        if _is_scalar(other):
            value = check_scalar(other, name) / self._factor
            if abs(value) > limit:
                raise EncodingOverflowError(
                    f"{name} over this update's factor is {value:g}, above the {limit:g} the "
                    "context holds"
                )
            return value
        flat = self._flat(other, name) / self._factor
        if flat.size and float(np.max(np.abs(flat))) > limit:
            raise EncodingOverflowError(
                f"{name} over this update's factor reaches {float(np.max(np.abs(flat))):g}, "
                f"above the {limit:g} the context holds"
            )
        values: list[float] = flat.tolist()
        return values

    def _check_peer(self, other: EncryptedUpdate) -> None:
        if other._shapes != self._shapes and (
            other.size != self.size or len(other._shapes) > 1 or len(self._shapes) > 1
        ):
            raise ValueError(
                f"updates must have one layout, got {list(self._shapes)} and {list(other._shapes)}"
            )
        if other._weight != self._weight:
            raise ValueError(
                "updates weighted by their clients must be combined by "
                "encrypted_fedavg, which divides by the weights' total"
            )

    def _aligned(self, other: EncryptedUpdate) -> tuple[Any, int]:
        """``other``'s vector expressed with this update's factor, and that vector's
        rescales."""
        self._check_peer(other)
        vec = other._vec()
        if other._factor == self._factor:
            return vec, other._rescales
        if self._factor == 0.0:
            raise ValueError("cannot combine an update whose factor is 0 with another")
        vec = _scaled(vec, other._factor / self._factor, other._rescales, self._context)
        return vec, other._rescales + 1

    def _combine(self, other: EncryptedUpdate, subtract: bool) -> EncryptedUpdate:
        """self ± other as a new update.

        TenSEAL brings two ciphertexts to one level by switching the one with the larger
        modulus down in place, even when it is the right operand of an out-of-place
        ``+``: the operand with more levels left goes on the left (its copy is switched),
        so no vector an update holds is ever modified.
        """
        self._check_peer(other)
        # A zero factor contributes nothing, and a factor of -1 relative to this one is a
        # subtraction: neither needs a ciphertext multiplication (or a level).
        if other._factor == 0.0:
            return self.copy()
        if self._factor == 0.0:
            return -other if subtract else other.copy()
        if other._factor == -self._factor:
            subtract = not subtract
            vec, other_rescales = other._vec(), other._rescales
        else:
            vec, other_rescales = self._aligned(other)
        rescales = max(self._rescales, other_rescales)
        mine = self._vec()
        if other_rescales < self._rescales:  # other's modulus is the larger: swap
            out = (vec - mine) if subtract else (vec + mine)
            return self._like(out, factor=-self._factor if subtract else None, rescales=rescales)
        out = (mine - vec) if subtract else (mine + vec)
        return self._like(out, rescales=rescales)

    # ------------------------------------------------------------------ arithmetic
    def __add__(self, other: Any) -> EncryptedUpdate:
        if isinstance(other, EncryptedUpdate):
            return self._combine(other, subtract=False)
        return self._like(self._vec() + self._plain(other))

    def __radd__(self, other: Any) -> EncryptedUpdate:
        # sum() starts from 0: 0 + update is the update.
        if _is_scalar(other) and other == 0:
            return self.copy()
        return self.__add__(other)

    def __iadd__(self, other: Any) -> EncryptedUpdate:
        # A new vector, not an in-place one: copies may share the old one.
        return self.__add__(other)

    def __neg__(self) -> EncryptedUpdate:
        out = self.copy()
        out._factor = -self._factor
        return out

    def __sub__(self, other: Any) -> EncryptedUpdate:
        if isinstance(other, EncryptedUpdate):
            return self._combine(other, subtract=True)
        return self._like(self._vec() - self._plain(other))

    def __rsub__(self, other: Any) -> EncryptedUpdate:
        return (-self).__add__(other)

    def __isub__(self, other: Any) -> EncryptedUpdate:
        return self.__sub__(other)

    def __mul__(self, other: Any) -> EncryptedUpdate:
        if isinstance(other, EncryptedUpdate):
            raise TypeError("EncryptedUpdate * EncryptedUpdate is not supported (plaintexts only)")
        if _is_scalar(other):
            out = self.copy()
            out._factor = self._factor * check_scalar(other, "other")
            return out
        q_over_scale = _rescale_correction(self._context, self._rescales)
        values = (self._flat(other) * q_over_scale).tolist()
        try:
            vec = self._vec().mul(values)
        except ValueError as exc:
            raise ValueError(
                f"multiplying by a plaintext array needs a multiplicative level: {exc}"
            ) from None
        return self._like(vec, rescales=self._rescales + 1)

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> EncryptedUpdate:
        d = check_scalar(other, "divisor")
        if d == 0:
            raise ZeroDivisionError("division of an EncryptedUpdate by zero")
        out = self.copy()
        out._factor = self._factor / d
        return out

    # ------------------------------------------------------------------ out
    def decrypt(self, secret_context: Any = None) -> np.ndarray | list[np.ndarray]:
        """The plaintext update, in the shapes and dtype it was encrypted with.

        Parameters
        ----------
        secret_context : tenseal.Context, optional
            A context that holds the secret key, when the linked one does not (the
            aggregator's public context).
        """
        vec = self._vec()
        if secret_context is not None:
            _check_context(secret_context, "secret_context")
            if not secret_context.is_private():
                raise ValueError("secret_context must hold the secret key")
            values = vec.decrypt(secret_context.secret_key())
        else:
            if self._context is None or not self._context.is_private():
                raise ValueError(
                    "decryption needs the secret key: this update's context has none "
                    "(pass secret_context=)"
                )
            values = vec.decrypt()
        flat = np.asarray(values, dtype=np.float64)
        if self._factor != 1.0:
            flat *= self._factor
        out = []
        start = 0
        for shape in self._shapes:
            n = math.prod(shape)
            out.append(flat[start : start + n].reshape(shape).astype(self.dtype, copy=False))
            start += n
        return out if self._is_list else out[0]

    def _header(self) -> bytes:
        header = json.dumps(
            {
                "shapes": [list(s) for s in self._shapes],
                "list": self._is_list,
                "dtype": self.dtype.str,
                "factor": self._factor.hex(),
                "weight": self._weight.hex(),
                "rescales": self._rescales,
            },
            separators=(",", ":"),
        ).encode()
        return _MAGIC + struct.pack("<HI", _VERSION, len(header)) + header

    def _wire_parts(self) -> list[bytes | memoryview]:
        if self._parts is None:
            self._parts = [bytes(self._vec().serialize())]
        return self._parts

    def serialize(self) -> bytes:
        """The update as bytes: a small header (layout, dtype, factor, weight) and the
        TenSEAL ciphertexts. No key material. :func:`load_update` reads it back."""
        return b"".join((self._header(), *self._wire_parts()))

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        # Pickled without the context (TenSEAL contexts do not pickle): link() after.
        return (load_update, (self.serialize(),))


def _is_scalar(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(
        x, (bool, np.bool_)
    )


def _rescale_correction(context: Any, rescales: int) -> float:
    """q/Δ for the prime q that the next rescale of a ciphertext drops.

    TenSEAL rescales after each plaintext multiplication (dividing by q) and then labels
    the ciphertext with the context's scale Δ, although its true scale is Δ²/q: values
    come out multiplied by Δ/q (1 ± 1e-7 or so for 40-bit primes). Multiplying the
    plaintext by q/Δ first cancels it exactly.
    """
    if context is None:
        raise ValueError("this EncryptedUpdate has no context: call link(context) first")
    if not context.auto_rescale:
        raise ValueError("the context must have auto_rescale on (TenSEAL's default)")
    params = _params_of(context)
    data_primes = params.primes[:-1]
    if rescales >= len(data_primes) - 1:
        raise ValueError(
            "multiplying by a plaintext needs a multiplicative level, and this ciphertext "
            f"has none left (coeff_mod_bit_sizes {list(params.coeff_mod_bit_sizes)}: "
            f"{params.levels} levels, {rescales} used; the addition-only preset has none)"
        )
    return float(data_primes[-1 - rescales] / params.scale)


def _scaled(vec: Any, factor: float, rescales: int, context: Any) -> Any:
    """``vec`` times a plaintext scalar, as a ciphertext operation (one level)."""
    return vec * (factor * _rescale_correction(context, rescales))


def load_update(data: bytes, context: Any = None) -> EncryptedUpdate:
    """An :class:`EncryptedUpdate` from :meth:`EncryptedUpdate.serialize`'s bytes.

    ``context`` (e.g. the aggregator's public context) is linked at once; without it, call
    :meth:`EncryptedUpdate.link` before computing. The ciphertexts are deserialised only
    when first used.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < 10 or data[:4] != _MAGIC:
        raise ValueError("data is not a serialised EncryptedUpdate (bad magic)")
    version, hlen = struct.unpack_from("<HI", data, 4)
    if version != _VERSION:
        raise ValueError(f"data has format version {version}, this library reads {_VERSION}")
    try:
        header = json.loads(data[10 : 10 + hlen])
        shapes = tuple(tuple(int(d) for d in s) for s in header["shapes"])
        dtype = np.dtype(header["dtype"])
        factor = float.fromhex(header["factor"])
        weight = float.fromhex(header["weight"])
        is_list = bool(header["list"])
        rescales = int(header.get("rescales", 0))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"data is not a serialised EncryptedUpdate (bad header: {exc})") from None
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)) or not shapes:
        raise ValueError("data is not a serialised EncryptedUpdate (bad layout)")
    if any(d < 0 for s in shapes for d in s):
        raise ValueError("data is not a serialised EncryptedUpdate (a negative dimension)")
    if not math.isfinite(factor) or not (math.isfinite(weight) and weight > 0) or rescales < 0:
        raise ValueError("data is not a serialised EncryptedUpdate (bad factor, weight or level)")
    wire = data[10 + hlen :]
    sizes, count = _wire.vector_chunks(wire)
    if count == 0 or len(sizes) != count or sum(sizes) != sum(math.prod(s) for s in shapes):
        raise ValueError("data is not a serialised EncryptedUpdate (sizes do not match)")
    out = EncryptedUpdate(
        None,
        wire=wire,
        shapes=shapes,
        is_list=is_list,
        dtype=dtype,
        factor=factor,
        weight=weight,
        rescales=rescales,
    )
    if context is not None:
        out.link(context)
    return out


def encrypt(
    context: Any,
    update: Any,
    *,
    symmetric: bool | None = None,
    weight: float | None = None,
    workers: int | None = None,
    executor: Executor | None = None,
) -> EncryptedUpdate:
    """Encrypt a model update into as few CKKS ciphertexts as the slots allow, on all cores.

    Parameters
    ----------
    context : tenseal.Context
        A CKKS context with the public key (asymmetric) or the secret key (symmetric).
    update : array_like or list of array_like
        A flat array, or a list of per-layer arrays of any shapes; float32 or float64
        (integers become float64). Every value must be finite and |value·weight| at most
        the parameters' :attr:`~ppml_fast.ckks.CKKSParameters.max_encoded`.
    symmetric : bool, optional
        Encrypt with the secret key into seeded ciphertexts (half the bytes). Default:
        True for a context made with ``symmetric=True``, else False.
    weight : float, optional
        Multiply the update by ``weight`` (e.g. the client's sample count) before
        encrypting, and record it: weighted FedAvg then needs additions only.
    workers : int, optional
        Worker processes (default: :func:`ppml_fast.get_num_threads`); 1 encrypts in the
        calling process. Updates of fewer chunks than workers use fewer.
    executor : concurrent.futures.Executor, optional
        Run the blocks on this executor instead (a process pool or a Dask client's
        executor; a thread pool gains nothing, TenSEAL holds the GIL).

    Returns
    -------
    EncryptedUpdate
        In its wire form; :attr:`EncryptedUpdate.nbytes` is the bytes a client sends.

    Raises
    ------
    TypeError, ValueError
        A bad argument, NaN or inf in the update, or a context that cannot encrypt.
    EncodingOverflowError
        A value beyond what the parameters hold.
    """
    ctx = _check_context(context)
    params = _params_of(ctx)
    if symmetric is None:
        sym = not has_public_key(ctx)
    else:
        sym = check_bool(symmetric, "symmetric")
    if sym and not ctx.is_private():
        raise ValueError("symmetric=True needs a context that holds the secret key")
    if not sym and not has_public_key(ctx):
        raise ValueError(
            "this context has no public key (it was made with symmetric=True): "
            "encrypt with symmetric=True"
        )
    w = 1.0 if weight is None else check_scalar(weight, "weight", POSITIVE)
    n_workers = _default_workers() if workers is None else check_int(workers, "workers", 1)
    if executor is not None and not isinstance(executor, Executor):
        raise TypeError(
            f"executor must be a concurrent.futures.Executor, got {type(executor).__name__}"
        )
    arrays, is_list = _layout(update)
    dtype = arrays[0].dtype
    flat = np.concatenate([a.reshape(-1) for a in arrays]).astype(np.float64)
    if flat.size == 0:
        raise ValueError("update must have at least one value, got 0")
    if w != 1.0:
        flat *= w
    peak = float(np.max(np.abs(flat)))
    if peak > params.max_encoded:
        raise EncodingOverflowError(
            f"update's largest |value| (times weight) is {peak:g}, above the "
            f"{params.max_encoded:g} that one plaintext of the context can encode"
        )
    slots = params.slots
    n_chunks = -(-flat.size // slots)
    blocks = min(n_workers, n_chunks) if executor is None else max(1, min(n_chunks, 64))
    ctx_bytes = worker_context_bytes(ctx, sym) if sym or blocks > 1 else b""
    scale = params.scale
    wire: list[bytes | memoryview]
    if executor is not None:
        bounds = [round(i * n_chunks / blocks) * slots for i in range(blocks + 1)]
        pieces = [flat[bounds[i] : bounds[i + 1]] for i in range(blocks)]
        # An executor's workers (a Dask cluster's, say) keep no context, and so no secret
        # key, after the call (encrypt_block caches nothing).
        args = [(ctx_bytes, p, slots, scale, sym) for p in pieces if p.size]
        futures = [executor.submit(_wire.encrypt_block, *a) for a in args]
        wire = [f.result() for f in futures]
    else:
        # The caller's own share: the context itself for public-key encryption.
        engine = _wire.make_engine(ctx_bytes, True) if sym else ctx

        def local(i: int) -> bytes:
            return _wire.encrypt_chunk(engine, flat, i, slots, scale, sym)

        if blocks <= 1:
            wire = [local(i) for i in range(n_chunks)]
        else:
            wire = _workers.encrypt_chunks(
                (ctx_bytes, flat, slots, scale, sym), n_chunks, blocks, local
            )
    return EncryptedUpdate(
        ctx,
        wire=wire,
        shapes=tuple(a.shape for a in arrays),
        is_list=is_list,
        dtype=dtype,
        weight=w,
    )


def _params_of(ctx: Any) -> CKKSParameters:
    """The context's checked parameters, cached on it (at the security it was made for:
    recorded by make_context, else 128, which TenSEAL itself enforces)."""
    params = getattr(ctx, "_ppml_fast_params", None)
    if params is None:
        params = context_parameters(ctx, security=int(getattr(ctx, "_ppml_fast_security", 128)))
        try:
            ctx._ppml_fast_params = params
        except AttributeError:  # pragma: no cover - a slotted subclass
            pass
    return params


def decrypt(update: EncryptedUpdate, secret_context: Any = None) -> np.ndarray | list[np.ndarray]:
    """:meth:`EncryptedUpdate.decrypt` as a function."""
    if not isinstance(update, EncryptedUpdate):
        raise TypeError(f"update must be an EncryptedUpdate, got {type(update).__name__}")
    return update.decrypt(secret_context)


def sum_updates(
    updates: Sequence[EncryptedUpdate], weights: Sequence[float] | np.ndarray | None = None
) -> EncryptedUpdate:
    """Σ_k w_k · update_k over clients (all weights 1 when ``weights`` is None).

    Updates whose effective weight (weight times factor) is the same are added first; each
    distinct weight then costs one plaintext multiplication of their sum, and when every
    weight is the same the result is the plain sum with a public factor: additions only,
    no level used. Distinct weights need a context with a multiplicative level.
    """
    ups = _check_updates(updates)
    if any(u._weight != ups[0]._weight for u in ups):
        raise ValueError(
            "updates must share one client weight (encrypt(..., weight=)) to be summed; "
            "encrypted_fedavg averages updates the clients weighted differently"
        )
    if weights is None:
        ws = [1.0] * len(ups)
    else:
        arr = as_finite_array(weights, "weights", np.float64)
        if arr.ndim != 1 or arr.shape[0] != len(ups):
            raise ValueError(
                f"weights must have one entry per update ({len(ups)}), got shape {arr.shape}"
            )
        ws = arr.tolist()
    groups: dict[float, list[EncryptedUpdate]] = {}
    for u, wk in zip(ups, ws, strict=True):
        eff = wk * u._factor
        if eff != 0.0:
            groups.setdefault(eff, []).append(u)
    if not groups:
        out = ups[0] * 0.0
        return out
    # The largest group keeps its weight as the public factor; the others are multiplied
    # by their weight relative to it (one ciphertext multiplication per distinct weight).
    order = sorted(groups, key=lambda g: -len(groups[g]))
    ref = order[0]
    # A lone reference update's vector is shared, never modified: the first addition to
    # it is out of place (a new vector), the later ones in place.
    owned = len(groups[ref]) > 1
    acc, rescales = _group_sum(groups[ref])
    for g in order[1:]:
        part, r = _group_sum(groups[g])
        if g == -ref:  # a subtraction, no multiplication
            if r < rescales:  # part's modulus is the larger: it goes on the left
                acc = (part - acc).neg_()
            elif owned:
                acc.sub_(part)
            else:
                acc = acc - part
            owned = True
            rescales = max(rescales, r)
            continue
        try:
            scaled = _scaled(part, g / ref, r, ups[0]._context)
        except ValueError as exc:
            raise ValueError(
                f"weights: distinct weights need a ciphertext multiplication: {exc}"
            ) from None
        if owned:
            acc.add_(scaled)
        else:
            acc = acc + scaled
            owned = True
        rescales = max(rescales, r + 1)
    first = ups[0]
    return EncryptedUpdate(
        first._context,
        vector=acc,
        shapes=first._shapes,
        is_list=first._is_list,
        dtype=first.dtype,
        factor=ref,
        weight=first._weight,
        rescales=rescales,
    )


def _group_sum(members: list[EncryptedUpdate]) -> tuple[Any, int]:
    """The sum of the members' vectors and its rescales: a new vector, or a lone member's
    own (shared: the caller never modifies it in place)."""
    rescales = max(u._rescales for u in members)
    if len(members) == 1:
        return members[0]._vec(), rescales
    # Most levels first: TenSEAL switches the larger-modulus operand of an addition down
    # in place, and that must be the sum being built, never a member's own vector.
    members = sorted(members, key=lambda u: u._rescales)
    acc = members[0]._vec() + members[1]._vec()
    for u in members[2:]:
        acc.add_(u._vec())
    return acc, rescales


def _check_updates(updates: Any, name: str = "updates") -> list[EncryptedUpdate]:
    if isinstance(updates, EncryptedUpdate) or not isinstance(updates, Sequence):
        raise TypeError(
            f"{name} must be a sequence of EncryptedUpdate, got {type(updates).__name__}"
        )
    ups = list(updates)
    if not ups:
        raise ValueError(f"{name} must have at least one update, got 0")
    for i, u in enumerate(ups):
        if not isinstance(u, EncryptedUpdate):
            raise TypeError(f"{name}[{i}] must be an EncryptedUpdate, got {type(u).__name__}")
    first = ups[0]
    for i, u in enumerate(ups[1:], 1):
        if u._shapes != first._shapes or u.dtype != first.dtype:
            raise ValueError(
                f"{name} must share one layout: {name}[0] is {list(first._shapes)} "
                f"{first.dtype}, {name}[{i}] is {list(u._shapes)} {u.dtype}"
            )
    return ups
