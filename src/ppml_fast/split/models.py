"""Numpy layered models that can be cut between parties.

A :class:`LayeredModel` is a stack of dense layers, ``a_{l+1} = φ(a_l W_l + b_l)`` with
``φ`` ReLU or tanh after every layer but the last, and a softmax cross-entropy head on
the last layer's outputs (the logits). With no hidden layer it is multinomial logistic
regression; with one it is the simulation's one-hidden-layer perceptron. Parameters are
one flat float64 vector ``[W_1.ravel(), b_1, W_2.ravel(), b_2, ...]`` (``W_l`` of shape
``(fan_in, fan_out)``), the layout of :class:`ppml_fast.simulation.MLP` and of the
multinomial :class:`ppml_fast.simulation.LogisticRegression`.

A model is cut into contiguous :class:`Segment` s: :meth:`LayeredModel.split` gives the
bottom (layers ``[0, cut)``, the client's), the top (the rest, the server's) and, for a
U-shaped split, a head (the last ``head`` layers, kept by the client with the labels).
Each segment has a forward pass that returns its output and what its backward pass needs,
and a backward pass that takes the gradient with respect to its output -- for the bottom,
the cut-layer gradient the server returns -- and gives the gradient of its parameters and,
when asked, of its input. Backpropagation through the segments of a split performs the
same floating-point operations, in the same order, as backpropagation through the unsplit
model (:meth:`LayeredModel.gradient`), so the gradients are bit-for-bit equal.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import numpy as np

from .. import rng as _rng
from .._types import RngLike
from .._validation import check_int

__all__ = ["LayeredModel", "Segment", "SplitModel", "softmax_cross_entropy"]

_ACTIVATIONS = ("relu", "tanh")


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """The mean softmax cross-entropy of a batch and its gradient with respect to the logits.

    ``L = (1/B) Σ_i [log Σ_k exp(z_ik) - z_{i y_i}]``; ``∂L/∂z = (softmax(z) - onehot(y)) / B``.

    Parameters
    ----------
    logits : ndarray, shape (B, K)
    y : ndarray of int, shape (B,)
        Labels in ``[0, K)``.

    Returns
    -------
    loss : float
        0 for an empty batch.
    grad : ndarray, shape (B, K)
    """
    b = logits.shape[0]
    if b == 0:
        return 0.0, np.zeros_like(logits)
    m = logits.max(axis=1, keepdims=True)
    e = np.exp(logits - m)
    s = e.sum(axis=1, keepdims=True)
    rows = np.arange(b)
    loss = float(np.mean(m[:, 0] + np.log(s[:, 0]) - logits[rows, y]))
    g = e / s
    g[rows, y] -= 1.0
    g /= b
    return loss, g


class _Cache(NamedTuple):
    """What a segment's backward pass needs: each layer's input and pre-activation."""

    inputs: list[np.ndarray]
    pre: list[np.ndarray]
    outputs: list[np.ndarray]


@dataclasses.dataclass(frozen=True)
class Segment:
    """A contiguous run of dense layers, the part of a model one party holds.

    Parameters
    ----------
    sizes : tuple of int
        The widths ``(fan_in, n_1, ..., n_m)``: ``m = len(sizes) - 1`` layers; ``m = 0`` is
        the identity (a party with no layers).
    activate_last : bool
        Apply the activation after the last layer too (every segment but the model's last
        one: its output is a hidden layer, not the logits).
    activation : {"relu", "tanh"}
    """

    sizes: tuple[int, ...]
    activate_last: bool
    activation: str = "relu"

    @property
    def n_layers(self) -> int:
        """The number of dense layers."""
        return len(self.sizes) - 1

    @property
    def n_params(self) -> int:
        """The length of the flat parameter vector."""
        return sum((a + 1) * b for a, b in zip(self.sizes[:-1], self.sizes[1:], strict=True))

    def init(self, rng: RngLike = None) -> np.ndarray:
        """Glorot-uniform weights ``U(-a, a)``, ``a = sqrt(6 / (fan_in + fan_out))``, zero
        biases (drawn layer by layer, as :class:`ppml_fast.simulation.MLP` draws them)."""
        gen = _rng.resolve(rng)
        parts = []
        for fi, fo in zip(self.sizes[:-1], self.sizes[1:], strict=True):
            a = math.sqrt(6.0 / (fi + fo))
            parts += [gen.uniform(-a, a, fi * fo), np.zeros(fo)]
        return np.concatenate(parts) if parts else np.zeros(0)

    def layers(self, params: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(W_l, b_l)`` views into ``params``.

        Raises
        ------
        ValueError
            ``params`` is not a 1-d array of :attr:`n_params` entries.
        """
        if params.ndim != 1 or params.size != self.n_params:
            raise ValueError(
                f"params must be a 1-d array of {self.n_params} entries for layer sizes "
                f"{self.sizes}, got shape {params.shape}"
            )
        out, i = [], 0
        for fi, fo in zip(self.sizes[:-1], self.sizes[1:], strict=True):
            w = params[i : i + fi * fo].reshape(fi, fo)
            i += fi * fo
            out.append((w, params[i : i + fo]))
            i += fo
        return out

    def _act(self, z: np.ndarray) -> np.ndarray:
        return np.maximum(z, 0.0) if self.activation == "relu" else np.tanh(z)

    def forward(self, params: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, _Cache]:
        """The segment's output for the rows of ``x``, and the cache for :meth:`backward`.

        Parameters
        ----------
        params : ndarray, shape (n_params,)
        x : ndarray, shape (B, sizes[0])

        Returns
        -------
        out : ndarray, shape (B, sizes[-1])
        cache : opaque
        """
        cache = _Cache([], [], [])
        a = x
        layers = self.layers(params)
        for j, (w, b) in enumerate(layers):
            cache.inputs.append(a)
            z = a @ w + b
            cache.pre.append(z)
            a = self._act(z) if (j < len(layers) - 1 or self.activate_last) else z
            cache.outputs.append(a)
        return a, cache

    def backward(
        self, params: np.ndarray, cache: _Cache, grad_out: np.ndarray, *, input_grad: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Backpropagate ``grad_out = ∂L/∂out`` through the segment.

        Parameters
        ----------
        params : ndarray
            The parameters :meth:`forward` used.
        cache : opaque
            :meth:`forward`'s cache.
        grad_out : ndarray, shape (B, sizes[-1])
            The gradient with respect to the segment's output (the bottom's: the
            cut-layer gradient the next party returns).
        input_grad : bool
            Also return ``∂L/∂x`` (a segment that receives data from another party must
            send it back; the first segment needs none).

        Returns
        -------
        grad_params : ndarray, shape (n_params,)
            In the flat layout of ``params``.
        grad_in : ndarray, shape (B, sizes[0]), or None
        """
        layers = self.layers(params)
        grads: list[np.ndarray] = []
        g = grad_out
        for j in range(len(layers) - 1, -1, -1):
            w = layers[j][0]
            if j < len(layers) - 1 or self.activate_last:
                if self.activation == "relu":
                    g = g * (cache.pre[j] > 0)
                else:
                    a = cache.outputs[j]
                    g = g * (1.0 - a * a)
            grads.append(g.sum(axis=0))
            grads.append((cache.inputs[j].T @ g).ravel())
            if j > 0 or input_grad:
                g = g @ w.T
        grads.reverse()
        flat = np.concatenate(grads) if grads else np.zeros(0)
        return flat, (g if input_grad else None)


class SplitModel(NamedTuple):
    """A model cut between parties (:meth:`LayeredModel.split`).

    Attributes
    ----------
    bottom : Segment
        Layers ``[0, cut)``: the client's (a party's, in vertical splits).
    top : Segment
        The server's layers (the label holder's, in vertical splits).
    head : Segment or None
        U-shaped splits: the last layers, kept by the client with the labels.
    """

    bottom: Segment
    top: Segment
    head: Segment | None

    def segments(self) -> tuple[Segment, ...]:
        """The parts in forward order."""
        return (self.bottom, self.top) if self.head is None else (self.bottom, self.top, self.head)

    def split_params(self, params: np.ndarray) -> tuple[np.ndarray, ...]:
        """Cut a flat parameter vector of the whole model into the parts' vectors (copies)."""
        out, i = [], 0
        for seg in self.segments():
            out.append(params[i : i + seg.n_params].copy())
            i += seg.n_params
        return tuple(out)


@dataclasses.dataclass(frozen=True)
class LayeredModel:
    """A multilayer perceptron with a softmax cross-entropy head, to be cut between parties.

    Parameters
    ----------
    sizes : sequence of int
        ``(n_features, hidden_1, ..., n_classes)``: ``(d, K)`` is multinomial logistic
        regression, ``(d, H, K)`` the simulation's one-hidden-layer MLP.
    activation : {"relu", "tanh"}
        After every layer but the last.

    Raises
    ------
    ValueError
        Fewer than two sizes, a size < 1 (< 2 for the classes), an unknown activation.
    TypeError
        A size that is not an int.
    """

    sizes: tuple[int, ...]
    activation: str = "relu"

    def __post_init__(self) -> None:
        if (
            isinstance(self.sizes, (str, bytes))
            or not hasattr(self.sizes, "__len__")
            # an array must be 1-d (a 0-d one has __len__ but no length)
            or (isinstance(self.sizes, np.ndarray) and self.sizes.ndim != 1)
        ):
            raise TypeError(
                f"sizes must be a 1-d sequence of ints, got {type(self.sizes).__name__}"
            )
        sizes = tuple(check_int(s, "sizes[i]", minimum=1) for s in self.sizes)
        if len(sizes) < 2:
            raise ValueError(
                f"sizes must hold >= 2 entries (n_features, ..., n_classes), got {sizes}"
            )
        if sizes[-1] < 2:
            raise ValueError(f"sizes[-1] (the classes) must be >= 2, got {sizes[-1]}")
        if not isinstance(self.activation, str) or self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {self.activation!r}")
        object.__setattr__(self, "sizes", sizes)

    @property
    def n_layers(self) -> int:
        """The number of dense layers."""
        return len(self.sizes) - 1

    def segment(self, start: int, stop: int) -> Segment:
        """Layers ``[start, stop)`` as a :class:`Segment`."""
        return Segment(self.sizes[start : stop + 1], stop < self.n_layers, self.activation)

    @property
    def whole(self) -> Segment:
        """The unsplit model as one segment."""
        return self.segment(0, self.n_layers)

    def init(self, rng: RngLike = None) -> np.ndarray:
        """Initial parameters of the whole model (see :meth:`Segment.init`)."""
        return self.whole.init(rng)

    def split(self, cut: int, *, head: int = 0) -> SplitModel:
        """Cut the model after layer ``cut``.

        Parameters
        ----------
        cut : int in [1, n_layers - head]
            The bottom holds layers ``[0, cut)``; its output (after the activation, unless
            it is the logits) is the cut layer. ``cut = n_layers`` leaves the top with no
            layer: the server only computes the loss (logistic regression's only cut).
        head : int >= 0
            U-shaped: the client keeps the last ``head`` layers; the server then holds
            layers ``[cut, n_layers - head)``, at least one.

        Raises
        ------
        ValueError
            ``cut`` or ``head`` out of range (the message gives the range).
        """
        h = check_int(head, "head", minimum=0, maximum=self.n_layers - 2 if head else 0)
        c = check_int(cut, "cut", minimum=1, maximum=self.n_layers - h - (1 if h else 0))
        bottom = self.segment(0, c)
        top = self.segment(c, self.n_layers - h)
        return SplitModel(
            bottom, top, self.segment(self.n_layers - h, self.n_layers) if h else None
        )

    def logits(self, params: np.ndarray, X: np.ndarray) -> np.ndarray:
        """The last layer's outputs, shape ``(B, n_classes)``."""
        return self.whole.forward(params, X)[0]

    def loss(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
        """The mean cross-entropy of the batch."""
        return softmax_cross_entropy(self.logits(params, X), y)[0]

    def gradient(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The gradient of :meth:`loss`, by backpropagation through the whole model."""
        z, cache = self.whole.forward(params, X)
        _, g = softmax_cross_entropy(z, y)
        return self.whole.backward(params, cache, g, input_grad=False)[0]

    def predict(self, params: np.ndarray, X: np.ndarray) -> np.ndarray:
        """The class with the largest logit for each row of ``X``."""
        out: np.ndarray = np.argmax(self.logits(params, X), axis=1)
        return out
