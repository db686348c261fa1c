"""One vocabulary of argument checks for every public function.

Messages name the parameter and the bound, e.g. ``epsilon must be > 0, got -1.0``.
Wrong types raise ``TypeError``; wrong values, shapes or layouts raise ``ValueError``.
Native kernels never validate: the public wrappers call these first.
"""

from __future__ import annotations

import math
import numbers
import operator
import os
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

# A constraint is (predicate on a float, description of the bound).
Constraint = tuple[Callable[[float], bool], str]

POSITIVE: Constraint = (lambda x: x > 0, "> 0")
NON_NEGATIVE: Constraint = (lambda x: x >= 0, ">= 0")
PROBABILITY: Constraint = (lambda x: 0 <= x <= 1, "in [0, 1]")
OPEN_UNIT: Constraint = (lambda x: 0 < x < 1, "in (0, 1)")
HALF_OPEN_UNIT: Constraint = (lambda x: 0 <= x < 1, "in [0, 1)")
#: A sampling rate or fraction: more than nothing, at most everything.
RATE: Constraint = (lambda x: 0 < x <= 1, "in (0, 1]")
ANY: Constraint = (lambda x: True, "finite")

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_scalar(value: Any, name: str, constraint: Constraint = ANY) -> float:
    """Return ``value`` as a finite Python float that satisfies ``constraint``.

    Accepts Python and numpy real numbers (and 0-d arrays); rejects bool, complex,
    strings, NaN and infinities.
    """
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite, got {x}")
    ok, bound = constraint
    if not ok(x):
        raise ValueError(f"{name} must be {bound}, got {x}")
    return x


def check_int(value: Any, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as a Python int (numpy integers accepted, bool rejected), in
    ``[minimum, maximum]`` (either bound optional)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int, got bool")
    try:
        n = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}") from None
    if minimum is not None and n < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {n}")
    if maximum is not None and n > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {n}")
    return n


def check_rational(value: Any, name: str, *, allow_zero: bool = False) -> Fraction:
    """Return ``value`` as an exact ``Fraction`` (floats convert exactly, not by rounding).

    Accepts int, float, ``Fraction`` and numpy scalars; the result must be finite and
    positive (or zero when ``allow_zero``).
    """
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number or Fraction, got {type(value).__name__}")
    if isinstance(value, numbers.Rational):
        q = Fraction(int(value.numerator), int(value.denominator))
    else:
        x = float(value)
        if not math.isfinite(x):
            raise ValueError(f"{name} must be finite, got {x}")
        q = Fraction(x)
    if q < 0 or (q == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {show(q)}")
    return q


def show(q: Fraction) -> float | str:
    """``q`` for an error message: a float, or its magnitude when too big for one."""
    if abs(q) < 2**1000:
        return float(q)
    bits = abs(q.numerator).bit_length() - q.denominator.bit_length()
    return f"about {'-' if q < 0 else ''}2**{bits}"


def as_float_array(x: Any, name: str) -> np.ndarray:
    """``np.asarray(x)`` as a native-byte-order float32/float64 array (any ndim, no copy
    when it already is one; torch CPU tensors are viewed)."""
    try:
        a = np.asarray(x)
    except (RuntimeError, TypeError, ValueError) as exc:  # ragged nesting, grad tensors
        raise TypeError(f"{name} must be convertible by numpy.asarray: {exc}") from None
    if a.dtype.kind == "f" and not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))  # e.g. '>f4' from a file: a native copy
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {a.dtype}")
    return a


def check_float_dtype(dtype: npt.DTypeLike, name: str = "dtype") -> np.dtype:
    """Return ``np.dtype(dtype)`` if it is float32 or float64, else raise ``TypeError``."""
    try:
        dt = np.dtype(dtype)
    except Exception:  # numpy parses dtype strings with ast: TypeError, ValueError, SyntaxError
        raise TypeError(f"{name} must be float32 or float64, got {dtype!r}") from None
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {dt}")
    return dt


#: The most elements one array may have: numpy's own limit (an index must fit intp).
MAX_ELEMENTS = int(np.iinfo(np.intp).max)


def check_shape_fits(shape: tuple[int, ...], itemsize: int, name: str = "size") -> None:
    """Raise ``ValueError`` naming ``name`` when an array of ``shape`` could not exist:
    more elements or bytes than numpy can index (numpy's own error names no parameter)."""
    n = math.prod(shape)
    # numpy refuses a shape whose nonzero dimensions overflow its index type even when
    # another dimension is 0 (an empty array)
    if math.prod(max(d, 1) for d in shape) * max(itemsize, 1) > MAX_ELEMENTS:
        raise ValueError(
            f"{name} {shape} is too large: "
            + (f"{n} elements of {itemsize} bytes exceed" if n else "its nonzero dimensions exceed")
            + f" the {MAX_ELEMENTS} bytes an array can hold"
        )


def physical_memory() -> int:
    """This machine's physical memory in bytes (numpy's limit where it is unknown)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):  # pragma: no cover - non-POSIX
        return MAX_ELEMENTS


def check_allocation(nbytes: int, name: str, what: str) -> None:
    """Raise ``ValueError`` naming ``name`` when ``what`` would need more bytes than the
    machine has: a lazily zeroed allocation that large can succeed and then get the
    process killed when it is touched, instead of raising."""
    limit = physical_memory()
    if nbytes > limit:
        raise ValueError(
            f"{name} is too large: {what} would need {nbytes} bytes, more than this "
            f"machine's {limit} bytes of memory"
        )


def normalize_size(size: Any, name: str = "size") -> tuple[int, ...] | None:
    """``None`` stays ``None``; an int or a sequence of ints becomes a shape tuple (each >= 0,
    and all together small enough for an array of 8-byte elements to exist)."""
    if size is None:
        return None
    if isinstance(size, (int, np.integer)) and not isinstance(size, (bool, np.bool_)):
        dims: list[Any] = [size]
    else:
        if isinstance(size, (str, bytes)):
            raise TypeError(f"{name} must be None, an int or a tuple of ints, got str")
        try:
            dims = list(size)
        except TypeError:
            raise TypeError(
                f"{name} must be None, an int or a tuple of ints, got {type(size).__name__}"
            ) from None
    shape = tuple(check_int(d, name, minimum=0) for d in dims)
    if len(shape) > 64:
        raise ValueError(f"{name} must have at most 64 dimensions, got {len(shape)}")
    check_shape_fits(shape, 8, name)
    return shape


def check_bool(value: Any, name: str) -> bool:
    """``value`` as a bool: ``True``/``False`` (numpy's too) or the ints 0 and 1.

    Anything else raises ``TypeError``: ``bool("no")`` is ``True`` and an array's truth
    value is an error, so a flag is never read from an arbitrary object.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    raise TypeError(f"{name} must be a bool, got {type(value).__name__}")


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of the strings ``choices``, else ``ValueError`` naming them.

    Anything that is not a ``str`` is refused before it meets ``in`` (an array there would
    raise numpy's ambiguous-truth-value error instead of naming the parameter). A wrong
    type is a ``ValueError`` here, as for a wrong string: the parameter takes a value
    from a closed list, and every such parameter has always raised ``ValueError``.
    """
    if not isinstance(value, str) or value not in choices:
        allowed = " or ".join(repr(c) for c in choices)
        shown = (
            repr(value)
            if isinstance(value, (str, bool, int, float, type(None)))
            else (type(value).__name__)
        )
        raise ValueError(f"{name} must be {allowed}, got {shown}")
    return value


def asarray(x: Any, name: str, dtype: npt.DTypeLike | None = None) -> np.ndarray:
    """``np.asarray(x, dtype)``, with numpy's conversion errors (ragged nesting, strings
    that are not numbers, grad tensors) as a ``TypeError`` that names ``name``."""
    try:
        arr = np.asarray(x)
        if dtype is None:
            return arr
        if arr.dtype.kind == "c" and np.dtype(dtype).kind != "c":
            raise TypeError(f"{name} must be real, got complex values")
        return arr.astype(dtype, copy=False)
    except (RuntimeError, TypeError, ValueError, OverflowError) as exc:
        if str(exc).startswith(f"{name} must"):
            raise
        raise TypeError(f"{name} must be convertible by numpy.asarray: {exc}") from None


def check_axes(axis: Any, ndim: int, name: str = "axis") -> int | tuple[int, ...] | None:
    """``axis`` for a reduction over an array of ``ndim`` dimensions: ``None``, an int or a
    tuple of distinct ints, each in ``[-ndim, ndim - 1]`` (negative ones normalised).

    Lists and arrays are refused (numpy reads them differently in different functions);
    anything else raises ``TypeError`` naming ``name``.
    """
    if axis is None:
        return None
    if isinstance(axis, tuple):
        axes = tuple(check_int(a, f"{name}[{i}]") for i, a in enumerate(axis))
    else:
        if isinstance(axis, (list, np.ndarray)) and not (
            isinstance(axis, np.ndarray) and axis.ndim == 0
        ):
            raise TypeError(
                f"{name} must be None, an int or a tuple of ints, got {type(axis).__name__}"
            )
        axes = (check_int(axis, name),)
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"{name} must be in [{-ndim}, {ndim - 1}], got {a}")
    norm = tuple(a % ndim for a in axes)
    if len(set(norm)) != len(norm):
        raise ValueError(f"{name} must not repeat an axis, got {axis}")
    return norm if isinstance(axis, tuple) else norm[0]


def inner_contiguous(a: np.ndarray) -> bool:
    """Whether the elements of each row of ``a`` (axes 1..) are one contiguous C-order run."""
    expected = a.itemsize
    for size, stride in zip(a.shape[:0:-1], a.strides[:0:-1], strict=True):
        if size != 1:
            if stride != expected:
                return False
            expected *= size
    return True


def row_view(a: np.ndarray, *, writeable: bool) -> np.ndarray:
    """``a`` as ``(B, n)`` with contiguous rows: a view when possible, else a copy.

    ``writeable`` applies to the view (a copy is always writeable); an empty ``a``
    gives a fresh zero array of the right shape.
    """
    b = a.shape[0]
    n = math.prod(a.shape[1:])
    if n == 0 or b == 0:
        return np.zeros((b, n), dtype=a.dtype)
    if inner_contiguous(a):
        return np.lib.stride_tricks.as_strided(
            a, shape=(b, n), strides=(a.strides[0], a.itemsize), writeable=writeable
        )
    return np.ascontiguousarray(a).reshape(b, n)


def self_overlapping(a: np.ndarray) -> bool:
    """Whether two different elements of ``a`` may share memory (e.g. a stride-0 view).

    Conservative: the axes of length > 1, sorted by absolute stride, must each step over
    everything the smaller axes span. Every view that slicing, transposing or reshaping a
    single array can produce passes; only hand-made strides (``as_strided``) can fail
    without overlapping, and writing through them would be unsafe to reason about anyway.
    """
    span = a.itemsize
    for size, stride in sorted(
        ((n, abs(s)) for n, s in zip(a.shape, a.strides, strict=True) if n > 1),
        key=lambda t: t[1],
    ):
        if stride < span:
            return True
        span = stride * (size - 1) + span
    return False


def check_out_like(out: Any, like: np.ndarray, name: str = "out") -> np.ndarray:
    """``out`` checked as the destination of a result shaped like ``like``.

    ``out`` must be an array, or an object numpy views without a copy (a torch CPU
    tensor), of ``like``'s dtype and shape, writeable, with every element its own memory
    (any layout). A list or tuple is refused: ``numpy.asarray`` would copy it and the
    result would be written to the copy. Returns the numpy view to write to.
    """
    if isinstance(out, (list, tuple)) or not (
        isinstance(out, np.ndarray) or hasattr(out, "__array__")
    ):
        raise TypeError(
            f"{name} must be a numpy.ndarray (or an array numpy views without a copy, such as "
            f"a torch CPU tensor), got {type(out).__name__}"
        )
    try:
        o = np.asarray(out)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be convertible by numpy.asarray: {exc}") from None
    if o.dtype != like.dtype:
        raise TypeError(f"{name} must have dtype {like.dtype}, got {o.dtype}")
    if o.shape != like.shape:
        raise ValueError(f"{name} must have shape {like.shape}, got {o.shape}")
    if not o.flags.writeable:
        raise ValueError(f"{name} must be writeable")
    if o.size > 1 and self_overlapping(o):
        raise ValueError(f"{name} must not have elements that share memory (e.g. stride 0)")
    return o


def check_distinct_outs(arrays: list[np.ndarray], labels: list[str]) -> None:
    """Raise ``ValueError`` when an output array overlaps itself or another output.

    Two outputs that share memory (``out=[buf, buf]``) would have one result overwrite
    the other, and concurrently written from several threads the result depends on the
    schedule; an output whose elements alias each other loses all but one write.
    """
    for i, a in enumerate(arrays):
        if a.size > 1 and self_overlapping(a):
            raise ValueError(
                f"{labels[i]} must not have elements that share memory (e.g. stride 0)"
            )
        for j in range(i):
            if a.size and arrays[j].size and np.may_share_memory(a, arrays[j]):
                raise ValueError(f"{labels[j]} and {labels[i]} must not share memory")


def prepare_out(
    out: np.ndarray | None, size: Any, dtype: npt.DTypeLike, name: str = "out"
) -> tuple[np.ndarray, bool]:
    """Apply the size/out/dtype contract shared by every sampler.

    Returns ``(array, scalar)``: the array to fill (``out`` itself when given) and whether
    the caller asked for a scalar (``size=None`` and no ``out``).

    - ``out`` must be a writeable, C-contiguous ``numpy.ndarray`` of exactly ``dtype``;
    - when both are given, ``out.shape`` must equal ``size``.
    """
    shape = normalize_size(size)
    dt = np.dtype(dtype)
    if out is None:
        if shape is None:
            return np.empty(1, dtype=dt), True
        check_allocation(math.prod(shape) * dt.itemsize, "size", f"an array of shape {shape}")
        return np.empty(shape, dtype=dt), False
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dt:
        raise TypeError(f"{name} must have dtype {dt}, got {out.dtype}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError(f"{name} must be writeable")
    if shape is not None and out.shape != shape:
        raise ValueError(f"{name} must have shape {shape} (size), got {out.shape}")
    return out, False


def real_array(x: Any, name: str) -> np.ndarray:
    """``np.asarray(x)`` unconverted, when its dtype is bool, integer or real floating.

    ``None``, strings, objects, complex numbers and ragged nestings raise ``TypeError``
    naming ``name``. Nothing is copied that ``np.asarray`` would not copy.
    """
    arr = asarray(x, name)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    return arr


def check_finite(arr: np.ndarray, name: str) -> np.ndarray:
    """``arr`` itself, after checking that a floating array holds no NaN or inf."""
    if arr.dtype.kind == "f" and arr.size and not np.isfinite(arr).all():
        raise not_finite(name)
    return arr


def as_real_array(x: Any, name: str, dtype: npt.DTypeLike | None = None) -> np.ndarray:
    """``np.asarray(x)`` as a float32/float64 array (finiteness not checked).

    Integer and bool inputs become float64; float32/float64 keep their dtype unless
    ``dtype`` is given. Complex, object and string inputs raise ``TypeError``. For
    kernels that detect NaN/inf in their own pass; everyone else uses
    :func:`as_finite_array`.
    """
    arr = real_array(x, name)
    if dtype is not None:
        return arr.astype(dtype, copy=False)
    if arr.dtype not in FLOAT_DTYPES:
        return arr.astype(np.float64)
    return arr


def as_finite_array(x: Any, name: str, dtype: npt.DTypeLike | None = None) -> np.ndarray:
    """:func:`as_real_array`, and every element finite: NaN or inf raise ``ValueError``."""
    arr = as_real_array(x, name, dtype)
    if arr.size and not np.isfinite(arr).all():
        raise not_finite(name)
    return arr


def not_finite(name: str) -> ValueError:
    """The error for NaN or inf found in array ``name``."""
    return ValueError(f"{name} must contain only finite values (found NaN or inf)")


def check_bounds(bounds: Any, name: str = "bounds", *, strict: bool = False) -> tuple[float, float]:
    """Return ``bounds`` as ``(lower, upper)``: two finite floats, ``lower <= upper``.

    ``strict`` demands ``lower < upper`` (a range that bins must split).
    """
    try:
        lower, upper = bounds
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair (lower, upper), got {bounds!r}") from None
    lo = check_scalar(lower, f"{name}[0]")
    hi = check_scalar(upper, f"{name}[1]")
    if lo > hi or (strict and lo == hi):
        op = "<" if strict else "<="
        raise ValueError(f"{name} must satisfy lower {op} upper, got ({lo}, {hi})")
    if not (math.isfinite(hi - lo) and math.isfinite(hi + lo)):
        raise ValueError(f"{name} must have a finite width and midpoint, got ({lo}, {hi})")
    return lo, hi


def as_int_array(x: Any, name: str) -> np.ndarray:
    """``np.asarray(x)`` as an int64 array; bool, unsigned and signed integers accepted.

    Floats (even integral ones) raise ``TypeError``: integer mechanisms are exact only on
    integers. Unsigned values above 2**63 - 1 raise ``ValueError``.
    """
    arr = asarray(x, name)
    if arr.dtype.kind not in "biu":
        raise TypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 8 and arr.size and arr.max() > 2**63 - 1:
        raise ValueError(f"{name} must be <= 2**63 - 1, got {int(arr.max())}")
    return arr.astype(np.int64, copy=False)
