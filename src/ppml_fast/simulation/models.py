"""Federated-learning simulation: many clients, one server, private or secure aggregation.

:func:`run_simulation` trains a numpy model (:class:`LogisticRegression`, :class:`MLP`) by
federated averaging (McMahan et al. 2017) over simulated clients, each holding a part of a
data set (:func:`iid_partition`, :func:`dirichlet_partition`). Every round the server
samples clients, each sampled client runs local SGD on its own data -- optionally DP-SGD
(Abadi et al. 2016) through :func:`ppml_fast.clipping.dp_aggregate` -- and returns its
model update, and the server combines the updates with one of

- :class:`FedAvg`: the (sample-count weighted) mean of the updates;
- :class:`DPFedAvg`: client-level DP (McMahan et al. 2018): clip each update, add
  Gaussian noise to the sum, divide by the expected number of clients;
- :class:`SecureAggregation`: SecAgg (Bonawitz et al. 2017) or, with ``neighbors``,
  SecAgg+ (Bell et al. 2020), with simulated client dropouts: the server learns only the
  fixed-point sum of the surviving clients' updates and divides it by their number;
- :class:`PaillierAggregation`: clients encrypt their updates under the public key of a
  simulated decryptor, the server adds ciphertexts and the decryptor decrypts the sum.

DP-SGD clients combine with any of these except :class:`DPFedAvg` (one DP level per run).
Each round is recorded (:class:`RoundRecord`): loss, test accuracy, ε spent, bytes a
client sends, and the time of the client and aggregation phases.

Scale-out
---------
Client work runs through a :class:`concurrent.futures.Executor`: by default a local
thread pool (the kernels release the GIL); ``executor=dask_client.get_executor()`` runs
the same tasks on a Dask cluster. A client task is a pure function of its inputs and of
its own seed, derived from the run's one master seed by :class:`numpy.random.SeedSequence`
spawn keys ``(stream, round, client)``; the server reads results in client order. A
seeded run therefore gives the same model, bit for bit, on any executor.

Security
--------
This is a simulation: every party runs in one process or cluster, and the server's
evaluation reads all training data. With ``seed=None`` every random draw (client and
batch sampling, DP noise) comes from the secure stream of :mod:`ppml_fast.rng`; with a
seed the DP noise is reproducible by anyone who knows the seed (tests and experiments
only; ppml_fast warns once per process). Secure-aggregation masks and Paillier
randomness are always secure. The ε reported for DP-SGD is example-level DP for every
client's data (the worst client's ε, ignoring the amplification from client sampling);
for DP-FedAvg it is client-level DP.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import operator
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, NamedTuple, Protocol

import numpy as np

from .. import _config, accounting, aggregation, clipping, paillier
from .. import rng as _rng
from .._validation import (
    HALF_OPEN_UNIT,
    NON_NEGATIVE,
    POSITIVE,
    as_finite_array,
    check_int,
    check_scalar,
)

__all__ = [
    "DPSGD",
    "MLP",
    "DPFedAvg",
    "Dataset",
    "FedAvg",
    "LogisticRegression",
    "Model",
    "PaillierAggregation",
    "RoundRecord",
    "SecureAggregation",
    "SimulationResult",
    "dirichlet_partition",
    "history_table",
    "iid_partition",
    "load_dataset",
    "plot",
    "run_simulation",
]

_UNIT_INTERVAL = (lambda x: 0 < x <= 1, "in (0, 1]")

# ---------------------------------------------------------------------------------------
# models: flat parameter vectors, vectorised per-example gradients
# ---------------------------------------------------------------------------------------


class Model(Protocol):
    """What the simulation needs from a model: numpy functions of a flat parameter vector.

    ``X`` is ``(B, n_features)`` float64, ``y`` is ``(B,)`` int labels in ``[0, n_classes)``;
    the loss is the mean cross-entropy over the batch.
    """

    def init(self, rng: Any, n_features: int, n_classes: int) -> np.ndarray: ...
    def loss(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> float: ...
    def gradient(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray: ...
    def per_example_gradients(
        self, params: np.ndarray, X: np.ndarray, y: np.ndarray
    ) -> np.ndarray: ...
    def predict(self, params: np.ndarray, X: np.ndarray) -> np.ndarray: ...
    def accuracy(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> float: ...


def _check_params(params: Any) -> np.ndarray:
    p = np.asarray(params)
    if p.ndim != 1 or p.dtype.kind != "f":
        raise ValueError(f"params must be a 1-d float array, got shape {p.shape} {p.dtype}")
    return p


def _check_xy(X: Any, y: Any | None) -> tuple[np.ndarray, np.ndarray | None]:
    x = np.asarray(X)
    if x.ndim != 2:
        raise ValueError(f"X must be 2-d (examples, features), got shape {x.shape}")
    if y is None:
        return x, None
    labels = np.asarray(y)
    if labels.shape != (x.shape[0],):
        raise ValueError(f"y must have shape ({x.shape[0]},) to match X, got {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"y must hold integer class labels, got dtype {labels.dtype}")
    return x, labels


def _softmax_residual(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """softmax(logits) - onehot(y): the gradient of the cross-entropy wrt the logits."""
    r = logits - logits.max(axis=1, keepdims=True)
    np.exp(r, out=r)
    r /= r.sum(axis=1, keepdims=True)
    r[np.arange(y.shape[0]), y] -= 1.0
    return r


def _softmax_loss(logits: np.ndarray, y: np.ndarray) -> float:
    if logits.shape[0] == 0:
        return 0.0
    m = logits.max(axis=1)
    lse = m + np.log(np.exp(logits - m[:, None]).sum(axis=1))
    return float(np.mean(lse - logits[np.arange(y.shape[0]), y]))


def _outer_into(out: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """``out[i] = vec(a[i] ⊗ b[i])`` for every example, written in place (no loop over i).

    ``out`` is a column block of a C-ordered (B, P) array: its rows are contiguous, so
    splitting them into (a.shape[1], b.shape[1]) is a view, never a copy."""
    np.multiply(a[:, :, None], b[:, None, :], out=out.reshape(a.shape[0], a.shape[1], b.shape[1]))


class _Classifier:
    """Shared logic: labels from logits, mean cross-entropy, batch = mean of per-example."""

    def logits(self, params: np.ndarray, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict(self, params: np.ndarray, X: np.ndarray) -> np.ndarray:
        """The predicted class of each row of ``X``."""
        z = self.logits(_check_params(params), _check_xy(X, None)[0])
        if z.shape[1] == 1:
            return (z[:, 0] > 0).astype(np.int64)
        return np.argmax(z, axis=1)

    def accuracy(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
        """The fraction of rows of ``X`` whose predicted class is ``y``."""
        x, labels = _check_xy(X, y)
        assert labels is not None
        if x.shape[0] == 0:
            raise ValueError("X must have at least one row to measure accuracy")
        return float(np.mean(self.predict(params, x) == labels))


@dataclasses.dataclass(frozen=True)
class LogisticRegression(_Classifier):
    """Logistic regression: binary (sigmoid, ``d + 1`` parameters) or multinomial
    (softmax, ``(d + 1) K`` parameters).

    Parameters are ``[W.ravel(), b]`` with ``W`` of shape ``(d, K)`` (``(d,)`` for the
    binary model). ``multinomial=None`` picks the binary model for two classes and softmax
    otherwise; ``True`` forces softmax. The loss is the mean cross-entropy (no penalty).
    """

    multinomial: bool | None = None

    def init(self, rng: Any, n_features: int, n_classes: int) -> np.ndarray:
        """Zero weights and biases (the loss is convex; ``rng`` is accepted for symmetry)."""
        d = check_int(n_features, "n_features", minimum=1)
        k = check_int(n_classes, "n_classes", minimum=2)
        outputs = 1 if (k == 2 and not self.multinomial) else k
        return np.zeros((d + 1) * outputs)

    def _split(self, params: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
        if params.size % (d + 1):
            raise ValueError(
                f"params must have a multiple of n_features + 1 = {d + 1} entries, "
                f"got {params.size}"
            )
        k = params.size // (d + 1)
        return params[: d * k].reshape(d, k), params[d * k :]

    def logits(self, params: np.ndarray, X: np.ndarray) -> np.ndarray:
        """``X W + b``: ``(B, K)`` (``(B, 1)`` for the binary model)."""
        w, b = self._split(params, X.shape[1])
        return X @ w + b

    def _residual(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        z = self.logits(params, X)
        if z.shape[1] == 1:
            return (_sigmoid(z[:, 0]) - y)[:, None]
        return _softmax_residual(z, y)

    def loss(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
        """Mean cross-entropy of the batch."""
        x, labels = _check_xy(X, y)
        assert labels is not None
        z = self.logits(_check_params(params), x)
        if z.shape[1] == 1:
            zz = z[:, 0]
            return float(np.mean(np.logaddexp(0.0, zz) - labels * zz)) if zz.size else 0.0
        return _softmax_loss(z, labels)

    def gradient(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Gradient of :meth:`loss` (the mean over the batch), shape ``(P,)``."""
        x, labels = _check_xy(X, y)
        assert labels is not None
        p = _check_params(params)
        r = self._residual(p, x, labels)
        n = max(x.shape[0], 1)
        return np.concatenate([(x.T @ r).ravel(), r.sum(axis=0)]) / n

    def per_example_gradients(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Each example's gradient of its own cross-entropy, shape ``(B, P)``."""
        x, labels = _check_xy(X, y)
        assert labels is not None
        p = _check_params(params)
        r = self._residual(p, x, labels)
        b, d, k = x.shape[0], x.shape[1], r.shape[1]
        out = np.empty((b, p.size))
        _outer_into(out[:, : d * k], x, r)
        out[:, d * k :] = r
        return out


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


_ACTIVATIONS = ("tanh", "relu")


@dataclasses.dataclass(frozen=True)
class MLP(_Classifier):
    """A one-hidden-layer perceptron with a softmax output.

    Parameters are ``[W1.ravel(), b1, W2.ravel(), b2]`` with ``W1`` of shape ``(d, H)``
    and ``W2`` of shape ``(H, K)``; ``init`` draws Glorot-uniform weights (Glorot &
    Bengio 2010) and zero biases.
    """

    hidden: int = 32
    activation: str = "tanh"

    def __post_init__(self) -> None:
        check_int(self.hidden, "hidden", minimum=1)
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {self.activation!r}")

    def init(self, rng: Any, n_features: int, n_classes: int) -> np.ndarray:
        d = check_int(n_features, "n_features", minimum=1)
        k = check_int(n_classes, "n_classes", minimum=2)
        gen = _rng.resolve(rng)
        h = self.hidden
        a1, a2 = math.sqrt(6.0 / (d + h)), math.sqrt(6.0 / (h + k))
        return np.concatenate(
            [gen.uniform(-a1, a1, d * h), np.zeros(h), gen.uniform(-a2, a2, h * k), np.zeros(k)]
        )

    def _split(self, params: np.ndarray, d: int) -> tuple[np.ndarray, ...]:
        h = self.hidden
        rest = params.size - h * (d + 1)
        if rest <= 0 or rest % (h + 1):
            raise ValueError(
                f"params must have {h * (d + 1)} + K * {h + 1} entries for n_features = {d} "
                f"and hidden = {h}, got {params.size}"
            )
        k = rest // (h + 1)
        i = 0
        parts = []
        for shape in ((d, h), (h,), (h, k), (k,)):
            size = math.prod(shape)
            parts.append(params[i : i + size].reshape(shape))
            i += size
        return tuple(parts)

    def _forward(self, params: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, ...]:
        w1, b1, w2, b2 = self._split(params, X.shape[1])
        z1 = X @ w1 + b1
        a = np.tanh(z1) if self.activation == "tanh" else np.maximum(z1, 0.0)
        return w2, z1, a, a @ w2 + b2

    def logits(self, params: np.ndarray, X: np.ndarray) -> np.ndarray:
        return self._forward(params, X)[3]

    def loss(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
        """Mean cross-entropy of the batch."""
        x, labels = _check_xy(X, y)
        assert labels is not None
        return _softmax_loss(self.logits(_check_params(params), x), labels)

    def _backward(
        self, params: np.ndarray, X: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(hidden activations, hidden deltas, output residuals) for every example."""
        w2, z1, a, z2 = self._forward(params, X)
        r = _softmax_residual(z2, y)
        da = r @ w2.T
        if self.activation == "tanh":
            da *= 1.0 - a * a
        else:
            da *= z1 > 0
        return a, da, r

    def gradient(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Gradient of :meth:`loss` (the mean over the batch), shape ``(P,)``."""
        x, labels = _check_xy(X, y)
        assert labels is not None
        a, da, r = self._backward(_check_params(params), x, labels)
        n = max(x.shape[0], 1)
        return (
            np.concatenate([(x.T @ da).ravel(), da.sum(axis=0), (a.T @ r).ravel(), r.sum(axis=0)])
            / n
        )

    def per_example_gradients(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Each example's gradient of its own cross-entropy, shape ``(B, P)``."""
        x, labels = _check_xy(X, y)
        assert labels is not None
        p = _check_params(params)
        a, da, r = self._backward(p, x, labels)
        b, d, h, k = x.shape[0], x.shape[1], a.shape[1], r.shape[1]
        out = np.empty((b, p.size))
        i = d * h
        _outer_into(out[:, :i], x, da)
        out[:, i : i + h] = da
        i += h
        _outer_into(out[:, i : i + h * k], a, r)
        out[:, i + h * k :] = r
        return out


_MODELS: dict[str, Callable[[], Model]] = {"logreg": LogisticRegression, "mlp": MLP}


def _resolve_model(model: Any) -> Model:
    if isinstance(model, str):
        if model not in _MODELS:
            raise ValueError(f"model must be one of {sorted(_MODELS)} or a Model, got {model!r}")
        return _MODELS[model]()
    for attr in ("init", "per_example_gradients", "gradient", "loss", "accuracy"):
        if not callable(getattr(model, attr, None)):
            raise TypeError(f"model must be a name or have a {attr}() method, got {model!r}")
    return model  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------
# data: the default data sets and client partitions
# ---------------------------------------------------------------------------------------


class Dataset(NamedTuple):
    """A train/test split: float64 features and int64 labels in ``[0, n_classes)``."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(initial=0), self.y_test.max(initial=0))) + 1


_DATASETS = {"digits": "load_digits", "breast-cancer": "load_breast_cancer"}


def load_dataset(name: str = "digits", *, test_fraction: float = 0.25, seed: int = 0) -> Dataset:
    """One of scikit-learn's bundled data sets (no download), split and standardised.

    ``"digits"``: 1797 8x8 images, 64 features, 10 classes; ``"breast-cancer"``: 569
    rows, 30 features, 2 classes. Rows are shuffled with ``seed`` and the last
    ``test_fraction`` of them held out; features are standardised with the training
    rows' mean and standard deviation.
    """
    if name not in _DATASETS:
        raise ValueError(f"name must be one of {sorted(_DATASETS)}, got {name!r}")
    frac = check_scalar(test_fraction, "test_fraction", (lambda x: 0 < x < 1, "in (0, 1)"))
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


def iid_partition(n_samples: int, n_clients: int, *, rng: Any = None) -> list[np.ndarray]:
    """Shuffle ``range(n_samples)`` and cut it into ``n_clients`` parts whose sizes differ
    by at most one; each part is sorted. ``n_clients <= n_samples`` (no client is empty)."""
    n = check_int(n_samples, "n_samples", minimum=1)
    k = check_int(n_clients, "n_clients", minimum=1)
    if k > n:
        raise ValueError(f"n_clients must be <= n_samples = {n} (no empty client), got {k}")
    order = _rng.resolve(rng).permutation(n)
    return [np.sort(part) for part in np.array_split(order, k)]


def dirichlet_partition(
    labels: Any,
    n_clients: int,
    alpha: float,
    *,
    rng: Any = None,
    min_size: int = 1,
    max_tries: int = 100,
) -> list[np.ndarray]:
    """Non-IID label skew: each class is split over the clients in Dirichlet(α) shares.

    For every class ``c`` draw ``p_c ~ Dir(α 1_N)`` and give client ``j`` a fraction
    ``p_cj`` of the class's (shuffled) examples (Yurochkin et al. 2019; Hsu et al. 2019).
    Small α gives each client few classes; large α approaches an IID split. The draw is
    repeated until every client holds at least ``min_size`` examples; after ``max_tries``
    failures ``ValueError`` says to raise α or lower ``n_clients``.
    """
    y = np.asarray(labels)
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


# ---------------------------------------------------------------------------------------
# aggregators (configuration; the server logic is in _Server below)
# ---------------------------------------------------------------------------------------


def _check_dp(noise_multiplier: float, norm_name: str, norm: float, delta: float) -> None:
    """The settings every DP mode shares: sigma >= 0, a clipping norm > 0, delta in (0, 1)."""
    check_scalar(noise_multiplier, "noise_multiplier", NON_NEGATIVE)
    check_scalar(norm, norm_name, POSITIVE)
    check_scalar(delta, "delta", (lambda x: 0 < x < 1, "in (0, 1)"))


@dataclasses.dataclass(frozen=True)
class DPSGD:
    """Client-side DP-SGD: per-example clipping to ``max_grad_norm`` and Gaussian noise
    ``noise_multiplier * max_grad_norm`` on every step, batches Poisson-sampled at rate
    ``batch_size / n_k``; ε is reported at ``delta`` (example-level, worst client)."""

    noise_multiplier: float = 1.0
    max_grad_norm: float = 1.0
    delta: float = 1e-5

    def __post_init__(self) -> None:
        _check_dp(self.noise_multiplier, "max_grad_norm", self.max_grad_norm, self.delta)


@dataclasses.dataclass(frozen=True)
class FedAvg:
    """Plain federated averaging; ``weighted`` weights each update by the client's
    number of examples (McMahan et al. 2017), else all clients count equally."""

    weighted: bool = True


@dataclasses.dataclass(frozen=True)
class DPFedAvg:
    """DP-FedAvg (McMahan et al. 2018): clients are Poisson-sampled at rate ``fraction``;
    each update is clipped to ``clip_norm``, the sum gets N(0, (σ C)²) noise and is divided
    by the expected number of clients. ε is client-level, reported at ``delta``."""

    clip_norm: float = 1.0
    noise_multiplier: float = 1.0
    delta: float = 1e-5

    def __post_init__(self) -> None:
        _check_dp(self.noise_multiplier, "clip_norm", self.clip_norm, self.delta)


@dataclasses.dataclass(frozen=True)
class SecureAggregation:
    """Secure aggregation of the unweighted updates with simulated dropouts.

    ``neighbors=None`` is SecAgg (masks between all pairs); an even int ``k`` is SecAgg+
    (masks with ``k`` neighbours in a random graph; all pairs when ``k`` is not below the
    number of other clients), ``"auto"`` picks ``k`` near ``2 log2`` of the number of
    clients per round (:func:`ppml_fast.aggregation.secure_aggregate`). Each sampled
    client drops out (after sharing its keys, before sending its masked input) with
    probability ``dropout``. Values are clipped to ``[-clip, clip]`` and encoded with
    ``frac_bits`` fractional bits; ``threshold`` is the Shamir threshold (default: a
    majority of each client's neighbours). A round whose masks cannot be removed
    (:class:`ppml_fast.aggregation.SecAggError`) is aborted: the model stays as it was.
    """

    neighbors: int | str | None = None
    dropout: float = 0.0
    clip: float = 4.0
    frac_bits: int = 16
    threshold: int | None = None

    def __post_init__(self) -> None:
        if self.neighbors is not None and self.neighbors != "auto":
            check_int(self.neighbors, "neighbors", minimum=2)
        check_scalar(self.dropout, "dropout", HALF_OPEN_UNIT)
        check_scalar(self.clip, "clip", POSITIVE)
        check_int(self.frac_bits, "frac_bits", minimum=0)
        if self.threshold is not None:
            check_int(self.threshold, "threshold", minimum=1)


@dataclasses.dataclass(frozen=True)
class PaillierAggregation:
    """Additively homomorphic aggregation: clients encrypt (``weight x``) their update
    under a ``key_bits``-bit Paillier key held by a simulated decryptor, encoded to
    ``precision``; the server multiplies ciphertexts, the decryptor decrypts the sum."""

    key_bits: int = 1024
    precision: float = 2.0**-24
    weighted: bool = True

    def __post_init__(self) -> None:
        check_int(self.key_bits, "key_bits", minimum=256)
        check_scalar(self.precision, "precision", POSITIVE)


Aggregator = FedAvg | DPFedAvg | SecureAggregation | PaillierAggregation

_AGGREGATORS: dict[str, Callable[[], Aggregator]] = {
    "fedavg": FedAvg,
    "dp-fedavg": DPFedAvg,
    "secagg": SecureAggregation,
    "secagg+": functools.partial(SecureAggregation, neighbors="auto"),
    "paillier": PaillierAggregation,
}


def _resolve_aggregator(aggregator: Any) -> Aggregator:
    if isinstance(aggregator, str):
        if aggregator not in _AGGREGATORS:
            raise ValueError(
                f"aggregator must be one of {sorted(_AGGREGATORS)} or an aggregator object, "
                f"got {aggregator!r}"
            )
        return _AGGREGATORS[aggregator]()
    if not isinstance(aggregator, (FedAvg, DPFedAvg, SecureAggregation, PaillierAggregation)):
        raise TypeError(
            "aggregator must be a name or FedAvg, DPFedAvg, SecureAggregation or "
            f"PaillierAggregation, got {type(aggregator).__name__}"
        )
    return aggregator


# ---------------------------------------------------------------------------------------
# the client task: a pure function of its inputs and its seed
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _ClientTask:
    model: Model
    params: np.ndarray
    X: np.ndarray
    y: np.ndarray
    epochs: int
    batch_size: int
    lr: float
    dp: DPSGD | None
    seed: np.random.SeedSequence | None  # None: the secure stream
    scale: float  # the update is multiplied by this before it is sent (Paillier weights)
    public_key: paillier.PaillierPublicKey | None
    precision: float


class _ClientResult(NamedTuple):
    update: Any  # (P,) float64, or an EncryptedArray
    steps: int
    sample_rate: float | None
    nbytes: int


def _client_update(task: _ClientTask) -> _ClientResult:
    """Local training on one client's data; returns the (encrypted) model delta."""
    gen = _rng.default_rng(task.seed)
    model, X, y = task.model, task.X, task.y
    params = task.params.copy()
    n = y.size
    if task.dp is None:
        steps = 0
        for _ in range(task.epochs):
            order = gen.permutation(n)
            for start in range(0, n, task.batch_size):
                batch = order[start : start + task.batch_size]
                params -= task.lr * model.gradient(params, X[batch], y[batch])
                steps += 1
        q = None
    else:
        expected = min(task.batch_size, n)
        q = expected / n
        steps = max(1, math.ceil(task.epochs * n / expected))
        for _ in range(steps):
            batch = np.flatnonzero(gen.random(n) < q)
            grads = model.per_example_gradients(params, X[batch], y[batch])
            step = clipping.dp_aggregate(
                grads,
                task.dp.max_grad_norm,
                task.dp.noise_multiplier,
                rng=gen,
                expected_batch_size=expected,
                sample_rate=q,
            )
            params -= task.lr * step.gradient
    update = params - task.params
    if task.scale != 1.0:
        update *= task.scale
    if task.public_key is None:
        return _ClientResult(update, steps, q, update.nbytes)
    enc = task.public_key.encrypt_batch(update, precision=task.precision)
    return _ClientResult(enc, steps, q, enc.nbytes)


# ---------------------------------------------------------------------------------------
# the server
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RoundRecord:
    """What one round did.

    ``train_loss`` and ``test_accuracy`` are the global model's after the round (the loss
    over all clients' training data: a monitoring figure the simulation can see, not a
    released one). ``epsilon`` is the ε spent so far at the run's δ (``None`` without DP);
    ``accounting`` is the accountant history behind it, Opacus' ``(noise_multiplier,
    sample_rate, steps)`` triples (for DP-SGD, of the client with the largest ε).
    ``bytes_per_client`` is what one client sends the server (``None`` when an aborted
    secure-aggregation round does not say); times are wall seconds. ``aborted`` marks a
    round whose aggregate could not be computed (the model did not change).
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

    def as_dict(self) -> dict[str, Any]:
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


def history_table(history: Sequence[RoundRecord], markdown: bool = False) -> str:
    """The per-round records as a text (or Markdown) table."""
    from .._tables import render

    head = [title for _, title, _ in _COLUMNS]
    body = []
    for rec in history:
        row = []
        for attr, _, fmt in _COLUMNS:
            value = getattr(rec, attr)
            row.append("-" if value is None else fmt.format(value))
            if attr == "survivors" and rec.aborted:
                row[-1] += " (aborted)"
        body.append(row)
    return render(head, body, markdown)


@dataclasses.dataclass(frozen=True)
class SimulationResult:
    """The final global model and the per-round history."""

    params: np.ndarray
    model: Model
    history: list[RoundRecord]

    def records(self) -> list[dict[str, Any]]:
        """The history as a list of dicts (``pandas.DataFrame(result.records())``)."""
        return [r.as_dict() for r in self.history]

    def table(self, markdown: bool = False) -> str:
        return history_table(self.history, markdown)


def _child(master: np.random.SeedSequence | None, *key: int) -> np.random.SeedSequence | None:
    """The seed of stream ``key`` (a pure function of the master seed and the key)."""
    if master is None:
        return None
    return np.random.SeedSequence(master.entropy, spawn_key=(*master.spawn_key, *key))


_PARTITION, _INIT, _SERVER, _CLIENT = range(4)


class _Outcome(NamedTuple):
    mean: np.ndarray | None  # None: the round was aborted
    survivors: int
    bytes_per_client: int | None


class _Server:
    """Aggregates one round's client results according to the aggregator."""

    def __init__(self, agg: Aggregator, n_clients: int, fraction: float, dim: int) -> None:
        self.agg = agg
        self.n_clients = n_clients
        self.fraction = fraction
        self.dim = dim
        self.public_key: paillier.PaillierPublicKey | None = None
        self._private_key: paillier.PaillierPrivateKey | None = None
        if isinstance(agg, PaillierAggregation):
            self.public_key, self._private_key = paillier.generate_paillier_keypair(
                n_length=agg.key_bits
            )
        self.accountant = accounting.RDPAccountant() if isinstance(agg, DPFedAvg) else None

    def client_scale(self, count: float) -> float:
        """What a client multiplies its update by: its example count for weighted
        Paillier aggregation (the decryptor divides the sum by the total count)."""
        agg = self.agg
        return count if isinstance(agg, PaillierAggregation) and agg.weighted else 1.0

    def sample(self, gen: np.random.Generator) -> np.ndarray:
        """The round's clients: Poisson at rate ``fraction`` under DP-FedAvg (needed for
        amplification by sampling), else a uniform subset of fixed size."""
        n = self.n_clients
        if isinstance(self.agg, DPFedAvg):
            return np.flatnonzero(gen.random(n) < self.fraction)
        m = max(1, round(self.fraction * n))
        return np.sort(gen.choice(n, m, replace=False))

    def aggregate(
        self, results: list[_ClientResult], counts: np.ndarray, gen: np.random.Generator | None
    ) -> _Outcome:
        """The round's mean update (``counts``: the clients' example counts; ``gen``: the
        round's server stream, None for the secure one)."""
        agg = self.agg
        if isinstance(agg, SecureAggregation):
            return self._secure(agg, results, gen)
        sent = max((r.nbytes for r in results), default=0)
        if isinstance(agg, FedAvg):
            updates = np.stack([r.update for r in results])
            mean = aggregation.fedavg(updates, counts if agg.weighted else None)
            return _Outcome(mean, len(results), sent)
        if isinstance(agg, DPFedAvg):
            assert self.accountant is not None
            updates = np.stack([r.update for r in results]) if results else np.zeros((0, self.dim))
            expected = self.fraction * self.n_clients
            out = aggregation.dp_fedavg(
                updates,
                agg.clip_norm,
                agg.noise_multiplier,
                rng=gen,
                sample_rate=self.fraction,
                expected_clients=expected,
            )
            self.accountant.step(**out.accounting)
            return _Outcome(np.asarray(out.update), len(results), sent)
        assert self._private_key is not None
        total = functools.reduce(operator.add, [r.update for r in results])
        plain = np.asarray(self._private_key.decrypt_batch(total), dtype=np.float64)
        denom = float(counts.sum()) if agg.weighted else float(len(results))
        return _Outcome(plain / denom, len(results), sent)

    def _secure(
        self,
        agg: SecureAggregation,
        results: list[_ClientResult],
        gen: np.random.Generator | None,
    ) -> _Outcome:
        """SecAgg(+) of the results, each sampled client dropping with rate ``dropout``."""
        m = len(results)
        dropped = (
            np.flatnonzero(_rng.resolve(gen).random(m) < agg.dropout)
            if agg.dropout
            else np.zeros(0, np.int64)
        )
        k = agg.neighbors
        if isinstance(k, int) and k >= m - 1:
            k = None
        try:
            out = aggregation.secure_aggregate(
                np.stack([r.update for r in results]),
                clip=agg.clip,
                frac_bits=agg.frac_bits,
                threshold=agg.threshold,
                neighbors=k,
                dropout=[int(i) for i in dropped],
                rng=gen,
            )
        except aggregation.SecAggError:
            return _Outcome(None, m - dropped.size, None)
        survivors = len(out.survivors)
        mean = np.asarray(out.sum, dtype=np.float64) / survivors
        return _Outcome(mean, survivors, int(out.bytes_per_client))


def _progress_bar(rounds: int, enabled: bool | None) -> Any:
    if enabled is False or (enabled is None and not sys.stderr.isatty()):
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if enabled:
            raise ImportError("progress=True needs tqdm: pip install tqdm") from None
        return None
    return tqdm(total=rounds, unit="round", desc="federated rounds")


def run_simulation(
    data: Dataset,
    *,
    model: Model | str = "logreg",
    clients: int | None = None,
    alpha: float | None = None,
    partition: Sequence[Any] | None = None,
    rounds: int = 10,
    fraction: float = 0.5,
    local_epochs: int = 2,
    batch_size: int = 16,
    lr: float = 0.3,
    dp_sgd: DPSGD | None = None,
    aggregator: Aggregator | str = "fedavg",
    seed: int | np.random.SeedSequence | None = None,
    executor: Executor | None = None,
    progress: bool | None = None,
) -> SimulationResult:
    """Federated training of ``model`` on ``data`` over simulated clients.

    Parameters
    ----------
    data : Dataset
        Training rows (split over the clients) and test rows (the server's evaluation).
    model : Model or {"logreg", "mlp"}
    clients : int, optional
        Number of clients (default 20), split IID, or Dirichlet(``alpha``) by label.
    partition : sequence of index arrays, optional
        An explicit split of the training rows (then ``clients`` and ``alpha`` must be
        None): client ``j`` holds ``X_train[partition[j]]``.
    rounds : int >= 1
    fraction : float in (0, 1]
        The share of clients sampled per round: a fixed-size uniform subset, or each
        client independently at this rate under DP-FedAvg.
    local_epochs, batch_size, lr
        Local SGD: epochs over the client's data in shuffled batches (DP-SGD: Poisson
        batches of expected size ``batch_size``, ``epochs n_k / batch_size`` steps).
    dp_sgd : DPSGD, optional
        Train each client with DP-SGD; ε is reported per round (example level).
    aggregator : aggregator object or {"fedavg", "dp-fedavg", "secagg", "secagg+",
        "paillier"}
        How the server combines the updates (see the module docstring).
    seed : int or SeedSequence, optional
        Master seed for partitions, initial model, sampling and noise; None draws all of
        them from the secure stream.
    executor : concurrent.futures.Executor, optional
        Where client tasks run (default: a thread pool with one worker per core;
        ``distributed.Client(...).get_executor()`` for Dask).
    progress : bool, optional
        A tqdm progress bar (default: when stderr is a terminal and tqdm is installed).

    Returns
    -------
    SimulationResult
        The final parameters and one :class:`RoundRecord` per round.
    """
    X, y = _check_data(data)
    mdl = _resolve_model(model)
    agg = _resolve_aggregator(aggregator)
    n_rounds = check_int(rounds, "rounds", minimum=1)
    frac = check_scalar(fraction, "fraction", _UNIT_INTERVAL)
    epochs = check_int(local_epochs, "local_epochs", minimum=1)
    bsize = check_int(batch_size, "batch_size", minimum=1)
    step = check_scalar(lr, "lr", POSITIVE)
    if dp_sgd is not None and not isinstance(dp_sgd, DPSGD):
        raise TypeError(f"dp_sgd must be a DPSGD or None, got {type(dp_sgd).__name__}")
    if dp_sgd is not None and isinstance(agg, DPFedAvg):
        raise ValueError(
            "dp_sgd cannot be combined with the dp-fedavg aggregator: choose example-level "
            "DP (dp_sgd) or client-level DP (DPFedAvg)"
        )
    if executor is not None and not isinstance(executor, Executor):
        raise TypeError(
            "executor must be a concurrent.futures.Executor (e.g. a Dask client's "
            f"get_executor()), got {type(executor).__name__}"
        )
    if isinstance(seed, np.random.SeedSequence):
        master: np.random.SeedSequence | None = seed
    elif seed is None:
        master = None
    else:
        master = np.random.SeedSequence(check_int(seed, "seed", minimum=0))

    parts = _partition(y, clients, alpha, partition, _rng.default_rng(_child(master, _PARTITION)))
    n_clients = len(parts)
    counts = np.array([p.size for p in parts], dtype=np.float64)
    params = mdl.init(_rng.default_rng(_child(master, _INIT)), X.shape[1], data.n_classes)
    if isinstance(agg, SecureAggregation) and round(frac * n_clients) < 2:
        raise ValueError(
            f"secure aggregation needs >= 2 clients per round: fraction * clients must be "
            f">= 1.5, got {frac} * {n_clients}"
        )
    server = _Server(agg, n_clients, frac, params.size)
    client_accountants: dict[int, accounting.RDPAccountant] = {}

    own_pool = executor is None
    pool = ThreadPoolExecutor(max_workers=_config.get_num_threads()) if own_pool else executor
    assert pool is not None
    bar = _progress_bar(n_rounds, progress)
    history: list[RoundRecord] = []
    try:
        for r in range(n_rounds):
            gen = _rng.default_rng(_child(master, _SERVER, r))
            chosen = server.sample(gen)
            tasks = [
                _ClientTask(
                    mdl,
                    params,
                    X[parts[c]],
                    y[parts[c]],
                    epochs,
                    bsize,
                    step,
                    dp_sgd,
                    _child(master, _CLIENT, r, int(c)),
                    server.client_scale(float(counts[c])),
                    server.public_key,
                    agg.precision if isinstance(agg, PaillierAggregation) else 0.0,
                )
                for c in chosen
            ]
            t0 = time.perf_counter()
            futures = [pool.submit(_client_update, t) for t in tasks]
            results = [f.result() for f in futures]
            t1 = time.perf_counter()
            outcome = server.aggregate(results, counts[chosen], gen if master is not None else None)
            t2 = time.perf_counter()
            if outcome.mean is not None:
                params = params + outcome.mean
            eps, acc_hist = None, None
            if dp_sgd is not None:
                for c, res in zip(chosen, results, strict=True):
                    acct = client_accountants.setdefault(int(c), accounting.RDPAccountant())
                    assert res.sample_rate is not None
                    for _ in range(res.steps):
                        acct.step(
                            noise_multiplier=dp_sgd.noise_multiplier, sample_rate=res.sample_rate
                        )
                eps, acc_hist = _worst(client_accountants, dp_sgd.delta)
            elif isinstance(agg, DPFedAvg):
                assert server.accountant is not None
                eps = server.accountant.get_epsilon(agg.delta)
                acc_hist = tuple(server.accountant.history)
            history.append(
                RoundRecord(
                    round=r + 1,
                    clients=len(chosen),
                    survivors=outcome.survivors,
                    train_loss=mdl.loss(params, X, y),
                    test_accuracy=mdl.accuracy(params, data.X_test, data.y_test),
                    epsilon=eps,
                    bytes_per_client=outcome.bytes_per_client,
                    client_s=t1 - t0,
                    aggregation_s=t2 - t1,
                    aborted=outcome.mean is None,
                    accounting=acc_hist,
                )
            )
            if bar is not None:
                bar.update(1)
                bar.set_postfix(acc=f"{history[-1].test_accuracy:.3f}")
    finally:
        if bar is not None:
            bar.close()
        if own_pool:
            pool.shutdown()
    return SimulationResult(params, mdl, history)


def _worst(
    accountants: dict[int, accounting.RDPAccountant], delta: float
) -> tuple[float, tuple[tuple[float, float, int], ...]]:
    """The largest ε over the clients' accountants, and that accountant's history."""
    best_eps, best_hist = 0.0, ()  # type: tuple[float, tuple[tuple[float, float, int], ...]]
    for c in sorted(accountants):
        eps = accountants[c].get_epsilon(delta)
        if eps > best_eps or not best_hist:
            best_eps, best_hist = eps, tuple(accountants[c].history)
    return best_eps, best_hist


def _check_data(data: Any) -> tuple[np.ndarray, np.ndarray]:
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


def _partition(
    y: np.ndarray,
    clients: int | None,
    alpha: float | None,
    partition: Any,
    gen: np.random.Generator,
) -> list[np.ndarray]:
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


# ---------------------------------------------------------------------------------------
# plotting
# ---------------------------------------------------------------------------------------


def plot(history: SimulationResult | Sequence[RoundRecord], path: str | os.PathLike[str]) -> None:
    """Save test accuracy (and ε, for DP runs) against the round to ``path``."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("plot needs matplotlib: pip install matplotlib") from exc
    recs = history.history if isinstance(history, SimulationResult) else list(history)
    rounds = [r.round for r in recs]
    private = any(r.epsilon is not None for r in recs)
    fig, axes = plt.subplots(
        1, 2 if private else 1, figsize=(10 if private else 5, 3.5), squeeze=False
    )
    axes[0, 0].plot(rounds, [r.test_accuracy for r in recs], marker="o")
    axes[0, 0].set(xlabel="round", ylabel="test accuracy")
    if private:
        axes[0, 1].plot(rounds, [r.epsilon for r in recs], marker="o", color="tab:red")
        axes[0, 1].set(xlabel="round", ylabel="epsilon spent")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
