"""The simulation's split-learning family: :func:`run_split_simulation`.

One run trains a :class:`ppml_fast.split.models.LayeredModel` cut at a chosen layer with
one of the protocols of :mod:`ppml_fast.split.protocols` -- horizontal SplitNN with
label sharing (``"horizontal"``), U-shaped SplitNN (``"u-shaped"``), SplitFed
(``"splitfed"``) or vertical split learning (``"vertical"``) -- with the defences asked
for, and records every round (:class:`SplitRoundRecord`): the loss, the test accuracy,
the bytes that crossed the cut each way, the time of each phase, the ε spent and, when
asked, the leakage measured: the norm attack's AUC on the gradients the label holder
returned (binary tasks) and the distance correlation of a test batch with the
activations a client would send for it.

A round is one turn of every client (SplitNN: the relay, in client order; SplitFed: the
sampled clients at the same time, on the executor, then federated averaging) or one pass
over the aligned rows (vertical). Every random draw comes from a stream derived from the
run's one master seed by the spawn key ``(stream, round, client)`` and results are read
in client order, so a seeded run gives the same records and model on any executor.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np

from .. import _config, accounting
from .. import rng as _rng
from .._tables import render
from .._validation import RATE, check_bool, check_choice, check_int, check_scalar
from ..split import defences as _defences
from ..split import leakage as _leakage
from ..split.models import LayeredModel
from ..split.protocols import (
    ClientRound,
    Defences,
    SplitFed,
    SplitNN,
    SplitParams,
    VerticalParams,
    VerticalSplitNN,
)
from .data import Dataset, _check_data, iid_partition, load_dataset
from .plots import pyplot
from .run import _child, _progress_bar

__all__ = [
    "SPLITS",
    "SplitRoundRecord",
    "SplitSimulationResult",
    "plot_split",
    "run_split_simulation",
    "split_history_table",
]

#: The protocols :func:`run_split_simulation` runs.
SPLITS = ("horizontal", "u-shaped", "splitfed", "vertical")

# The seed streams of a run (the first spawn-key entry under the master seed).
_PARTITION, _INIT, _SERVER, _CLIENT, _LABELS, _LEAK = range(6)

#: The rows of the test split the activation leakage is measured on (the first ones).
LEAKAGE_ROWS = 256


@dataclasses.dataclass(frozen=True)
class SplitRoundRecord:
    """What one split-learning round did.

    Attributes
    ----------
    round : int
        The round, from 1.
    clients : int
        The clients that took a turn (vertical: the feature parties).
    train_loss : float
        The mean cross-entropy of the round's training batches, as the protocol computed
        it (on the randomized labels under label DP).
    test_accuracy : float
        The model's after the round, on the test split (inference without noise).
    epsilon : float or None
        Cut-layer DP: the ε spent so far at the run's δ by the client with the largest
        ε (None without ``activation_noise``).
    label_epsilon : float or None
        The labels' ε so far (replace-one: one label changed): the label-DP ε (for the
        whole run) in the label-sharing splits, where the labels themselves are sent;
        in the U-shaped and vertical splits the gradient perturbation's accountant
        (largest over the label owners; noise multiplier ``gradient_noise / 2``, as one
        changed label moves a clipped gradient by up to ``2 C``), or the smaller of the
        two when both are on. None without either.
    bytes_up : int
        Bytes of the arrays clients sent across the cut this round: activations, and
        labels (label sharing) or head-input gradients (U-shaped).
    bytes_down : int
        Bytes of the arrays sent back: cut-layer gradients, and the server's output
        activations (U-shaped).
    bytes_models : int
        Bytes of model weights exchanged: the bottom (and head) handed from client to
        client (SplitNN relay) or sent to and back from the averaging server (SplitFed).
    client_s, server_s, aggregation_s : float
        Seconds of the clients' forward/backward passes (with their defences), of the
        server's, and of the averaging (SplitFed). Under SplitFed the clients' and the
        server's seconds are summed over clients that ran at the same time.
    leakage_auc : float or None
        ``leakage=True``, binary tasks: the AUC of the norm attack
        (:func:`ppml_fast.split.leakage.norm_leakage_auc`) on the per-example gradients
        the label holder returned this round; 0.5 is chance.
    activation_dcor : float or None
        ``leakage=True``: the distance correlation of the first test rows (up to
        :data:`LEAKAGE_ROWS`) with the cut-layer message a client would send for them
        (after clipping and noise); vertical: the largest over the parties.
    accounting : tuple of (float, float, int), optional
        The cut-layer accountant history behind ``epsilon`` (Opacus' ``(noise_multiplier,
        sample_rate, steps)`` triples).
    """

    round: int
    clients: int
    train_loss: float
    test_accuracy: float
    epsilon: float | None
    label_epsilon: float | None
    bytes_up: int
    bytes_down: int
    bytes_models: int
    client_s: float
    server_s: float
    aggregation_s: float
    leakage_auc: float | None = None
    activation_dcor: float | None = None
    accounting: tuple[tuple[float, float, int], ...] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The record's fields by name."""
        return dataclasses.asdict(self)


_COLUMNS = (
    ("round", "round", "{}"),
    ("clients", "clients", "{}"),
    ("train_loss", "train loss", "{:.4f}"),
    ("test_accuracy", "test acc", "{:.4f}"),
    ("epsilon", "epsilon", "{:.3f}"),
    ("label_epsilon", "label eps", "{:.3f}"),
    ("bytes_up", "bytes up", "{:,}"),
    ("bytes_down", "bytes down", "{:,}"),
    ("bytes_models", "bytes models", "{:,}"),
    ("client_s", "client s", "{:.3f}"),
    ("server_s", "server s", "{:.3f}"),
    ("aggregation_s", "aggregation s", "{:.3f}"),
)
_LEAKAGE_COLUMNS = (
    ("leakage_auc", "norm-attack AUC", "{:.3f}"),
    ("activation_dcor", "activation dCor", "{:.3f}"),
)


def split_history_table(history: Sequence[SplitRoundRecord], markdown: bool = False) -> str:
    """The per-round records of a split-learning run as a text (or Markdown) table.

    Parameters
    ----------
    history : sequence of SplitRoundRecord
    markdown : bool
        A Markdown table instead of aligned plain-text columns.

    Returns
    -------
    str
        One row per record, ``-`` for a missing value; the leakage columns appear when
        some record has them.

    Raises
    ------
    TypeError
        ``history`` is not a sequence of :class:`SplitRoundRecord`, or ``markdown`` not a
        bool.
    """
    markdown = check_bool(markdown, "markdown")
    if isinstance(history, (str, bytes)) or not isinstance(history, Iterable):
        raise TypeError(
            f"history must be a sequence of SplitRoundRecord, got {type(history).__name__}"
        )
    try:
        records = list(history)
    except TypeError:  # e.g. a 0-d array
        raise TypeError("history must be a sequence of SplitRoundRecord") from None
    for i, rec in enumerate(records):
        if not isinstance(rec, SplitRoundRecord):
            raise TypeError(f"history[{i}] must be a SplitRoundRecord, got {type(rec).__name__}")
    columns: tuple[tuple[str, str, str], ...] = _COLUMNS
    if any(r.leakage_auc is not None or r.activation_dcor is not None for r in records):
        columns += _LEAKAGE_COLUMNS
    body = [
        ["-" if getattr(r, a) is None else f.format(getattr(r, a)) for a, _, f in columns]
        for r in records
    ]
    return render([t for _, t, _ in columns], body, markdown)


@dataclasses.dataclass(frozen=True)
class SplitSimulationResult:
    """The trained parts and the per-round history of a split-learning run.

    Attributes
    ----------
    params : SplitParams or VerticalParams
        The parts after the last round.
    protocol : SplitNN, SplitFed or VerticalSplitNN
        The protocol that trained them (its ``accuracy``/``logits`` evaluate ``params``).
    history : list of SplitRoundRecord
    """

    params: SplitParams | VerticalParams
    protocol: SplitNN | SplitFed | VerticalSplitNN
    history: list[SplitRoundRecord]

    def records(self) -> list[dict[str, Any]]:
        """The history as a list of dicts (``pandas.DataFrame(result.records())``)."""
        return [r.as_dict() for r in self.history]

    def table(self, markdown: bool = False) -> str:
        """The history as a text (or Markdown) table (:func:`split_history_table`)."""
        return split_history_table(self.history, markdown)


def plot_split(
    history: SplitSimulationResult | Sequence[SplitRoundRecord], path: str | os.PathLike[str]
) -> None:
    """Save test accuracy, ε and leakage against the round to ``path``.

    One panel for the test accuracy; one for ε (cut-layer and label ε) when the run was
    private; one for the leakage (norm-attack AUC, activation distance correlation) when
    it was measured.

    Parameters
    ----------
    history : SplitSimulationResult or sequence of SplitRoundRecord
    path : str or path-like
        The image file; matplotlib picks the format from its suffix.

    Raises
    ------
    ImportError
        matplotlib is not installed.
    """
    plt = pyplot("plot_split")
    recs = history.history if isinstance(history, SplitSimulationResult) else list(history)
    rounds = [r.round for r in recs]
    panels = ["accuracy"]
    if any(r.epsilon is not None or r.label_epsilon is not None for r in recs):
        panels.append("epsilon")
    if any(r.leakage_auc is not None or r.activation_dcor is not None for r in recs):
        panels.append("leakage")
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.5), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        if panel == "accuracy":
            ax.plot(rounds, [r.test_accuracy for r in recs], marker="o")
            ax.set(xlabel="round", ylabel="test accuracy")
        elif panel == "epsilon":
            for attr, label in (("epsilon", "cut layer"), ("label_epsilon", "labels")):
                ys = [getattr(r, attr) for r in recs]
                if any(v is not None for v in ys):
                    ax.plot(
                        rounds, [np.nan if v is None else v for v in ys], marker="o", label=label
                    )
            ax.set(xlabel="round", ylabel="epsilon spent")
            ax.legend()
        else:
            for attr, label in (
                ("leakage_auc", "norm-attack AUC"),
                ("activation_dcor", "activation dCor"),
            ):
                ys = [getattr(r, attr) for r in recs]
                if any(v is not None for v in ys):
                    ax.plot(
                        rounds, [np.nan if v is None else v for v in ys], marker="o", label=label
                    )
            ax.set(xlabel="round", ylabel="leakage")
            ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ---------------------------------------------------------------------------- run


def run_split_simulation(
    data: Dataset | str = "breast-cancer",
    *,
    split: str = "horizontal",
    model: str | Sequence[int] | LayeredModel = "mlp",
    cut: int = 1,
    clients: int | None = None,
    rounds: int = 5,
    fraction: float = 1.0,
    local_epochs: int = 1,
    batch_size: int = 32,
    lr: float = 0.1,
    combine: str | None = None,
    activation_noise: float | None = None,
    clip: float | None = None,
    nopeek: float | None = None,
    label_dp: float | None = None,
    gradient_noise: float | None = None,
    gradient_clip: float = 1.0,
    leakage: bool = False,
    delta: float = 1e-5,
    seed: int | np.random.SeedSequence | None = None,
    executor: Executor | None = None,
    progress: bool | None = None,
) -> SplitSimulationResult:
    """Split learning of a model cut at layer ``cut``, with the defences asked for.

    Parameters
    ----------
    data : Dataset or {"breast-cancer", "digits"}
        The training rows (split over the clients IID, or over the parties by column
        blocks) and the test rows; a name loads the bundled data set
        (:func:`load_dataset`). Default: breast cancer (binary, so the norm attack
        applies).
    split : {"horizontal", "u-shaped", "splitfed", "vertical"}
        Label-sharing SplitNN, U-shaped SplitNN, SplitFed (label sharing), vertical.
    model : {"mlp", "logreg"}, sequence of int or LayeredModel
        ``"mlp"``: hidden layers of 32 and 16 ReLU units; ``"logreg"``: no hidden layer
        (only ``cut=1``, not U-shaped); a sequence: the hidden widths; a LayeredModel whose
        sizes match the data.
    cut : int >= 1
        The clients' (parties') bottoms hold the first ``cut`` layers.
    clients : int >= 1, optional
        The clients (default 4), or the feature parties of a vertical split (default 2,
        at most the number of features).
    rounds : int >= 1
    fraction : float in (0, 1]
        SplitFed: the share of clients sampled per round (a fixed-size uniform subset);
        the other splits use every client.
    local_epochs : int >= 1
        Passes over a client's rows per turn (vertical: over the rows per round).
    batch_size : int >= 1
        The batch size; under ``activation_noise`` or ``gradient_noise`` batches are
        Poisson-sampled with this expected size (rate ``batch_size / n`` for a client
        with ``n`` rows), as the accountant assumes; otherwise shuffled fixed-size batches.
    lr : float > 0
        The SGD step of every party.
    combine : {"concat", "sum"}, optional
        Vertical: how the label holder joins the parties' embeddings.
    activation_noise : float >= 0, optional
        σ of DP on the cut layer (noise std ``σ clip`` on the clipped activations).
    clip : float > 0, optional
        The per-example L2 bound of the activations (default 1.0 with
        ``activation_noise``).
    nopeek : float >= 0, optional
        The NoPeek weight.
    label_dp : float > 0, optional
        ε of randomized response with a prior on the labels (horizontal, splitfed): each
        label is randomized once, before the first round.
    gradient_noise : float >= 0, optional
        σ_g of the perturbation of the gradients the label holder returns, with
        per-example bound ``gradient_clip``.
    gradient_clip : float > 0
    leakage : bool
        Measure the norm-attack AUC and the activation distance correlation each round.
    delta : float in (0, 1)
        The δ at which ε is reported.
    seed : int or SeedSequence, optional
        Master seed for the split, the initial model, sampling and noise; None draws all
        of them from the secure stream.
    executor : concurrent.futures.Executor, optional
        Where SplitFed's client turns run (default: a thread pool with one worker per
        core; ``distributed.Client(...).get_executor()`` for Dask). A given executor is
        left open. The relay and the vertical rounds are sequential and run here.
    progress : bool, optional
        A tqdm progress bar (default: when stderr is a terminal and tqdm is installed).

    Returns
    -------
    SplitSimulationResult

    Raises
    ------
    TypeError
        An argument of the wrong type.
    ValueError
        An argument out of range (the message names it and the bound); ``label_dp``
        with a split that sends no labels; a cut the model does not have.

    Notes
    -----
    ε for the cut layer counts one Poisson-subsampled Gaussian event (noise multiplier
    ``activation_noise``, rate ``q = batch_size / n_k``) per training step of each
    client, and reports the largest ε over the clients (vertical: the parties share the
    rows and the steps, and the multiplier is ``activation_noise / sqrt(parties)``, as
    each party sends its own noised embedding of every sampled row). It covers what the
    server sees of the activations, not the bottom weights handed between clients or
    averaged (trained on raw rows). The amplification by subsampling it claims assumes
    the convention of :func:`ppml_fast.split.defences.cut_layer_dp`: the receiver does
    not learn which examples were sampled (a protocol that reveals it -- the simulation
    sends the sampled rows only, aligned with their labels -- is covered by it only if
    it pads every step with pure-noise rows for the examples not sampled). The gradient
    perturbation is accounted the same way for the labels, with replace-one adjacency,
    and only where the gradients leave the label holder (U-shaped, vertical).
    """
    s = _check_arguments(
        data,
        split=split,
        model=model,
        cut=cut,
        clients=clients,
        rounds=rounds,
        fraction=fraction,
        local_epochs=local_epochs,
        batch_size=batch_size,
        lr=lr,
        combine=combine,
        activation_noise=activation_noise,
        clip=clip,
        nopeek=nopeek,
        label_dp=label_dp,
        gradient_noise=gradient_noise,
        gradient_clip=gradient_clip,
        leakage=leakage,
        delta=delta,
        seed=seed,
        executor=executor,
    )
    return _run(s, progress)


class _Settings(NamedTuple):
    data: Dataset
    X: np.ndarray
    y: np.ndarray
    split: str
    protocol: SplitNN | SplitFed | VerticalSplitNN
    parts: list[np.ndarray]  # each client's rows (horizontal family)
    rounds: int
    fraction: float
    leakage: bool
    master: np.random.SeedSequence | None
    executor: Executor | None


_MLP_HIDDEN = (32, 16)


def _resolve_model(model: object, d: int, k: int) -> LayeredModel:
    if isinstance(model, LayeredModel):
        if model.sizes[0] != d or model.sizes[-1] != k:
            raise ValueError(
                f"model sizes must start with the {d} features and end with the {k} classes, "
                f"got {model.sizes}"
            )
        return model
    if isinstance(model, str):
        name = check_choice(model, "model", ("mlp", "logreg"))
        hidden: tuple[int, ...] = _MLP_HIDDEN if name == "mlp" else ()
        return LayeredModel((d, *hidden, k))
    if isinstance(model, (bytes, np.ndarray)) or not isinstance(model, Sequence):
        raise TypeError(
            "model must be 'mlp', 'logreg', a sequence of hidden widths or a LayeredModel, "
            f"got {type(model).__name__}"
        )
    widths = tuple(check_int(h, "model hidden width", minimum=1) for h in model)
    return LayeredModel((d, *widths, k))


def _check_arguments(data: Dataset | str, **kw: Any) -> _Settings:
    """Validate :func:`run_split_simulation`'s arguments before anything is drawn."""
    if isinstance(data, str):
        data = load_dataset(data)
    X, y = _check_data(data)
    split = check_choice(kw["split"], "split", SPLITS)
    mdl = _resolve_model(kw["model"], X.shape[1], data.n_classes)
    n_rounds = check_int(kw["rounds"], "rounds", minimum=1)
    frac = check_scalar(kw["fraction"], "fraction", RATE)
    leakage = check_bool(kw["leakage"], "leakage")
    defences = Defences(
        activation_noise=kw["activation_noise"],
        clip=kw["clip"],
        nopeek=kw["nopeek"],
        label_dp=kw["label_dp"],
        gradient_noise=kw["gradient_noise"],
        gradient_clip=kw["gradient_clip"],
        delta=kw["delta"],
    )
    executor = kw["executor"]
    if executor is not None and not isinstance(executor, Executor):
        raise TypeError(
            "executor must be a concurrent.futures.Executor (e.g. a Dask client's "
            f"get_executor()), got {type(executor).__name__}"
        )
    seed = kw["seed"]
    master: np.random.SeedSequence | None
    if isinstance(seed, np.random.SeedSequence):
        master = seed
    elif seed is None:
        master = None
    else:
        master = np.random.SeedSequence(check_int(seed, "seed", minimum=0))
    training = dict(batch_size=kw["batch_size"], lr=kw["lr"], local_epochs=kw["local_epochs"])
    protocol: SplitNN | SplitFed | VerticalSplitNN
    parts: list[np.ndarray] = []
    if split == "vertical":
        n_parties = 2 if kw["clients"] is None else kw["clients"]
        n_parties = check_int(n_parties, "clients", minimum=1, maximum=X.shape[1])
        blocks = np.array_split(np.arange(X.shape[1]), n_parties)
        if kw["combine"] is not None:
            check_choice(kw["combine"], "combine", ("concat", "sum"))
        protocol = VerticalSplitNN(
            mdl, blocks, kw["cut"], combine=kw["combine"], defences=defences, **training
        )
    else:
        if kw["combine"] is not None:
            raise ValueError(f"combine applies to the vertical split, not {split!r}")
        n_clients = 4 if kw["clients"] is None else kw["clients"]
        n_clients = check_int(n_clients, "clients", minimum=1, maximum=y.size)
        cls = SplitFed if split == "splitfed" else SplitNN
        configuration = "u_shaped" if split == "u-shaped" else "label_sharing"
        protocol = cls(mdl, kw["cut"], configuration=configuration, defences=defences, **training)
        parts = iid_partition(y.size, n_clients, rng=_rng.default_rng(_child(master, _PARTITION)))
    return _Settings(data, X, y, split, protocol, parts, n_rounds, frac, leakage, master, executor)


class _Ledger:
    """The accountants of a run: one per client for the cut layer, one per label owner.

    Cut layer: one Poisson-subsampled Gaussian event per training step, noise multiplier
    ``activation_noise`` -- divided by ``sqrt(K)`` in a vertical split, where each of the
    ``K`` parties sends its own noised embedding of the same row, so the row's features
    are released through a Gaussian mechanism of sensitivity ``sqrt(K) C``.

    Labels: the gradient perturbation protects a label only where the gradients go to a
    party that does not hold the labels (U-shaped: the client returns the gradient to the
    server; vertical: the label holder returns them to the parties). Changing one label
    moves that example's clipped gradient by up to ``2 C``, so the event's multiplier is
    ``gradient_noise / 2`` (replace-one adjacency). In label-sharing splits the labels
    themselves are sent: only label DP protects them.
    """

    def __init__(self, d: Defences, split: str, parties: int = 1) -> None:
        self.d = d
        self.cut: dict[int, accounting.RDPAccountant] = {}
        self.labels: dict[int, accounting.RDPAccountant] = {}
        self.cut_sigma: float | None = None
        if d.activation_noise is not None:
            self.cut_sigma = float(d.activation_noise) / math.sqrt(parties)
        self.label_sigma: float | None = None
        if d.gradient_noise is not None and split in ("u-shaped", "vertical"):
            self.label_sigma = float(d.gradient_noise) / 2.0

    def record(self, owner: int, steps: int, q: float | None) -> None:
        """``steps`` subsampled Gaussian events at rate ``q`` for client ``owner``."""
        for sigma, book in ((self.cut_sigma, self.cut), (self.label_sigma, self.labels)):
            if sigma is None:
                continue
            assert q is not None
            acct = book.setdefault(owner, accounting.RDPAccountant())
            for _ in range(steps):
                acct.step(noise_multiplier=sigma, sample_rate=q)

    def _worst(
        self, book: dict[int, accounting.RDPAccountant]
    ) -> tuple[float, tuple[tuple[float, float, int], ...]]:
        best = -1.0
        hist: tuple[tuple[float, float, int], ...] = ()
        for c in sorted(book):
            eps = book[c].get_epsilon(self.d.delta)
            if eps > best:
                best, hist = eps, tuple(book[c].history)
        return best, hist

    def epsilons(
        self,
    ) -> tuple[float | None, float | None, tuple[tuple[float, float, int], ...] | None]:
        """(cut-layer ε, label ε, the cut-layer history) so far."""
        eps = hist = None
        if self.cut_sigma is not None and self.cut:
            eps, hist = self._worst(self.cut)
        label: float | None = None
        if self.label_sigma is not None and self.labels:
            label = self._worst(self.labels)[0]
        if self.d.label_dp is not None:
            label = float(self.d.label_dp) if label is None else min(label, self.d.label_dp)
        return eps, label, hist


def _norm_auc(
    grads: list[np.ndarray | None], labels: list[np.ndarray | None], k: int
) -> float | None:
    """The norm attack's AUC on the round's returned gradients (binary tasks only).

    The positive class is the round's minority label (label 1 on a tie), as the attack
    assumes: the rare class gets the large gradients, so the AUC is above 0.5 when the
    norms leak and near 0.5 when they do not.
    """
    g = [a for a in grads if a is not None]
    y = [a for a in labels if a is not None]
    if k != 2 or not g:
        return None
    yy = np.concatenate(y)
    n0, n1 = np.count_nonzero(yy == 0), np.count_nonzero(yy == 1)
    if n0 == 0 or n1 == 0:
        return None  # one class only this round: the AUC is undefined
    positive = 0 if n0 < n1 else 1
    return float(_leakage.norm_leakage_auc(np.concatenate(g), yy, positive=positive))


def _activation_dcor(s: _Settings, params: SplitParams | VerticalParams, r: int) -> float:
    """dCor of the first test rows with the cut-layer message sent for them."""
    x = s.data.X_test[:LEAKAGE_ROWS]
    d = s.protocol.defences
    gen = _rng.default_rng(_child(s.master, _LEAK, r))
    p = s.protocol
    if isinstance(p, VerticalSplitNN):
        assert isinstance(params, VerticalParams)
        pairs = list(zip((x[:, c] for c in p.blocks), p.activations(params, x), strict=True))
    else:
        assert isinstance(params, SplitParams)
        pairs = [(x, p.activations(params, x))]
    out = 0.0
    for xk, z in pairs:
        c = d.cut_clip
        if c is not None:
            sigma = 0.0 if d.activation_noise is None else float(d.activation_noise)
            z = np.asarray(_defences.cut_layer_dp(z, c, sigma, rng=gen).values)
        out = max(out, float(_leakage.activation_leakage(xk, z)))
    return out


def _run(s: _Settings, progress: bool | None) -> SplitSimulationResult:
    p = s.protocol
    d = p.defences
    k = s.data.n_classes
    params: SplitParams | VerticalParams = p.init(_rng.default_rng(_child(s.master, _INIT)))
    ledger = _Ledger(d, s.split, p.parties if isinstance(p, VerticalSplitNN) else 1)
    # Label DP: every client randomizes each of its labels once, before the first round.
    clients_xy: list[tuple[np.ndarray, np.ndarray]] = []
    true_labels: list[np.ndarray] = []
    for c, rows in enumerate(s.parts):
        yc = s.y[rows]
        sent = yc
        if d.label_dp is not None:
            gen = _rng.default_rng(_child(s.master, _LABELS, c))
            sent = np.asarray(_defences.rr_with_prior(yc, float(d.label_dp), n_classes=k, rng=gen))
        clients_xy.append((s.X[rows], sent))
        true_labels.append(yc)
    own_pool = s.split == "splitfed" and s.executor is None
    pool = ThreadPoolExecutor(max_workers=_config.get_num_threads()) if own_pool else s.executor
    bar = _progress_bar(s.rounds, progress)
    history: list[SplitRoundRecord] = []
    try:
        for r in range(s.rounds):
            agg_s = 0.0
            models = 0
            grads: list[np.ndarray | None] = []
            labels: list[np.ndarray | None] = []
            if isinstance(p, VerticalSplitNN):
                assert isinstance(params, VerticalParams)
                vr = p.train_round(
                    params, s.X, s.y, seed=_child(s.master, _CLIENT, r, 0), leakage=s.leakage
                )
                params = vr.params
                ledger.record(0, vr.steps, vr.sample_rate)
                n_clients, examples, loss_sum = p.parties, vr.examples, vr.loss_sum
                up, down, client_s, server_s = vr.bytes_up, vr.bytes_down, vr.client_s, vr.server_s
                grads.append(vr.leak_gradients)
                labels.append(vr.leak_labels)
            else:
                assert isinstance(params, SplitParams)
                if isinstance(p, SplitFed):
                    n = len(s.parts)
                    m = max(1, round(s.fraction * n))
                    gen = _rng.default_rng(_child(s.master, _SERVER, r))
                    chosen = np.sort(gen.choice(n, m, replace=False)) if m < n else np.arange(n)
                    params, turns, agg_s = p.train_round(
                        params,
                        [clients_xy[c] for c in chosen],
                        seeds=[_child(s.master, _CLIENT, r, int(c)) for c in chosen],
                        true_labels=[true_labels[c] for c in chosen],
                        leakage=s.leakage,
                        executor=pool,
                    )
                    size = params.bottom.nbytes + (0 if params.head is None else params.head.nbytes)
                    models = 2 * m * size  # each sampled client uploads, then downloads
                else:
                    chosen = np.arange(len(s.parts))
                    params, turns = p.train_round(
                        params,
                        clients_xy,
                        seeds=[_child(s.master, _CLIENT, r, c) for c in range(len(s.parts))],
                        true_labels=true_labels,
                        leakage=s.leakage,
                    )
                    size = params.bottom.nbytes + (0 if params.head is None else params.head.nbytes)
                    models = size * len(chosen) if len(chosen) > 1 else 0  # the relay hand-offs
                for c, t in zip(chosen, turns, strict=True):
                    ledger.record(int(c), t.steps, t.sample_rate)
                n_clients = len(turns)
                examples, loss_sum, up, down, client_s, server_s = _sums(turns)
                grads += [t.leak_gradients for t in turns]
                labels += [t.leak_labels for t in turns]
            eps, label_eps, hist = ledger.epsilons()
            history.append(
                SplitRoundRecord(
                    round=r + 1,
                    clients=n_clients,
                    train_loss=loss_sum / examples if examples else float("nan"),
                    test_accuracy=_accuracy(p, params, s.data),
                    epsilon=eps,
                    label_epsilon=label_eps,
                    bytes_up=up,
                    bytes_down=down,
                    bytes_models=models,
                    client_s=client_s,
                    server_s=server_s,
                    aggregation_s=agg_s,
                    leakage_auc=_norm_auc(grads, labels, k) if s.leakage else None,
                    activation_dcor=_activation_dcor(s, params, r) if s.leakage else None,
                    accounting=hist,
                )
            )
            if bar is not None:
                bar.update(1)
                bar.set_postfix(acc=f"{history[-1].test_accuracy:.3f}")
    finally:
        if bar is not None:
            bar.close()
        if own_pool and pool is not None:
            pool.shutdown()
    return SplitSimulationResult(params, p, history)


def _accuracy(
    p: SplitNN | SplitFed | VerticalSplitNN, params: SplitParams | VerticalParams, data: Dataset
) -> float:
    """The test accuracy of the parts (each protocol evaluates its own kind of params)."""
    if isinstance(p, VerticalSplitNN):
        assert isinstance(params, VerticalParams)
        return p.accuracy(params, data.X_test, data.y_test)
    assert isinstance(params, SplitParams)
    return p.accuracy(params, data.X_test, data.y_test)


def _sums(turns: list[ClientRound]) -> tuple[int, float, int, int, float, float]:
    """(examples, loss sum, bytes up, bytes down, client s, server s) over the turns."""
    return (
        sum(t.examples for t in turns),
        sum(t.loss_sum for t in turns),
        sum(t.bytes_up for t in turns),
        sum(t.bytes_down for t in turns),
        sum(t.client_s for t in turns),
        sum(t.server_s for t in turns),
    )
