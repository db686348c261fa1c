"""Split-learning protocols: horizontal SplitNN (label-sharing and U-shaped), SplitFed and
vertical split learning, with the privacy defences on the messages that cross the cut.

Configurations
--------------
- :class:`SplitNN` -- horizontal SplitNN (Gupta & Raskar 2018): every client holds the
  bottom layers (:meth:`~ppml_fast.split.models.LayeredModel.split`) and rows of its own;
  clients take turns with one server, each training on its rows and then handing its
  bottom weights to the next client (the relay). ``"label_sharing"``: clients send their
  cut-layer activations and labels, the server holds the top layers and the loss and
  returns the cut-layer gradient. ``"u_shaped"``: clients also keep the last layers (the
  head) and the labels; the server returns its output activations, the client computes
  the loss and sends back the gradient of the head's input.
- :class:`SplitFed` -- SplitFedV1 (Thapa et al. 2022): the sampled clients train at the
  same time, on any :class:`concurrent.futures.Executor`, each against its own copy of
  the server's top layers; after the round the bottoms are combined by federated
  averaging (:func:`ppml_fast.aggregation.fedavg`, weights = the clients' row counts),
  and so are the server's copies of the top.
- :class:`VerticalSplitNN` -- vertical split learning: the features are split into column
  blocks held by different parties, each with a bottom model of its own; the label holder
  concatenates (or sums) their embeddings into its top model and returns each party its
  part of the gradient.

Defences (:class:`Defences`)
----------------------------
- DP on the cut layer: every example's activations are clipped to L2 norm ``C`` and
  Gaussian noise of standard deviation ``σ C`` is added before they leave the client
  (:func:`ppml_fast.split.defences.cut_layer_dp`). Batches are then Poisson-sampled at
  rate ``q = batch_size / n`` from the client's ``n`` rows, so each step is one
  Poisson-subsampled Gaussian event (:class:`ppml_fast.accounting.RDPAccountant`).
- NoPeek (Vepakomma et al. 2020): the client adds ``w dCor(x, z)`` to its loss (the
  distance correlation of the batch's raw rows and its cut-layer activations); the
  penalty's gradient with respect to ``z`` is added to the returned cut-layer gradient
  before the bottom's backward pass.
- Label protection: the label holder clips each example's gradient (of that example's
  own loss) to ``gradient_clip`` and adds Gaussian noise ``σ_g gradient_clip`` before it
  sends the gradients back (:func:`ppml_fast.split.defences.perturb_gradients`): one
  subsampled Gaussian event per step; and, in the label-sharing configurations, label DP
  by randomized response with a prior (:func:`ppml_fast.split.defences.rr_with_prior`),
  applied once to each example's label before any is sent: ``label_dp = ε`` is then the
  labels' ε for the whole run (every later message is post-processing of the noisy label).

Every protocol step is a pure function of its inputs and of one random stream, so runs
seeded through :class:`numpy.random.SeedSequence` are reproducible on any executor.

Security
--------
This is a simulation of the protocols' arithmetic and messages, in one process (or one
cluster). The cut-layer ε covers the activations the server sees; it does not cover the
bottom weights a client hands to the next client (SplitNN) or to the averaging server
(SplitFed): those are trained on the raw rows without noise. The gradient-perturbation ε
covers the labels as seen through the returned gradients. With ``seed=None`` all noise
comes from the secure stream of :mod:`ppml_fast.rng`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import Any, NamedTuple

import numpy as np

from .. import aggregation
from .. import rng as _rng
from .._validation import (
    NON_NEGATIVE,
    OPEN_UNIT,
    POSITIVE,
    Constraint,
    asarray,
    check_choice,
    check_int,
    check_scalar,
)
from . import defences as _defences
from . import nopeek as _nopeek
from .models import LayeredModel, Segment, SplitModel, softmax_cross_entropy

__all__ = [
    "ClientRound",
    "Defences",
    "SplitFed",
    "SplitNN",
    "SplitParams",
    "VerticalParams",
    "VerticalRound",
    "VerticalSplitNN",
]

CONFIGURATIONS = ("label_sharing", "u_shaped")
COMBINE = ("concat", "sum")


# ------------------------------------------------------------------------ settings


def _optional(value: float | None, name: str, bound: Constraint) -> float | None:
    return None if value is None else check_scalar(value, name, bound)


@dataclasses.dataclass(frozen=True)
class Defences:
    """The privacy defences of a split-learning run (all off by default).

    Parameters
    ----------
    activation_noise : float >= 0, optional
        σ of DP on the cut layer: Gaussian noise of standard deviation ``σ clip`` on the
        clipped activations. Turns on Poisson sampling and the accountant.
    clip : float > 0, optional
        ``C``, the per-example L2 bound of the activations (default 1.0 with
        ``activation_noise``; alone, clipping without noise and without ε).
    nopeek : float >= 0, optional
        The NoPeek weight ``w`` of ``w dCor(x, z)`` in the client's loss.
    label_dp : float > 0, optional
        ε of randomized response with a prior on the labels sent (label-sharing only).
    gradient_noise : float >= 0, optional
        σ_g of the Gaussian perturbation of the gradients the label holder returns.
        Turns on Poisson sampling and the label accountant.
    gradient_clip : float > 0
        The per-example L2 bound of the returned gradients under ``gradient_noise``.
    delta : float in (0, 1)
        The δ at which ε is reported.

    Raises
    ------
    TypeError, ValueError
        A setting of the wrong type or out of range (the message names it).
    """

    activation_noise: float | None = None
    clip: float | None = None
    nopeek: float | None = None
    label_dp: float | None = None
    gradient_noise: float | None = None
    gradient_clip: float = 1.0
    delta: float = 1e-5

    def __post_init__(self) -> None:
        _optional(self.activation_noise, "activation_noise", NON_NEGATIVE)
        _optional(self.clip, "clip", POSITIVE)
        _optional(self.nopeek, "nopeek", NON_NEGATIVE)
        _optional(self.label_dp, "label_dp", POSITIVE)
        _optional(self.gradient_noise, "gradient_noise", NON_NEGATIVE)
        check_scalar(self.gradient_clip, "gradient_clip", POSITIVE)
        check_scalar(self.delta, "delta", OPEN_UNIT)

    @property
    def cut_clip(self) -> float | None:
        """The activations' clipping bound, or None (no clipping)."""
        if self.clip is not None:
            return float(self.clip)
        return 1.0 if self.activation_noise is not None else None

    @property
    def poisson(self) -> bool:
        """Batches are Poisson-sampled (a DP defence with an accountant is on)."""
        return self.activation_noise is not None or self.gradient_noise is not None


class SplitParams(NamedTuple):
    """The parameters of a horizontal split: flat vectors, one per part.

    Attributes
    ----------
    bottom : ndarray
        The clients' layers.
    top : ndarray
        The server's layers.
    head : ndarray or None
        U-shaped: the clients' last layers.
    """

    bottom: np.ndarray
    top: np.ndarray
    head: np.ndarray | None


class ClientRound(NamedTuple):
    """What one client's turn did (:meth:`SplitNN.client_round`).

    Attributes
    ----------
    params : SplitParams
        The parts after the turn (the client's bottom and head, the server's top or the
        client's copy of it).
    steps : int
        The training steps (each one accountant event under DP).
    sample_rate : float or None
        The Poisson rate ``q = batch_size / n`` (None: shuffled fixed-size batches).
    examples : int
        The rows processed (the sum of the batch sizes).
    loss_sum : float
        Σ over steps of batch size × batch loss (the cross-entropy).
    bytes_up, bytes_down : int
        The bytes of the arrays the client sent the server (activations, labels,
        U-shaped: head-input gradients) and received from it (cut-layer gradients,
        U-shaped: the server's output activations).
    client_s, server_s : float
        Seconds of the client's forward/backward (with its defences) and of the server's.
    leak_gradients : ndarray or None
        With ``leakage=True``: the per-example gradients the label holder returned this
        turn, rescaled by the batch size (each example's gradient of its own loss, as the
        receiver can rescale them), one row per example.
    leak_labels : ndarray or None
        The true labels of those rows.
    """

    params: SplitParams
    steps: int
    sample_rate: float | None
    examples: int
    loss_sum: float
    bytes_up: int
    bytes_down: int
    client_s: float
    server_s: float
    leak_gradients: np.ndarray | None
    leak_labels: np.ndarray | None


def _batches(
    gen: np.random.Generator, n: int, batch_size: int, epochs: int, poisson: bool
) -> tuple[list[np.ndarray], float | None]:
    """The batches of a client's turn, and the Poisson rate (None: shuffled batches).

    Poisson: ``ceil(epochs n / B)`` steps, each row in each batch independently with
    probability ``q = B / n`` (``B = min(batch_size, n)``), the sampling the accountant's
    subsampled-Gaussian event assumes. Otherwise ``epochs`` shuffled passes in batches of
    ``batch_size``.
    """
    if poisson:
        expected = min(batch_size, n)
        q = expected / n
        steps = max(1, math.ceil(epochs * n / expected))
        return [np.flatnonzero(gen.random(n) < q) for _ in range(steps)], q
    out = []
    for _ in range(epochs):
        order = gen.permutation(n)
        out += [order[s : s + batch_size] for s in range(0, n, batch_size)]
    return out, None


class _CutMessage(NamedTuple):
    sent: np.ndarray  # what leaves the client
    scale: np.ndarray | None  # per-row clipping factor (the backward pass applies it)


def _protect_activations(
    z: np.ndarray, d: Defences, q: float | None, gen: np.random.Generator
) -> _CutMessage:
    """The client's cut-layer message: ``z``, clipped and noised when the defences say."""
    c = d.cut_clip
    if c is None:
        return _CutMessage(z, None)
    sigma = 0.0 if d.activation_noise is None else float(d.activation_noise)
    res = _defences.cut_layer_dp(z, c, sigma, sample_rate=q, rng=gen)
    norms = np.linalg.norm(z, axis=1)
    scale = np.minimum(1.0, c / np.maximum(norms, np.finfo(np.float64).tiny))
    return _CutMessage(np.asarray(res.values, dtype=np.float64), scale)


def _protect_gradients(
    g: np.ndarray, d: Defences, q: float | None, gen: np.random.Generator
) -> np.ndarray:
    """The label holder's returned gradient ``g`` (of the batch's mean loss), perturbed.

    Each row times ``B`` is that example's gradient of its own loss; it is clipped to
    ``gradient_clip``, noised with std ``σ_g gradient_clip`` and divided by ``B`` again.
    """
    if d.gradient_noise is None or g.shape[0] == 0:
        return g
    b = g.shape[0]
    res = _defences.perturb_gradients(
        g * b, d.gradient_clip, float(d.gradient_noise), sample_rate=q, rng=gen
    )
    out: np.ndarray = np.asarray(res.values, dtype=np.float64) / b
    return out


def _nopeek_gradient(x: np.ndarray, z: np.ndarray, weight: float | None) -> np.ndarray | None:
    """``w ∂dCor(x, z)/∂z`` for the batch, or None (no NoPeek, or fewer than 2 rows)."""
    if not weight or z.shape[0] < 2:
        return None
    _, grad = _nopeek.distance_correlation_gradient(x, z)
    out: np.ndarray = weight * np.asarray(grad, dtype=np.float64)
    return out


# ------------------------------------------------------------------- horizontal


def _check_training(batch_size: int, lr: float, local_epochs: int) -> tuple[int, float, int]:
    return (
        check_int(batch_size, "batch_size", minimum=1),
        check_scalar(lr, "lr", POSITIVE),
        check_int(local_epochs, "local_epochs", minimum=1),
    )


def _check_defences(defences: Defences | None) -> Defences:
    if defences is None:
        return Defences()
    if not isinstance(defences, Defences):
        raise TypeError(f"defences must be a Defences or None, got {type(defences).__name__}")
    return defences


def _check_rows(X: np.ndarray, y: np.ndarray, d: int, name: str) -> None:
    if X.ndim != 2 or X.shape[1] != d:
        raise ValueError(f"{name} X must have shape (n, {d}), got {X.shape}")
    if y.shape != (X.shape[0],) or y.dtype.kind not in "iu":
        raise ValueError(f"{name} y must be {X.shape[0]} integer labels, got {y.shape} {y.dtype}")
    if X.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one row")


@dataclasses.dataclass(frozen=True)
class _Turn:
    """One client's turn (picklable: a process executor or a Dask worker runs it)."""

    parts: SplitModel
    params: SplitParams
    X: np.ndarray
    y: np.ndarray  # the labels the loss uses (after label DP, in label-sharing)
    y_true: np.ndarray  # the true labels (only the leakage measure reads them)
    defences: Defences
    batch_size: int
    lr: float
    epochs: int
    seed: np.random.SeedSequence | int | None
    leakage: bool


def _client_turn(t: _Turn) -> ClientRound:
    """One client trains on its rows against the server (or its copy of the server's top).

    Per batch: the client runs its bottom and sends the (protected) activations -- with
    the labels in label-sharing --; the server runs its top, then either computes the
    loss (label-sharing) or returns its output to the client, which runs the head and the
    loss and sends back the gradient of the head's input (U-shaped); the server
    backpropagates and returns the cut-layer gradient; the client adds the NoPeek
    gradient and backpropagates through the bottom. Every party takes an SGD step on its
    own parameters.
    """
    gen = _rng.default_rng(t.seed)
    bottom, top, head = t.parts
    pb = t.params.bottom.copy()
    pt = t.params.top.copy()
    ph = None if t.params.head is None else t.params.head.copy()
    d = t.defences
    batches, q = _batches(gen, t.y.size, t.batch_size, t.epochs, d.poisson)
    up = down = 0
    loss_sum = 0.0
    client_s = server_s = 0.0
    examples = 0
    leak_g: list[np.ndarray] = []
    leak_y: list[np.ndarray] = []
    for idx in batches:
        b = idx.size
        if b == 0:  # an empty Poisson batch: nothing is sent (still one accountant step)
            continue
        examples += b
        t0 = time.perf_counter()
        xb, yb = t.X[idx], t.y[idx]
        z, cb = bottom.forward(pb, xb)
        msg = _protect_activations(z, d, q, gen)
        up += msg.sent.nbytes
        t1 = time.perf_counter()
        client_s += t1 - t0
        out, ct = top.forward(pt, msg.sent)
        if head is None or ph is None:
            up += yb.nbytes  # label-sharing: the labels travel with the activations
            loss, g = softmax_cross_entropy(out, yb)
            gt, gcut = top.backward(pt, ct, g)
            assert gcut is not None
            gcut = _protect_gradients(gcut, d, q, gen)
            if t.leakage:
                leak_g.append(gcut * b)
                leak_y.append(t.y_true[idx])
            pt -= t.lr * gt
            t2 = time.perf_counter()
            server_s += t2 - t1
        else:
            down += out.nbytes
            t2 = time.perf_counter()
            server_s += t2 - t1
            logits, ch = head.forward(ph, out)
            loss, g = softmax_cross_entropy(logits, yb)
            gh, gmid = head.backward(ph, ch, g)
            assert gmid is not None
            gmid = _protect_gradients(gmid, d, q, gen)
            if t.leakage:
                leak_g.append(gmid * b)
                leak_y.append(t.y_true[idx])
            up += gmid.nbytes
            ph -= t.lr * gh
            t3 = time.perf_counter()
            client_s += t3 - t2
            gt, gcut = top.backward(pt, ct, gmid)
            assert gcut is not None
            pt -= t.lr * gt
            t2 = time.perf_counter()
            server_s += t2 - t3
        down += gcut.nbytes
        loss_sum += b * loss
        if msg.scale is not None:  # the clipping factor, treated as a constant
            gcut = gcut * msg.scale[:, None]
        extra = _nopeek_gradient(xb, z, d.nopeek)
        if extra is not None:
            gcut = gcut + extra
        gb, _ = bottom.backward(pb, cb, gcut, input_grad=False)
        pb -= t.lr * gb
        client_s += time.perf_counter() - t2
    return ClientRound(
        SplitParams(pb, pt, ph),
        len(batches),
        q,
        examples,
        loss_sum,
        up,
        down,
        client_s,
        server_s,
        np.concatenate(leak_g) if t.leakage and leak_g else None,
        np.concatenate(leak_y) if t.leakage and leak_y else None,
    )


class _Evaluation:
    """Test accuracy and loss from the protocol's ``logits`` (inference, no defence)."""

    def logits(self, params: Any, X: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def accuracy(self, params: Any, X: np.ndarray, y: np.ndarray) -> float:
        """The fraction of rows whose largest logit is the label."""
        return float(np.mean(np.argmax(self.logits(params, X), axis=1) == y))

    def loss(self, params: Any, X: np.ndarray, y: np.ndarray) -> float:
        """The mean cross-entropy of the rows."""
        return softmax_cross_entropy(self.logits(params, X), y)[0]


class _Horizontal(_Evaluation):
    """What :class:`SplitNN` and :class:`SplitFed` share: the parts, the checks, one
    client's turn and the evaluation (parameters: :class:`SplitNN`)."""

    def __init__(
        self,
        model: LayeredModel,
        cut: int = 1,
        *,
        configuration: str = "label_sharing",
        defences: Defences | None = None,
        batch_size: int = 32,
        lr: float = 0.1,
        local_epochs: int = 1,
    ) -> None:
        if not isinstance(model, LayeredModel):
            raise TypeError(f"model must be a LayeredModel, got {type(model).__name__}")
        self.configuration = check_choice(configuration, "configuration", CONFIGURATIONS)
        self.model = model
        u_shaped = self.configuration == "u_shaped"
        if u_shaped and model.n_layers < 3:
            raise ValueError(
                "a u_shaped split needs a model of >= 3 layers (bottom, server, head), got "
                f"{model.n_layers} (sizes {model.sizes})"
            )
        self.parts = model.split(cut, head=1 if u_shaped else 0)
        self.cut = int(cut)
        self.defences = _check_defences(defences)
        if u_shaped and self.defences.label_dp is not None:
            raise ValueError(
                "label_dp applies to label-sharing configurations: u_shaped sends none"
            )
        self.batch_size, self.lr, self.local_epochs = _check_training(batch_size, lr, local_epochs)

    def init(self, rng: np.random.Generator | int | None = None) -> SplitParams:
        """Initial parameters of every part (:meth:`LayeredModel.init`, then cut)."""
        parts = self.parts.split_params(self.model.init(rng))
        return SplitParams(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    def full_params(self, params: SplitParams) -> np.ndarray:
        """The whole model's flat parameter vector."""
        pieces = [params.bottom, params.top] + ([] if params.head is None else [params.head])
        return np.concatenate(pieces)

    def activations(self, params: SplitParams, X: np.ndarray) -> np.ndarray:
        """The cut-layer activations of the rows of ``X`` (before any defence)."""
        return self.parts.bottom.forward(params.bottom, X)[0]

    def logits(self, params: SplitParams, X: np.ndarray) -> np.ndarray:
        """The model's logits for the rows of ``X`` (no defence: inference)."""
        return self.model.logits(self.full_params(params), X)

    def _turn(
        self,
        params: SplitParams,
        X: np.ndarray,
        y: np.ndarray,
        seed: np.random.SeedSequence | int | None,
        y_true: np.ndarray | None,
        leakage: bool,
    ) -> _Turn:
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y)
        _check_rows(X, y, self.model.sizes[0], "client")
        return _Turn(
            self.parts,
            params,
            X,
            y,
            y if y_true is None else np.asarray(y_true),
            self.defences,
            self.batch_size,
            self.lr,
            self.local_epochs,
            seed,
            bool(leakage),
        )

    def client_round(
        self,
        params: SplitParams,
        X: np.ndarray,
        y: np.ndarray,
        *,
        seed: np.random.SeedSequence | int | None = None,
        y_true: np.ndarray | None = None,
        leakage: bool = False,
    ) -> ClientRound:
        """One client's turn: ``local_epochs`` over its rows against the server.

        Parameters
        ----------
        params : SplitParams
            The parts at the start of the turn (not modified).
        X, y : ndarray
            The client's rows and the labels its loss uses (under label DP: the
            randomized labels, already drawn once for the run).
        seed : SeedSequence or int, optional
            The turn's stream (batches, noise); None: the secure stream.
        y_true : ndarray, optional
            The true labels, for the leakage measure only (default ``y``).
        leakage : bool
            Return the gradients the label holder sent back (for the norm attack).

        Returns
        -------
        ClientRound
        """
        return _client_turn(self._turn(params, X, y, seed, y_true, leakage))


class SplitNN(_Horizontal):
    """Horizontal SplitNN: clients with the bottom layers take turns with one server.

    Parameters
    ----------
    model : LayeredModel
    cut : int
        The bottom holds layers ``[0, cut)`` (:meth:`LayeredModel.split`).
    configuration : {"label_sharing", "u_shaped"}
        U-shaped: the clients also keep the last layer and the labels.
    defences : Defences, optional
    batch_size : int >= 1
        The batch size (Poisson: the expected batch size).
    lr : float > 0
        The SGD step of every party.
    local_epochs : int >= 1
        Passes over a client's rows per turn.

    Raises
    ------
    TypeError, ValueError
        A bad argument; ``label_dp`` in the U-shaped configuration (the labels are never
        sent).
    """

    def train_round(
        self,
        params: SplitParams,
        clients: Sequence[tuple[np.ndarray, np.ndarray]],
        *,
        seeds: Sequence[np.random.SeedSequence | int | None] | None = None,
        true_labels: Sequence[np.ndarray] | None = None,
        leakage: bool = False,
    ) -> tuple[SplitParams, list[ClientRound]]:
        """One round of the relay: every client takes its turn, in order, starting from
        the previous client's bottom (and head) and the server's current top.

        Returns
        -------
        params : SplitParams
            The parts after the last client's turn.
        turns : list of ClientRound
        """
        if not clients:
            raise ValueError("clients must hold at least one client")
        seeds = _check_seeds(seeds, len(clients))
        out = []
        for k, (X, y) in enumerate(clients):
            yt = None if true_labels is None else true_labels[k]
            res = self.client_round(params, X, y, seed=seeds[k], y_true=yt, leakage=leakage)
            params = res.params
            out.append(res)
        return params, out


def _check_seeds(
    seeds: Sequence[np.random.SeedSequence | int | None] | None, n: int
) -> list[np.random.SeedSequence | int | None]:
    if seeds is None:
        return [None] * n
    out = list(seeds)
    if len(out) != n:
        raise ValueError(f"seeds must hold one seed per client ({n}), got {len(out)}")
    return out


class SplitFed(_Horizontal):
    """SplitFedV1: clients train in parallel, each against its own copy of the server's
    top layers; bottoms and tops are federated-averaged after the round.

    Takes :class:`SplitNN`'s parameters (label-sharing or U-shaped; in U-shaped the heads
    are averaged too).
    """

    def train_round(
        self,
        params: SplitParams,
        clients: Sequence[tuple[np.ndarray, np.ndarray]],
        *,
        seeds: Sequence[np.random.SeedSequence | int | None] | None = None,
        true_labels: Sequence[np.ndarray] | None = None,
        leakage: bool = False,
        executor: Executor | None = None,
    ) -> tuple[SplitParams, list[ClientRound], float]:
        """One SplitFed round over ``clients`` (the sampled ones).

        Parameters
        ----------
        params : SplitParams
            The round's global parts.
        clients : sequence of (X, y)
        seeds : sequence, optional
            One stream per client.
        true_labels, leakage
            As in :meth:`SplitNN.client_round`.
        executor : concurrent.futures.Executor, optional
            Where the client turns run (None: one after the other in this thread).
            Results are read in client order, so the average is the same on any executor.

        Returns
        -------
        params : SplitParams
            The averaged parts (weights: the clients' row counts).
        turns : list of ClientRound
        aggregation_s : float
            Seconds of the averaging.
        """
        if executor is not None and not isinstance(executor, Executor):
            raise TypeError(
                f"executor must be a concurrent.futures.Executor, got {type(executor).__name__}"
            )
        if not clients:
            raise ValueError("clients must hold at least one client")
        seeds = _check_seeds(seeds, len(clients))
        turns = [
            self._turn(
                params, X, y, seeds[k], None if true_labels is None else true_labels[k], leakage
            )
            for k, (X, y) in enumerate(clients)
        ]
        if executor is None:
            results = [_client_turn(t) for t in turns]
        else:
            futures = [executor.submit(_client_turn, t) for t in turns]
            results = [f.result() for f in futures]
        t0 = time.perf_counter()
        w = np.array([t.y.size for t in turns], dtype=np.float64)
        bottom = aggregation.fedavg(np.stack([r.params.bottom for r in results]), w)
        top = aggregation.fedavg(np.stack([r.params.top for r in results]), w)
        head = None
        if params.head is not None:
            heads = [r.params.head for r in results if r.params.head is not None]
            head = aggregation.fedavg(np.stack(heads), w)
        return SplitParams(bottom, top, head), results, time.perf_counter() - t0


# ---------------------------------------------------------------------- vertical


class VerticalParams(NamedTuple):
    """The parameters of a vertical split: one bottom per party and the label holder's top."""

    bottoms: tuple[np.ndarray, ...]
    top: np.ndarray


class VerticalRound(NamedTuple):
    """What one vertical round (an epoch over the aligned rows) did.

    Attributes
    ----------
    params : VerticalParams
    steps, sample_rate, examples, loss_sum
        As in :class:`ClientRound` (one accountant event per step for every party).
    bytes_up : int
        The bytes of the embeddings the parties sent the label holder.
    bytes_down : int
        The bytes of the gradients the label holder returned to them.
    client_s, server_s : float
        Seconds of the parties' bottoms and of the label holder's top.
    leak_gradients, leak_labels : ndarray or None
        The returned gradients (whole rows, rescaled by the batch size) and true labels.
    """

    params: VerticalParams
    steps: int
    sample_rate: float | None
    examples: int
    loss_sum: float
    bytes_up: int
    bytes_down: int
    client_s: float
    server_s: float
    leak_gradients: np.ndarray | None
    leak_labels: np.ndarray | None


def _index_sequence(blocks: object) -> list[object]:
    """``blocks`` as a list of its items, one per party: a list or tuple of index arrays,
    or anything iterable over them (a 2-d array or tensor gives one row per party). A
    string or an object that cannot be iterated raises ``TypeError`` naming ``blocks``."""
    what = f"blocks must be a sequence of index arrays (one per party), got {type(blocks).__name__}"
    if isinstance(blocks, (str, bytes)):
        raise TypeError(what)
    try:
        return list(blocks)  # type: ignore[call-overload]
    except TypeError:
        raise TypeError(what) from None


class VerticalSplitNN(_Evaluation):
    """Vertical split learning: feature blocks held by parties, labels by the top's owner.

    Party ``k`` holds the columns ``blocks[k]`` of every row and a bottom model
    ``(len(blocks[k]), sizes[1], ..., sizes[cut])``; the label holder's top takes the
    parties' cut-layer outputs concatenated (width ``parties × sizes[cut]``) or summed
    (width ``sizes[cut]``) and runs layers ``[cut, n_layers)`` of ``model``.

    Parameters
    ----------
    model : LayeredModel
        The layer sizes (``sizes[0]`` is the total number of features).
    blocks : sequence of index arrays
        Each party's feature columns (a partition of ``range(sizes[0])`` is usual; any
        non-empty column sets are accepted).
    cut : int
        The bottoms hold layers ``[0, cut)``; ``cut = n_layers`` (e.g. logistic
        regression) leaves the top no layer and needs ``combine="sum"``: the parties'
        partial logits are added.
    combine : {"concat", "sum"}, optional
        Default: ``"sum"`` when the top has no layer, else ``"concat"``.
    defences : Defences, optional
        ``label_dp`` does not apply (no labels are sent).
    batch_size, lr, local_epochs
        As in :class:`SplitNN` (the rows are shared by every party: one batch sampling).

    Raises
    ------
    TypeError, ValueError
        A bad argument.
    """

    def __init__(
        self,
        model: LayeredModel,
        blocks: Sequence[np.ndarray],
        cut: int = 1,
        *,
        combine: str | None = None,
        defences: Defences | None = None,
        batch_size: int = 32,
        lr: float = 0.1,
        local_epochs: int = 1,
    ) -> None:
        if not isinstance(model, LayeredModel):
            raise TypeError(f"model must be a LayeredModel, got {type(model).__name__}")
        ref = model.split(cut)
        self.model, self.cut = model, int(cut)
        empty_top = ref.top.n_layers == 0
        combine = ("sum" if empty_top else "concat") if combine is None else combine
        self.combine = check_choice(combine, "combine", COMBINE)
        if empty_top and self.combine == "concat":
            raise ValueError(
                f"combine='concat' needs a top layer: cut={cut} leaves the label holder none; "
                "use combine='sum' or a smaller cut"
            )
        cols = [asarray(b, f"blocks[{k}]") for k, b in enumerate(_index_sequence(blocks))]
        if len(cols) < 1:
            raise ValueError("blocks must hold at least one party")
        for k, c in enumerate(cols):
            if c.ndim != 1 or c.size == 0 or c.dtype.kind not in "iu":
                raise ValueError(f"blocks[{k}] must be a non-empty 1-d integer index array")
            if c.min() < 0 or c.max() >= model.sizes[0]:
                raise ValueError(f"blocks[{k}] must index columns in [0, {model.sizes[0]})")
        self.blocks = tuple(cols)
        width = model.sizes[cut]
        self.bottoms = tuple(
            Segment((c.size, *model.sizes[1 : cut + 1]), ref.bottom.activate_last, model.activation)
            for c in cols
        )
        top_in = width * len(cols) if self.combine == "concat" else width
        self.top = Segment((top_in, *model.sizes[cut + 1 :]), False, model.activation)
        self.defences = _check_defences(defences)
        if self.defences.label_dp is not None:
            raise ValueError(
                "label_dp applies to label-sharing configurations: vertical sends none"
            )
        self.batch_size, self.lr, self.local_epochs = _check_training(batch_size, lr, local_epochs)

    @property
    def parties(self) -> int:
        """The number of feature parties."""
        return len(self.blocks)

    def init(self, rng: np.random.Generator | int | None = None) -> VerticalParams:
        """Glorot-uniform initial parameters, party by party, then the top."""
        gen = _rng.resolve(rng)
        return VerticalParams(tuple(b.init(gen) for b in self.bottoms), self.top.init(gen))

    def _embed(self, params: VerticalParams, X: np.ndarray) -> list[np.ndarray]:
        return [
            seg.forward(p, X[:, c])[0]
            for seg, p, c in zip(self.bottoms, params.bottoms, self.blocks, strict=True)
        ]

    def _join(self, parts: list[np.ndarray]) -> np.ndarray:
        if self.combine == "concat":
            return np.concatenate(parts, axis=1)
        total = parts[0].copy()
        for p in parts[1:]:
            total += p
        return total

    def activations(self, params: VerticalParams, X: np.ndarray) -> list[np.ndarray]:
        """Each party's cut-layer outputs for the rows of ``X`` (before any defence)."""
        return self._embed(params, np.asarray(X, dtype=np.float64))

    def logits(self, params: VerticalParams, X: np.ndarray) -> np.ndarray:
        """The model's logits for the (full-width) rows of ``X``."""
        h = self._join(self._embed(params, np.asarray(X, dtype=np.float64)))
        return self.top.forward(params.top, h)[0]

    def train_round(
        self,
        params: VerticalParams,
        X: np.ndarray,
        y: np.ndarray,
        *,
        seed: np.random.SeedSequence | int | None = None,
        leakage: bool = False,
    ) -> VerticalRound:
        """``local_epochs`` over the aligned rows.

        Per batch: every party runs its bottom on its columns and sends the (protected)
        embedding; the label holder joins them, runs its top and the loss, backpropagates
        and returns each party its columns of the (perturbed) gradient (under ``"sum"``,
        the whole gradient); each party adds its NoPeek gradient and backpropagates.

        Parameters
        ----------
        params : VerticalParams
            Not modified.
        X : ndarray, shape (n, sizes[0])
            The aligned rows (party ``k`` only ever reads ``X[:, blocks[k]]``).
        y : ndarray of int, shape (n,)
            The label holder's labels.
        seed : SeedSequence or int, optional
        leakage : bool
            Return the gradients sent back, for the norm attack.
        """
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y)
        _check_rows(X, y, self.model.sizes[0], "vertical data")
        gen = _rng.default_rng(seed)
        d = self.defences
        pbs = [p.copy() for p in params.bottoms]
        pt = params.top.copy()
        batches, q = _batches(gen, y.size, self.batch_size, self.local_epochs, d.poisson)
        width = self.model.sizes[self.cut]
        up = down = examples = 0
        loss_sum = client_s = server_s = 0.0
        leak_g: list[np.ndarray] = []
        leak_y: list[np.ndarray] = []
        for idx in batches:
            b = idx.size
            if b == 0:
                continue
            examples += b
            t0 = time.perf_counter()
            xs, zs, caches, msgs = [], [], [], []
            rows = X[idx]
            for seg, p, c in zip(self.bottoms, pbs, self.blocks, strict=True):
                xk = rows[:, c]
                z, cache = seg.forward(p, xk)
                msg = _protect_activations(z, d, q, gen)
                up += msg.sent.nbytes
                xs.append(xk)
                zs.append(z)
                caches.append(cache)
                msgs.append(msg)
            t1 = time.perf_counter()
            out, ct = self.top.forward(pt, self._join([m.sent for m in msgs]))
            loss, g = softmax_cross_entropy(out, y[idx])
            gt, gin = self.top.backward(pt, ct, g)
            assert gin is not None
            gin = _protect_gradients(gin, d, q, gen)
            if leakage:
                leak_g.append(gin * b)
                leak_y.append(y[idx])
            pt -= self.lr * gt
            loss_sum += b * loss
            t2 = time.perf_counter()
            server_s += t2 - t1
            for k, seg in enumerate(self.bottoms):
                gk = gin[:, k * width : (k + 1) * width] if self.combine == "concat" else gin
                down += gk.nbytes
                scale = msgs[k].scale
                if scale is not None:
                    gk = gk * scale[:, None]
                extra = _nopeek_gradient(xs[k], zs[k], d.nopeek)
                if extra is not None:
                    gk = gk + extra
                gb, _ = seg.backward(pbs[k], caches[k], gk, input_grad=False)
                pbs[k] -= self.lr * gb
            client_s += (t1 - t0) + (time.perf_counter() - t2)
        return VerticalRound(
            VerticalParams(tuple(pbs), pt),
            len(batches),
            q,
            examples,
            loss_sum,
            up,
            down,
            client_s,
            server_s,
            np.concatenate(leak_g) if leakage and leak_g else None,
            np.concatenate(leak_y) if leakage and leak_y else None,
        )
