"""The simulation's data: scikit-learn's bundled data sets and client partitions.

:func:`load_dataset` reads one of scikit-learn's bundled data sets (no download;
scikit-learn is imported only then) and splits it into training and test rows; the
training rows are divided over the clients IID (:func:`iid_partition`) or with Dirichlet
label skew (:func:`dirichlet_partition`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .. import rng as _rng
from .._types import ArrayLike, RngLike
from .._validation import (
    OPEN_UNIT,
    POSITIVE,
    as_finite_array,
    asarray,
    check_allocation,
    check_int,
    check_scalar,
)
from .models import _check_xy

__all__ = ["Dataset", "dirichlet_partition", "iid_partition", "load_dataset"]


class Dataset(NamedTuple):
    """A train/test split: float64 features and int64 labels in ``[0, n_classes)``.

    Attributes
    ----------
    X_train : ndarray, shape (n_train, n_features)
        The rows the clients hold.
    y_train : ndarray, shape (n_train,)
    X_test : ndarray, shape (n_test, n_features)
        The rows the server evaluates the global model on.
    y_test : ndarray, shape (n_test,)
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_classes(self) -> int:
        """One more than the largest label of either split."""
        return int(max(self.y_train.max(initial=0), self.y_test.max(initial=0))) + 1


_DATASETS = {"digits": "load_digits", "breast-cancer": "load_breast_cancer"}


def load_dataset(name: str = "digits", *, test_fraction: float = 0.25, seed: int = 0) -> Dataset:
    """One of scikit-learn's bundled data sets (no download), split and standardised.

    Parameters
    ----------
    name : {"digits", "breast-cancer"}
        ``"digits"``: 1797 8x8 images, 64 features, 10 classes; ``"breast-cancer"``:
        569 rows, 30 features, 2 classes.
    test_fraction : float in (0, 1)
        The share of rows held out for the test split (at least one row).
    seed : int
        Rows are shuffled with ``numpy.random.default_rng(seed)`` before the split.

    Returns
    -------
    Dataset
        Features standardised with the training rows' mean and standard deviation
        (constant features are left centred, not scaled).

    Raises
    ------
    ValueError
        An unknown ``name`` or ``test_fraction`` outside (0, 1).
    ImportError
        scikit-learn is not installed.
    """
    if name not in _DATASETS:
        raise ValueError(f"name must be one of {sorted(_DATASETS)}, got {name!r}")
    frac = check_scalar(test_fraction, "test_fraction", OPEN_UNIT)
    try:
        from sklearn import datasets
    except ImportError as exc:
        raise ImportError(
            "load_dataset needs scikit-learn, whose bundled data sets it reads: "
            "pip install scikit-learn"
        ) from exc
    X, y = getattr(datasets, _DATASETS[name])(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = max(1, round(frac * len(y)))
    train, test = order[:-n_test], order[-n_test:]
    mean = X[train].mean(axis=0)
    std = X[train].std(axis=0)
    std[std == 0] = 1.0
    Xs = (X - mean) / std
    return Dataset(Xs[train], y[train].astype(np.int64), Xs[test], y[test].astype(np.int64))


def iid_partition(n_samples: int, n_clients: int, *, rng: RngLike = None) -> list[np.ndarray]:
    """An IID split of ``n_samples`` rows over ``n_clients`` clients.

    Parameters
    ----------
    n_samples : int >= 1
    n_clients : int in [1, n_samples]
        No client is left empty.
    rng : RngLike
        The stream of the shuffle (default: the secure stream).

    Returns
    -------
    list of ndarray
        ``range(n_samples)`` shuffled and cut into ``n_clients`` parts whose sizes differ
        by at most one; each part is sorted.

    Raises
    ------
    ValueError
        ``n_clients > n_samples`` or a count below 1.
    """
    n = check_int(n_samples, "n_samples", minimum=1)
    k = check_int(n_clients, "n_clients", minimum=1)
    check_allocation(2 * 8 * n, "n_samples", "the permutation")
    if k > n:
        raise ValueError(f"n_clients must be <= n_samples = {n} (no empty client), got {k}")
    order = _rng.resolve(rng).permutation(n)
    return [np.sort(part) for part in np.array_split(order, k)]


def dirichlet_partition(
    labels: ArrayLike,
    n_clients: int,
    alpha: float,
    *,
    rng: RngLike = None,
    min_size: int = 1,
    max_tries: int = 100,
) -> list[np.ndarray]:
    """Non-IID label skew: each class is split over the clients in Dirichlet(α) shares.

    Parameters
    ----------
    labels : array_like of int, shape (n_samples,)
    n_clients : int >= 1
    alpha : float > 0
        The Dirichlet concentration: small α gives each client few classes; large α
        approaches an IID split.
    rng : RngLike
        The stream of the shares and shuffles (default: the secure stream).
    min_size : int >= 1
        The fewest rows a client may hold.
    max_tries : int >= 1
        How many draws to try before giving up.

    Returns
    -------
    list of ndarray
        Client ``j``'s sorted row indices.

    Raises
    ------
    ValueError
        ``labels`` is not a 1-d integer array, ``n_clients * min_size > len(labels)``,
        or no draw in ``max_tries`` gave every client ``min_size`` rows (raise α or
        lower ``n_clients``).

    Notes
    -----
    For every class ``c`` draw ``p_c ~ Dir(α 1_N)`` and give client ``j`` a fraction
    ``p_cj`` of the class's (shuffled) examples (Yurochkin et al. 2019; Hsu et al. 2019).
    The draw is repeated until every client holds at least ``min_size`` examples.
    """
    y = asarray(labels, "labels")
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(f"labels must be a 1-d integer array, got shape {y.shape} {y.dtype}")
    k = check_int(n_clients, "n_clients", minimum=1)
    a = check_scalar(alpha, "alpha", POSITIVE)
    least = check_int(min_size, "min_size", minimum=1)
    tries = check_int(max_tries, "max_tries", minimum=1)
    if k * least > y.size:
        raise ValueError(
            f"n_clients * min_size must be <= len(labels) = {y.size}, got {k} * {least}"
        )
    gen = _rng.resolve(rng)
    classes = [np.flatnonzero(y == c) for c in np.unique(y)]
    for _ in range(tries):
        parts: list[list[np.ndarray]] = [[] for _ in range(k)]
        for idx in classes:
            shares = gen.dirichlet(np.full(k, a))
            cuts = (np.cumsum(shares)[:-1] * idx.size).astype(np.int64)
            for j, piece in enumerate(np.split(gen.permutation(idx), cuts)):
                parts[j].append(piece)
        out = [np.sort(np.concatenate(p)) for p in parts]
        if min(p.size for p in out) >= least:
            return out
    raise ValueError(
        f"no Dirichlet(alpha={a}) draw in max_tries={tries} gave every one of n_clients={k} "
        f"clients at least min_size={least} examples: raise alpha or lower n_clients"
    )


def _check_data(data: object) -> tuple[np.ndarray, np.ndarray]:
    """The training rows and labels of ``data``, after checking both splits.

    Returns
    -------
    X_train : ndarray of float64
    y_train : ndarray of int

    Raises
    ------
    TypeError
        ``data`` is not a :class:`Dataset`, or has non-float features or non-integer labels.
    ValueError
        Non-finite features, mismatched shapes or column counts, an empty test split or
        a negative label.
    """
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a Dataset, got {type(data).__name__}")
    X = as_finite_array(data.X_train, "data.X_train", np.float64)
    _, y = _check_xy(X, data.y_train)
    Xt = as_finite_array(data.X_test, "data.X_test", np.float64)
    _check_xy(Xt, data.y_test)
    assert y is not None
    if Xt.shape[1] != X.shape[1]:
        raise ValueError(
            f"data.X_test must have {X.shape[1]} columns like data.X_train, got {Xt.shape[1]}"
        )
    if Xt.shape[0] == 0:
        raise ValueError("data.X_test must have at least one row")
    if min(y.min(initial=0), data.y_test.min(initial=0)) < 0:
        raise ValueError("data labels must be >= 0")
    return X, y


def _client_partition(
    y: np.ndarray,
    clients: int | None,
    alpha: float | None,
    partition: Sequence[ArrayLike] | None,
    gen: np.random.Generator,
) -> list[np.ndarray]:
    """Each client's training-row indices: ``partition`` checked, or a fresh split.

    Parameters
    ----------
    y : ndarray, shape (n_train,)
        The training labels.
    clients : int >= 1, optional
        The number of clients of a fresh split (default 20).
    alpha : float > 0, optional
        Dirichlet label skew (:func:`dirichlet_partition`); ``None`` splits IID.
    partition : sequence of index arrays, optional
        An explicit split (then ``clients`` and ``alpha`` must be ``None``).
    gen : numpy.random.Generator
        The stream of a fresh split.

    Returns
    -------
    list of ndarray

    Raises
    ------
    ValueError
        Both ``partition`` and ``clients``/``alpha``; an empty ``partition``, or a part
        that is empty, not a 1-d integer array, or indexes rows out of range.
    """
    if partition is not None:
        if clients is not None or alpha is not None:
            raise ValueError("give either partition or clients/alpha, not both")
        parts = [np.asarray(p) for p in partition]
        if not parts:
            raise ValueError("partition must hold at least one client")
        for j, p in enumerate(parts):
            if p.ndim != 1 or p.dtype.kind not in "iu" or p.size == 0:
                raise ValueError(f"partition[{j}] must be a non-empty 1-d integer index array")
            if p.min() < 0 or p.max() >= y.size:
                raise ValueError(f"partition[{j}] must index rows in [0, {y.size})")
        return parts
    n = 20 if clients is None else check_int(clients, "clients", minimum=1)
    if alpha is None:
        return iid_partition(y.size, n, rng=gen)
    return dirichlet_partition(y, n, alpha, rng=gen)
