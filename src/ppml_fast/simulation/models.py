"""The simulation's numpy models: logistic regression and a one-hidden-layer MLP.

A model is a set of numpy functions of a flat float64 parameter vector (:class:`Model`):
initial parameters, the mean cross-entropy of a batch, its gradient, and the per-example
gradients that DP-SGD clips (computed for the whole batch at once, no loop over
examples).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Protocol

import numpy as np

from .. import rng as _rng
from .._types import ArrayLike, RngLike
from .._validation import check_int

__all__ = ["MLP", "LogisticRegression", "Model"]


class Model(Protocol):
    """What the simulation needs from a model: numpy functions of a flat parameter vector.

    ``X`` is ``(B, n_features)`` float64, ``y`` is ``(B,)`` int labels in ``[0, n_classes)``;
    the loss is the mean cross-entropy over the batch.
    """

    def init(self, rng: RngLike, n_features: int, n_classes: int) -> np.ndarray:
        """The initial parameters, shape ``(P,)``."""
        ...

    def loss(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
        """The mean cross-entropy of the batch."""
        ...

    def gradient(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The gradient of :meth:`loss`, shape ``(P,)``."""
        ...

    def per_example_gradients(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Each example's gradient of its own cross-entropy, shape ``(B, P)``."""
        ...

    def predict(self, params: np.ndarray, X: np.ndarray) -> np.ndarray:
        """The predicted class of each row of ``X``, shape ``(B,)``."""
        ...

    def accuracy(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
        """The fraction of rows of ``X`` whose predicted class is ``y``."""
        ...


def _check_params(params: ArrayLike) -> np.ndarray:
    p = np.asarray(params)
    if p.ndim != 1 or p.dtype.kind != "f":
        raise ValueError(f"params must be a 1-d float array, got shape {p.shape} {p.dtype}")
    return p


def _check_xy(X: ArrayLike, y: ArrayLike | None) -> tuple[np.ndarray, np.ndarray | None]:
    """``X`` as a 2-d array and ``y`` (when given) as its ``(B,)`` integer labels.

    Parameters
    ----------
    X : array_like, shape (B, n_features)
    y : array_like, shape (B,), optional
        Integer class labels (``None``: only ``X`` is checked).

    Returns
    -------
    X, y : ndarray
        The arrays (no copy); ``y`` is ``None`` when it was not given.

    Raises
    ------
    ValueError
        ``X`` is not 2-d or ``y`` does not have one entry per row of ``X``.
    TypeError
        ``y`` does not hold integers.
    """
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


def _check_batch(X: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    x, labels = _check_xy(X, y)
    assert labels is not None
    return x, labels


def _softmax_residual(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """softmax(logits) - onehot(y): the gradient of the cross-entropy wrt the logits."""
    r: np.ndarray = logits - logits.max(axis=1, keepdims=True)
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


def _sigmoid(z: np.ndarray) -> np.ndarray:
    s: np.ndarray = np.exp(-np.logaddexp(0.0, -z))
    return s


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
        """The predicted class of each row of ``X``.

        Parameters
        ----------
        params : ndarray, shape (P,)
        X : ndarray, shape (B, n_features)

        Returns
        -------
        ndarray, shape (B,)
            The class with the largest logit (the sign of the logit for a binary
            logistic regression).
        """
        z = self.logits(_check_params(params), _check_xy(X, None)[0])
        if z.shape[1] == 1:
            return (z[:, 0] > 0).astype(np.int64)
        labels: np.ndarray = np.argmax(z, axis=1)
        return labels

    def accuracy(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
        """The fraction of rows of ``X`` whose predicted class is ``y``.

        Raises
        ------
        ValueError
            ``X`` has no rows.
        """
        x, labels = _check_batch(X, y)
        if x.shape[0] == 0:
            raise ValueError("X must have at least one row to measure accuracy")
        return float(np.mean(self.predict(params, x) == labels))


@dataclasses.dataclass(frozen=True)
class LogisticRegression(_Classifier):
    """Logistic regression: binary (sigmoid, ``d + 1`` parameters) or multinomial
    (softmax, ``(d + 1) K`` parameters).

    Parameters are ``[W.ravel(), b]`` with ``W`` of shape ``(d, K)`` (``(d,)`` for the
    binary model). The loss is the mean cross-entropy (no penalty).

    Parameters
    ----------
    multinomial : bool, optional
        ``None`` picks the binary model for two classes and softmax otherwise; ``True``
        forces softmax.
    """

    multinomial: bool | None = None

    def init(self, rng: RngLike, n_features: int, n_classes: int) -> np.ndarray:
        """Zero weights and biases (the loss is convex; ``rng`` is accepted for symmetry).

        Parameters
        ----------
        rng : RngLike
            Unused.
        n_features : int >= 1
        n_classes : int >= 2

        Returns
        -------
        ndarray, shape (P,)
            ``P = d + 1`` for the binary model, ``(d + 1) K`` for softmax.
        """
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
        z: np.ndarray = X @ w + b
        return z

    def _residual(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        z = self.logits(params, X)
        if z.shape[1] == 1:
            r: np.ndarray = (_sigmoid(z[:, 0]) - y)[:, None]
            return r
        return _softmax_residual(z, y)

    def loss(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
        """Mean cross-entropy of the batch (0 for an empty batch)."""
        x, labels = _check_batch(X, y)
        z = self.logits(_check_params(params), x)
        if z.shape[1] == 1:
            zz = z[:, 0]
            return float(np.mean(np.logaddexp(0.0, zz) - labels * zz)) if zz.size else 0.0
        return _softmax_loss(z, labels)

    def gradient(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Gradient of :meth:`loss` (the mean over the batch), shape ``(P,)``."""
        x, labels = _check_batch(X, y)
        p = _check_params(params)
        r = self._residual(p, x, labels)
        n = max(x.shape[0], 1)
        g: np.ndarray = np.concatenate([(x.T @ r).ravel(), r.sum(axis=0)]) / n
        return g

    def per_example_gradients(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Each example's gradient of its own cross-entropy, shape ``(B, P)``.

        The weight block of row ``i`` is the outer product ``x_i ⊗ r_i`` of the example
        and its logit residual, written in place for the whole batch.
        """
        x, labels = _check_batch(X, y)
        p = _check_params(params)
        r = self._residual(p, x, labels)
        b, d, k = x.shape[0], x.shape[1], r.shape[1]
        out = np.empty((b, p.size))
        _outer_into(out[:, : d * k], x, r)
        out[:, d * k :] = r
        return out


_ACTIVATIONS = ("tanh", "relu")


@dataclasses.dataclass(frozen=True)
class MLP(_Classifier):
    """A one-hidden-layer perceptron with a softmax output.

    Parameters are ``[W1.ravel(), b1, W2.ravel(), b2]`` with ``W1`` of shape ``(d, H)``
    and ``W2`` of shape ``(H, K)``; ``init`` draws Glorot-uniform weights (Glorot &
    Bengio 2010) and zero biases.

    Parameters
    ----------
    hidden : int >= 1
        ``H``, the width of the hidden layer.
    activation : {"tanh", "relu"}

    Raises
    ------
    ValueError
        ``hidden < 1`` or an unknown ``activation``.
    """

    hidden: int = 32
    activation: str = "tanh"

    def __post_init__(self) -> None:
        check_int(self.hidden, "hidden", minimum=1)
        if not isinstance(self.activation, str) or self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {self.activation!r}")

    def init(self, rng: RngLike, n_features: int, n_classes: int) -> np.ndarray:
        """Glorot-uniform weights, ``U(-a, a)`` with ``a = sqrt(6 / (fan_in + fan_out))``,
        and zero biases.

        Parameters
        ----------
        rng : RngLike
            The stream the weights are drawn from (see :mod:`ppml_fast.rng`).
        n_features : int >= 1
        n_classes : int >= 2

        Returns
        -------
        ndarray, shape (P,)
            ``P = (d + 1) H + (H + 1) K``.
        """
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
        """The output layer's pre-softmax values, shape ``(B, K)``."""
        return self._forward(params, X)[3]

    def loss(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
        """Mean cross-entropy of the batch (0 for an empty batch)."""
        x, labels = _check_batch(X, y)
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
        x, labels = _check_batch(X, y)
        a, da, r = self._backward(_check_params(params), x, labels)
        n = max(x.shape[0], 1)
        g: np.ndarray = (
            np.concatenate([(x.T @ da).ravel(), da.sum(axis=0), (a.T @ r).ravel(), r.sum(axis=0)])
            / n
        )
        return g

    def per_example_gradients(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Each example's gradient of its own cross-entropy, shape ``(B, P)``.

        Backpropagation for the whole batch at once: each weight block of row ``i`` is
        the outer product of the layer's input and its delta for example ``i``.
        """
        x, labels = _check_batch(X, y)
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


def _resolve_model(model: Model | str) -> Model:
    """The model named ``model`` (``"logreg"``, ``"mlp"``), or ``model`` itself.

    Raises
    ------
    ValueError
        An unknown name.
    TypeError
        Neither a name nor an object with the :class:`Model` methods the simulation calls.
    """
    if isinstance(model, str):
        if model not in _MODELS:
            raise ValueError(f"model must be one of {sorted(_MODELS)} or a Model, got {model!r}")
        return _MODELS[model]()
    for attr in ("init", "per_example_gradients", "gradient", "loss", "accuracy"):
        if not callable(getattr(model, attr, None)):
            raise TypeError(f"model must be a name or have a {attr}() method, got {model!r}")
    return model
