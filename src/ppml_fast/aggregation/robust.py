"""Byzantine-robust aggregation, vectorised over clients: coordinate-wise median, trimmed
mean, Krum and Multi-Krum.

The server side of a federated round in which some clients may send arbitrary
(Byzantine) updates:

- :func:`coordinate_median`, :func:`trimmed_mean` -- coordinate-wise robust statistics
  (Yin et al. 2018);
- :func:`krum`, :func:`multi_krum` -- Blanchard et al. 2017's distance-based selection.

The averaging aggregators (FedAvg, FedProx, DP-FedAvg) are in :mod:`.fedavg`;
``updates`` takes the forms described in :mod:`ppml_fast.aggregation`.

Numerics
--------
Every coordinate of the median and the trimmed mean is computed by one thread, its
values sorted and the kept ones added in sorted order in float64, then rounded once to
the data's dtype: the results are bit-for-bit the same on any number of threads.
Krum's distances come from BLAS, whose summation order may change their last bits with
its thread count; the selected updates are averaged in client order in float64.

Threads: the Numba kernels run serially on column ranges handed out by one shared
thread pool (they release the GIL), with ``ppml_fast.set_num_threads`` threads (see
:mod:`.fedavg` for why not Numba's ``prange``).

On error, ``out`` may have been partly written; everything else is left as it was.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import numpy as np

from .._native import aggregation as _kernels
from .._pool import run_columns
from .._types import UpdatesLike
from .._validation import check_choice, check_int, check_scalar
from ._inputs import Clients, FlatOut

__all__ = [
    "KrumResult",
    "coordinate_median",
    "krum",
    "multi_krum",
    "trimmed_mean",
]

NanPolicy = Literal["raise", "omit"]

# ------------------------------------------------------------------ median, trimmed mean


def _check_nan(nan: object) -> bool:
    """True for ``nan="omit"``."""
    return check_choice(nan, "nan", ("raise", "omit")) == "omit"


@functools.lru_cache(maxsize=64)
def _network(n: int) -> np.ndarray:
    """Batcher's odd-even merge sort network for ``n`` inputs, as (P, 2) int64 pairs
    ``a < b`` (compare-exchange: the smaller value to row ``a``).

    Built for the next power of two and pruned of every comparator that touches a
    position ``>= n`` -- those positions would hold +inf padding, which such a
    comparator never moves -- so it sorts any ``n`` (Knuth, TAOCP vol. 3, 5.3.4).
    About ``n log₂² n / 4`` comparators; read-only (shared between calls).
    """
    size = 1
    while size < n:
        size *= 2
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    a = i + j
                    b = a + k
                    if a // (2 * p) == b // (2 * p) and b < n:
                        pairs.append((a, b))
            k //= 2
        p *= 2
    net = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    net.flags.writeable = False
    return net


def _column_stat(
    clients: Clients, out: Any, mode: int, frac: float, count: int, omit: bool, name: str
) -> Any:
    x = clients.matrix()
    target = FlatOut(out, clients)
    n = clients.n
    net = _network(n)
    bad = sum(
        run_columns(
            _kernels._column_stat,
            clients.d,
            clients.d * max(n, net.shape[0]),
            x,
            target.flat,
            net,
            mode,
            frac,
            count,
            omit,
        )
    )
    if bad:
        j = int(np.flatnonzero(np.isnan(target.flat))[0])
        raise _column_error(clients, x, j, omit, mode, frac, count, name)
    return target.result()


def _column_error(
    clients: Clients,
    x: np.ndarray,
    j: int,
    omit: bool,
    mode: int,
    frac: float,
    count: int,
    name: str,
) -> ValueError:
    col = x[:, j].astype(np.float64)
    where = clients.where(j)
    nans = np.flatnonzero(np.isnan(col))
    if nans.size and not omit:
        return ValueError(
            f"updates must not contain NaN: updates[{int(nans[0])}] holds NaN at {where} "
            "(pass nan='omit' to ignore NaNs)"
        )
    m = col.size - nans.size
    if m == 0:
        return ValueError(f"updates holds NaN for every client at {where}: nothing to aggregate")
    if mode != _kernels.MEDIAN:
        k = int(frac * m) if mode == _kernels.TRIM_FRACTION else count
        if m <= 2 * k:
            return ValueError(
                f"trim must leave a value to average: updates has only {m} "
                f"non-NaN values at {where}, and trim cuts {k} from each side"
            )
    return ValueError(f"the {name} at {where} is undefined: it averages -inf and +inf")


def coordinate_median(
    updates: UpdatesLike,
    *,
    nan: NanPolicy = "raise",
    out: np.ndarray | Sequence[np.ndarray] | None = None,
) -> Any:
    """Coordinate-wise median of the clients' updates (Yin et al. 2018, "Byzantine-Robust
    Distributed Learning: Towards Optimal Statistical Rates").

    Coordinate ``j`` of the result is the median of ``{Δ_i[j]}``: the middle value for an
    odd count, the mean of the two middle values for an even one (as ``numpy.median``).
    Up to ``⌈n/2⌉ - 1`` arbitrary (Byzantine) clients cannot move it outside the range
    of the honest values.

    Parameters
    ----------
    updates : array (n, ...), list of n arrays, or list of n parameter lists
        Their forms: :mod:`ppml_fast.aggregation`. ±inf are ordinary (extreme) values.
    nan : {"raise", "omit"}
        ``"raise"``: a NaN raises ``ValueError`` naming the client and coordinate.
        ``"omit"``: each coordinate's median is over its non-NaN values (as
        ``numpy.nanmedian``); a coordinate that is NaN for every client raises.
    out : array, or list of per-layer arrays, optional
        Where to write the result.

    Returns
    -------
    ndarray (or list of per-layer arrays)
        In the updates' dtype; ``out`` when given.

    Raises
    ------
    ValueError
        A NaN (with ``nan="raise"``), a coordinate without a non-NaN value, a median of
        ``-inf`` and ``+inf``, or updates of mismatched shapes.
    TypeError
        ``updates`` or ``out`` of the wrong type, dtype or structure (see
        :mod:`ppml_fast.aggregation`).

    Notes
    -----
    Each thread gathers a block of columns into a float64 buffer and sorts each column;
    the mean of the two middle values is ``(a + b) / 2`` in float64 (``a/2 + b/2`` if
    ``a + b`` overflows), rounded once. A median of ``-inf`` and ``+inf`` raises.
    """
    omit = _check_nan(nan)
    clients = Clients(updates)
    return _column_stat(clients, out, _kernels.MEDIAN, 0.0, 0, omit, "median")


def trimmed_mean(
    updates: UpdatesLike,
    trim: float | int = 0.1,
    *,
    nan: NanPolicy = "raise",
    out: np.ndarray | Sequence[np.ndarray] | None = None,
) -> Any:
    """Coordinate-wise trimmed mean (Yin et al. 2018): per coordinate, drop the ``k``
    smallest and ``k`` largest values and average the rest.

    ``mean(sorted(Δ_1[j], ..., Δ_n[j])[k : n - k])``. With a fraction ``β`` in
    ``[0, 0.5)``, ``k = ⌊β n⌋`` (the cut of ``scipy.stats.trim_mean``); with an int,
    ``k`` itself. Tolerates up to ``k`` Byzantine clients per side.

    Parameters
    ----------
    updates : array (n, ...), list of n arrays, or list of n parameter lists
        Their forms: :mod:`ppml_fast.aggregation`. ±inf are ordinary values (trimmed
        away, or making the mean infinite; a mean of -inf and +inf raises).
    trim : float in [0, 0.5), or int >= 0 with 2 * trim < n
        A fraction of the clients to cut per side, or a count per side.
    nan : {"raise", "omit"}
        ``"raise"``: a NaN raises ``ValueError``. ``"omit"``: each coordinate uses its
        ``m`` non-NaN values, cutting ``⌊β m⌋`` (or ``trim``) per side; it raises where
        ``m <= 2k``.
    out : array, or list of per-layer arrays, optional
        Where to write the result.

    Returns
    -------
    ndarray (or list of per-layer arrays)
        In the updates' dtype; ``out`` when given.

    Raises
    ------
    ValueError
        ``trim`` out of range, a NaN (with ``nan="raise"``), a coordinate with too few
        non-NaN values to trim, a mean of ``-inf`` and ``+inf``, or updates of
        mismatched shapes.
    TypeError
        ``updates`` or ``out`` of the wrong type, dtype or structure (see
        :mod:`ppml_fast.aggregation`), or ``trim`` given as a bool.

    Notes
    -----
    The kept values are added in sorted order in float64, divided by their number and
    rounded once (values whose sum overflows are divided first).
    """
    omit = _check_nan(nan)
    clients = Clients(updates)
    if isinstance(trim, (bool, np.bool_)):
        raise TypeError("trim must be a float fraction or an int count, got bool")
    if isinstance(trim, numbers.Integral):
        k = check_int(trim, "trim", minimum=0)
        if 2 * k >= clients.n:
            raise ValueError(
                f"trim must be < n_clients / 2 = {clients.n / 2:g} as a count per side, got {k}"
            )
        return _column_stat(clients, out, _kernels.TRIM_COUNT, 0.0, k, omit, "trimmed mean")
    frac = check_scalar(trim, "trim", (lambda t: 0 <= t < 0.5, "in [0, 0.5)"))
    return _column_stat(clients, out, _kernels.TRIM_FRACTION, frac, 0, omit, "trimmed mean")


# ------------------------------------------------------------------------------- Krum


class KrumResult(NamedTuple):
    """The result of :func:`krum` / :func:`multi_krum`."""

    update: Any
    """The selected update (m = 1) or the mean of the m selected updates."""
    indices: np.ndarray
    """The selected clients (int64), best score first."""
    scores: np.ndarray
    """Every client's Krum score (float64, (n,)); +inf for excluded (non-finite) ones."""


#: Target size in bytes of one float64 block of the blocked Gram matrix.
_GRAM_BLOCK_BYTES = 1 << 20


def _gram(x: np.ndarray) -> np.ndarray:
    """Centred Gram matrix ``(X - μ)(X - μ)ᵀ`` of the (n, D) ``x`` in float64.

    Column blocks are converted to float64, centred on their own column means (distances
    do not change under a translation, and centring removes the cancellation in
    ``|a|² + |b|² - 2 a·b`` when the updates share a large common part), and added with
    one BLAS ``syrk``-shaped product each.
    """
    n, d = x.shape
    g = np.zeros((n, n))
    if n == 0 or d == 0:
        return g
    width = max(64, _GRAM_BLOCK_BYTES // (8 * n))
    buf = np.empty((n, min(width, d)))
    mean = np.empty(buf.shape[1])
    part = np.empty((n, n))
    with np.errstate(over="ignore", invalid="ignore"):  # the caller checks for inf/NaN
        for j0 in range(0, d, width):
            j1 = min(d, j0 + width)
            b = buf if j1 - j0 == buf.shape[1] else np.empty((n, j1 - j0))
            # on the calling thread: OpenBLAS's threads still spin after the last block
            _kernels._center(x, j0, j1, b, mean)
            np.matmul(b, b.T, out=part)
            g += part
        return (g + g.T) * 0.5


def _sq_distances(g: np.ndarray) -> np.ndarray:
    """Pairwise squared distances from a Gram matrix (clamped at 0; diagonal +inf)."""
    diag = np.diag(g)
    with np.errstate(over="ignore", invalid="ignore"):
        d = diag[:, None] + diag[None, :] - 2.0 * g
        np.maximum(d, 0.0, out=d)
    np.fill_diagonal(d, np.inf)
    return d


def _krum(
    updates: UpdatesLike,
    n_byzantine: int,
    m: int | None,
    nonfinite: str,
    out: np.ndarray | Sequence[np.ndarray] | None,
    default_m: bool,
) -> KrumResult:
    check_choice(nonfinite, "nonfinite", ("raise", "exclude"))
    clients = Clients(updates)
    n = clients.n
    f = check_int(n_byzantine, "n_byzantine", minimum=0)
    if n <= 2 * f + 2:
        raise ValueError(
            f"n_byzantine must satisfy n_clients > 2 * n_byzantine + 2 (Blanchard et al. "
            f"2017), got n_clients = {n} and n_byzantine = {f}"
        )
    m = n - f if default_m and m is None else check_int(m, "m", minimum=1)
    if m > n:
        raise ValueError(f"m must be <= n_clients = {n}, got {m}")
    x = clients.matrix()
    d = _sq_distances(_gram(x))
    if not np.isfinite(d[~np.eye(n, dtype=bool)]).all():
        bad = np.array([not np.isfinite(x[i]).all() for i in range(n)])
        if not bad.any():
            raise ValueError("updates are too large: their squared distances overflow float64")
        if nonfinite == "raise":
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"updates[{i}] must contain only finite values (found NaN or "
                "inf; pass nonfinite='exclude' to give such clients an "
                "infinite score)"
            )
        good = np.flatnonzero(~bad)
        d = np.full((n, n), np.inf)
        d[np.ix_(good, good)] = _sq_distances(_gram(x[good]))
    k = n - f - 2
    scores = np.sort(d, axis=1)[:, :k].sum(axis=1)
    order = np.argsort(scores, kind="stable")
    chosen = order[:m].astype(np.int64)
    if not np.isfinite(scores[chosen]).all():
        raise ValueError(
            f"m must be <= the number of clients with a finite score "
            f"({int(np.isfinite(scores).sum())}), got {m}"
        )
    target = FlatOut(out, clients)
    rows = np.sort(chosen)
    run_columns(
        _kernels._wsum_rows,
        clients.d,
        rows.size * clients.d,
        x,
        rows,
        np.ones(rows.size),
        float(rows.size),
        target.flat,
        _kernels.WSUM_BLOCK,
    )
    return KrumResult(target.result(), chosen, scores)


def krum(
    updates: UpdatesLike,
    n_byzantine: int,
    *,
    m: int = 1,
    nonfinite: Literal["raise", "exclude"] = "raise",
    out: np.ndarray | Sequence[np.ndarray] | None = None,
) -> KrumResult:
    """Krum (Blanchard, El Mhamdi, Guerraoui & Stainer 2017, "Machine Learning with
    Adversaries: Byzantine Tolerant Gradient Descent").

    Client ``i``'s score is ``s(i) = Σ_{j ∈ N_i} ||Δ_i - Δ_j||²`` over its ``n - f - 2``
    nearest other clients; Krum selects the client with the smallest score (ties: the
    lowest index), and with ``m > 1`` averages the ``m`` best (Multi-Krum, their
    Section 5). Tolerates ``f`` Byzantine clients when ``n > 2f + 2``.

    Parameters
    ----------
    updates : array (n, ...), list of n arrays, or list of n parameter lists
        Their forms: :mod:`ppml_fast.aggregation`; distances are over all layers together.
    n_byzantine : int >= 0
        ``f``, the number of Byzantine clients to tolerate; ``n > 2f + 2`` is required.
    m : int in [1, n]
        How many of the best-scoring clients to average (``m <= n - f`` keeps every
        selected update within reach of the honest ones).
    nonfinite : {"raise", "exclude"}
        ``"raise"``: NaN or inf in an update raises ``ValueError``. ``"exclude"``: such
        a client is at infinite distance from all others (score +inf, never selected).
    out : array, or list of per-layer arrays, optional
        Where to write the selected (mean) update.

    Returns
    -------
    KrumResult
        ``update``, ``indices`` (the selected clients, best first) and ``scores``.

    Raises
    ------
    ValueError
        ``n <= 2f + 2``, ``m`` out of range (or above the number of finite scores), a
        non-finite update (with ``nonfinite="raise"``), distances that overflow float64,
        or updates of mismatched shapes.
    TypeError
        ``updates`` or ``out`` of the wrong type, dtype or structure (see
        :mod:`ppml_fast.aggregation`).

    Notes
    -----
    All pairwise squared distances come from one Gram matrix,
    ``||a - b||² = |a|² + |b|² - 2 a·b``, built block by block in float64 with BLAS after
    centring each block on its mean (see :func:`_gram`): one read of the updates and
    ``n² D`` multiply-adds instead of ``n²/2`` difference vectors. The selected updates
    are averaged in client order in float64.
    """
    return _krum(updates, n_byzantine, m, nonfinite, out, default_m=False)


def multi_krum(
    updates: UpdatesLike,
    n_byzantine: int,
    m: int | None = None,
    *,
    nonfinite: Literal["raise", "exclude"] = "raise",
    out: np.ndarray | Sequence[np.ndarray] | None = None,
) -> KrumResult:
    """Multi-Krum: the mean of the ``m`` clients with the best Krum scores.

    :func:`krum` with ``m`` defaulting to ``n - f`` (Blanchard et al. 2017, Section 5);
    see :func:`krum` for the scores, the other parameters, the result and the errors.

    Parameters
    ----------
    m : int in [1, n], optional
        How many of the best-scoring clients to average; default ``n - f``.
    """
    return _krum(updates, n_byzantine, m, nonfinite, out, default_m=True)
