"""Split-learning models and protocols: the split model's gradients against the unsplit
model's (bit for bit where the arithmetic is the same, against the simulation's models and
against finite differences), the protocols' training steps, messages and bytes, and bad
arguments.

Random inputs come from a fixed seed and from one fresh seed per run (``FRESH``); the
comparisons are deterministic functions of the drawn inputs, so a failure on the fresh
seed is a real disagreement, not a false alarm.
"""

from __future__ import annotations

import numpy as np
import pytest

from ppml_fast import simulation as sim
from ppml_fast.split.models import LayeredModel, Segment, softmax_cross_entropy
from ppml_fast.split.protocols import (
    Defences,
    SplitFed,
    SplitNN,
    SplitParams,
    VerticalParams,
    VerticalSplitNN,
)

from .thresholds import FRESH

pytestmark = pytest.mark.filterwarnings("ignore::ppml_fast.InsecureRandomnessWarning")

SEEDS = [20240607, FRESH]


def _batch(gen, b, d, k):
    return gen.normal(size=(b, d)), gen.integers(0, k, b)


def _split_gradient(model, cut, head, params, X, y):
    """Backpropagation part by part, as the protocols run it."""
    parts = model.split(cut, head=head)
    ps = parts.split_params(params)
    a, caches = X, []
    for seg, p in zip(parts.segments(), ps, strict=True):
        a, c = seg.forward(p, a)
        caches.append(c)
    _, g = softmax_cross_entropy(a, y)
    grads = []
    for i in range(len(ps) - 1, -1, -1):
        gp, g = parts.segments()[i].backward(ps[i], caches[i], g, input_grad=i > 0)
        grads.append(gp)
    return np.concatenate(grads[::-1])


# ------------------------------------------------------------------------ models


@pytest.mark.parametrize("seed", SEEDS, ids=["fixed", "fresh"])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_split_gradients_are_bit_equal_to_the_unsplit_model(seed, activation):
    gen = np.random.default_rng(seed)
    model = LayeredModel((7, 9, 6, 5, 3), activation)
    params = model.init(gen) + gen.normal(scale=0.1, size=model.whole.n_params)
    X, y = _batch(gen, 23, 7, 3)
    whole = model.gradient(params, X, y)
    for cut in range(1, model.n_layers + 1):
        np.testing.assert_array_equal(_split_gradient(model, cut, 0, params, X, y), whole)
    for cut in (1, 2):  # U-shaped: bottom, server, head
        np.testing.assert_array_equal(_split_gradient(model, cut, 1, params, X, y), whole)


@pytest.mark.parametrize("seed", SEEDS, ids=["fixed", "fresh"])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_gradients_match_the_simulation_models(seed, activation):
    """Same parameter layout as the simulation's MLP and multinomial logistic regression."""
    gen = np.random.default_rng(seed)
    X, y = _batch(gen, 31, 6, 4)
    mlp = LayeredModel((6, 8, 4), activation)
    p = mlp.init(gen) + gen.normal(scale=0.2, size=mlp.whole.n_params)
    ref = sim.MLP(hidden=8, activation=activation)
    np.testing.assert_allclose(mlp.gradient(p, X, y), ref.gradient(p, X, y), rtol=0, atol=1e-12)
    assert mlp.loss(p, X, y) == pytest.approx(ref.loss(p, X, y), rel=1e-13)
    np.testing.assert_allclose(
        _split_gradient(mlp, 1, 0, p, X, y), ref.gradient(p, X, y), rtol=0, atol=1e-12
    )
    logreg = LayeredModel((6, 4))
    q = gen.normal(size=logreg.whole.n_params)
    ref_lr = sim.LogisticRegression(multinomial=True)
    np.testing.assert_allclose(
        logreg.gradient(q, X, y), ref_lr.gradient(q, X, y), rtol=0, atol=1e-12
    )
    np.testing.assert_array_equal(logreg.predict(q, X), ref_lr.predict(q, X))


@pytest.mark.parametrize("seed", SEEDS, ids=["fixed", "fresh"])
def test_gradients_against_central_finite_differences(seed):
    gen = np.random.default_rng(seed)
    model = LayeredModel((5, 6, 4, 3), "tanh")  # smooth: no kinks for the differences
    p = model.init(gen)
    X, y = _batch(gen, 12, 5, 3)
    g = _split_gradient(model, 2, 0, p, X, y)
    h = 1e-6
    fd = np.empty_like(p)
    for i in range(p.size):
        e = np.zeros_like(p)
        e[i] = h
        fd[i] = (model.loss(p + e, X, y) - model.loss(p - e, X, y)) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("seed", SEEDS, ids=["fixed", "fresh"])
def test_the_cut_layer_gradient_against_finite_differences(seed):
    """The gradient a server returns is ∂L/∂z of the cut-layer activations."""
    gen = np.random.default_rng(seed)
    model = LayeredModel((4, 5, 6, 3), "tanh")
    parts = model.split(1)
    pb, pt = parts.split_params(model.init(gen))
    X, y = _batch(gen, 8, 4, 3)
    z, _ = parts.bottom.forward(pb, X)
    out, cache = parts.top.forward(pt, z)
    _, g = softmax_cross_entropy(out, y)
    _, gz = parts.top.backward(pt, cache, g)

    def loss(zz):
        return softmax_cross_entropy(parts.top.forward(pt, zz)[0], y)[0]

    fd = np.empty_like(z)
    for idx in np.ndindex(*z.shape):
        e = np.zeros_like(z)
        e[idx] = 1e-6
        fd[idx] = (loss(z + e) - loss(z - e)) / 2e-6
    np.testing.assert_allclose(gz, fd, rtol=1e-6, atol=1e-9)


def test_segment_layout_and_identity():
    model = LayeredModel((3, 4, 2))
    assert model.whole.n_params == 3 * 4 + 4 + 4 * 2 + 2
    parts = model.split(2)  # the whole model on the client: the server only has the loss
    assert parts.top.n_layers == 0 and parts.top.n_params == 0
    z = np.arange(6.0).reshape(3, 2)
    out, cache = parts.top.forward(np.zeros(0), z)
    np.testing.assert_array_equal(out, z)
    gp, gin = parts.top.backward(np.zeros(0), cache, z)
    assert gp.size == 0
    np.testing.assert_array_equal(gin, z)
    assert softmax_cross_entropy(np.zeros((0, 3)), np.zeros(0, dtype=np.int64))[0] == 0.0


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (dict(sizes=(3,)), ValueError, "sizes must hold >= 2"),
        (dict(sizes=(3, 1)), ValueError, "classes"),
        (dict(sizes=(3, 0, 2)), ValueError, "sizes"),
        (dict(sizes=(3, 2.5, 2)), TypeError, "sizes"),
        (dict(sizes="32"), TypeError, "sizes"),
        (dict(sizes=np.array(0.0)), TypeError, "sizes"),  # has __len__, but no length
        (dict(sizes=np.ones((2, 2), dtype=np.int64)), TypeError, "sizes"),
        (dict(sizes=(3, 2), activation="gelu"), ValueError, "activation"),
    ],
)
def test_layered_model_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        LayeredModel(**kwargs)


def test_bad_cuts_and_params():
    model = LayeredModel((3, 4, 5, 2))
    with pytest.raises(ValueError, match="cut"):
        model.split(0)
    with pytest.raises(ValueError, match="cut"):
        model.split(4)
    with pytest.raises(ValueError, match="cut"):
        model.split(3, head=1)
    with pytest.raises(ValueError, match="head"):
        model.split(1, head=2)
    with pytest.raises(ValueError, match="params must be a 1-d array of 16"):
        model.split(1).bottom.forward(np.zeros(5), np.zeros((2, 3)))
    assert isinstance(model.split(1).bottom, Segment)


# --------------------------------------------------------------------- protocols


def _data(seed, n=60, d=6, k=3):
    gen = np.random.default_rng(seed)
    X = gen.normal(size=(n, d))
    y = np.argmax(X[:, :k] + 0.3 * gen.normal(size=(n, k)), axis=1).astype(np.int64)
    return X, y


@pytest.mark.parametrize("configuration", ["label_sharing", "u_shaped"])
def test_one_splitnn_step_is_the_unsplit_sgd_step_bit_for_bit(configuration):
    """One batch holding every row, no defence: the parties' SGD steps are the unsplit
    model's step, with the same arithmetic."""
    X, y = _data(1)
    model = LayeredModel((6, 8, 7, 3))
    nn = SplitNN(model, 1, configuration=configuration, batch_size=len(y), lr=0.3)
    params = nn.init(5)
    res = nn.client_round(params, X, y, seed=2)
    assert res.steps == 1 and res.examples == len(y)
    full = nn.full_params(params)
    # the turn shuffles the rows: the same mean, summed in another order
    expected = full - 0.3 * model.gradient(full, X, y)
    np.testing.assert_allclose(nn.full_params(res.params), expected, rtol=0, atol=1e-14)
    assert res.loss_sum / res.examples == pytest.approx(model.loss(full, X, y), rel=1e-12)


@pytest.mark.parametrize("configuration", ["label_sharing", "u_shaped"])
def test_one_splitnn_step_with_the_turns_own_batches_is_bit_equal(configuration, monkeypatch):
    """With the batch order the turn draws replaced by the identity, the update is the
    unsplit model's SGD step bit for bit."""
    from ppml_fast.split import protocols

    X, y = _data(2)
    model = LayeredModel((6, 8, 7, 3))
    monkeypatch.setattr(
        protocols,
        "_batches",
        lambda gen, n, b, e, poisson: ([np.arange(n)], None),
    )
    nn = SplitNN(model, 1, configuration=configuration, batch_size=len(y), lr=0.3)
    params = nn.init(5)
    res = nn.client_round(params, X, y, seed=2)
    full = nn.full_params(params)
    np.testing.assert_array_equal(
        nn.full_params(res.params), full - 0.3 * model.gradient(full, X, y)
    )


def test_vertical_with_one_party_is_the_unsplit_step(monkeypatch):
    from ppml_fast.split import protocols

    monkeypatch.setattr(protocols, "_batches", lambda gen, n, b, e, poisson: ([np.arange(n)], None))
    X, y = _data(3)
    model = LayeredModel((6, 8, 3))
    v = VerticalSplitNN(model, [np.arange(6)], 1, batch_size=len(y), lr=0.2)
    p = v.init(4)
    res = v.train_round(p, X, y, seed=0)
    full = np.concatenate([p.bottoms[0], p.top])
    expected = full - 0.2 * model.gradient(full, X, y)
    np.testing.assert_array_equal(np.concatenate([res.params.bottoms[0], res.params.top]), expected)


@pytest.mark.parametrize("seed", SEEDS, ids=["fixed", "fresh"])
def test_vertical_logistic_regression_sums_partial_logits(seed, monkeypatch):
    """Vertical logistic regression (``combine="sum"``): the parties' partial logits add to
    the full model's, and each party's step is its block of the full gradient."""
    from ppml_fast.split import protocols

    monkeypatch.setattr(protocols, "_batches", lambda gen, n, b, e, poisson: ([np.arange(n)], None))
    X, y = _data(seed)
    blocks = [np.array([0, 3, 5]), np.array([1, 2]), np.array([4])]
    v = VerticalSplitNN(LayeredModel((6, 3)), blocks, 1, lr=0.5)
    assert v.combine == "sum"
    p = v.init(seed)
    w = np.zeros((6, 3))
    b = np.zeros(3)
    for blk, pk in zip(blocks, p.bottoms, strict=True):
        w[blk] = pk[: blk.size * 3].reshape(blk.size, 3)
        b += pk[blk.size * 3 :]
    np.testing.assert_allclose(v.logits(p, X), X @ w + b, rtol=1e-12, atol=1e-12)
    full = LayeredModel((6, 3))
    g = full.gradient(np.concatenate([w.ravel(), b]), X, y)
    gw, gb = g[:18].reshape(6, 3), g[18:]
    res = v.train_round(p, X, y, seed=0)
    for blk, before, after in zip(blocks, p.bottoms, res.params.bottoms, strict=True):
        step = (before - after) / 0.5
        np.testing.assert_allclose(step[: blk.size * 3], gw[blk].ravel(), atol=1e-13)
        np.testing.assert_allclose(step[blk.size * 3 :], gb, atol=1e-13)


def test_message_bytes_are_the_arrays_sent():
    X, y = _data(4, n=50)
    model = LayeredModel((6, 8, 7, 3))
    h1, h2 = 8, 7
    res = SplitNN(model, 1, batch_size=16).client_round(SplitNN(model).init(0), X, y, seed=1)
    assert res.steps == 4  # 16 + 16 + 16 + 2
    assert res.bytes_up == 50 * (h1 * 8 + y.itemsize)  # activations and labels
    assert res.bytes_down == 50 * h1 * 8
    u = SplitNN(model, 1, configuration="u_shaped", batch_size=16)
    res = u.client_round(u.init(0), X, y, seed=1)
    assert res.bytes_up == 50 * (h1 + h2) * 8  # activations, head-input gradients
    assert res.bytes_down == 50 * (h2 + h1) * 8  # server outputs, cut-layer gradients
    v = VerticalSplitNN(model, np.array_split(np.arange(6), 3), 1, batch_size=16)
    vr = v.train_round(v.init(0), X, y, seed=1)
    assert vr.bytes_up == vr.bytes_down == 3 * 50 * h1 * 8
    v = VerticalSplitNN(model, np.array_split(np.arange(6), 2), 1, combine="sum")
    vr = v.train_round(v.init(0), X, y, seed=1)
    assert vr.bytes_up == vr.bytes_down == 2 * 50 * h1 * 8


def test_poisson_batches_under_dp_and_their_bytes():
    X, y = _data(5, n=80)
    model = LayeredModel((6, 8, 3))
    nn = SplitNN(model, 1, batch_size=10, defences=Defences(activation_noise=1.0, clip=2.0))
    res = nn.client_round(nn.init(0), X, y, seed=3)
    assert res.sample_rate == pytest.approx(10 / 80) and res.steps == 8
    assert res.bytes_up == res.examples * (8 * 8 + 8)
    assert res.examples != 80  # Poisson batches (this seed's draw)


def test_protocol_runs_are_reproducible_and_seeds_matter():
    X, y = _data(6)
    model = LayeredModel((6, 8, 7, 3))
    d = Defences(activation_noise=0.5, clip=1.0, nopeek=0.2, gradient_noise=0.5)
    for proto in (
        SplitNN(model, 1, defences=d),
        SplitNN(model, 1, configuration="u_shaped", defences=d),
    ):
        p = proto.init(1)
        a = proto.client_round(p, X, y, seed=9)
        b = proto.client_round(p, X, y, seed=9)
        c = proto.client_round(p, X, y, seed=10)
        np.testing.assert_array_equal(proto.full_params(a.params), proto.full_params(b.params))
        assert not np.array_equal(proto.full_params(a.params), proto.full_params(c.params))
        assert a.bytes_up == b.bytes_up and a.loss_sum == b.loss_sum


def test_the_inputs_are_not_modified():
    X, y = _data(7)
    model = LayeredModel((6, 8, 7, 3))
    nn = SplitNN(model, 2, configuration="label_sharing")
    p = nn.init(0)
    copies = [a.copy() for a in (p.bottom, p.top, X, y)]
    nn.train_round(p, [(X[:30], y[:30]), (X[30:], y[30:])], seeds=[1, 2])
    for a, b in zip((p.bottom, p.top, X, y), copies, strict=True):
        np.testing.assert_array_equal(a, b)


def test_splitfed_averages_bottoms_and_tops():
    X, y = _data(8, n=60)
    model = LayeredModel((6, 8, 3))
    sf = SplitFed(model, 1, batch_size=8)
    p = sf.init(0)
    clients = [(X[:20], y[:20]), (X[20:60], y[20:60])]
    new, turns, _ = sf.train_round(p, clients, seeds=[1, 2])
    w = np.array([20.0, 40.0])
    for part in ("bottom", "top"):
        stack = np.stack([getattr(t.params, part) for t in turns])
        np.testing.assert_allclose(getattr(new, part), w @ stack / 60, rtol=1e-14, atol=1e-15)
    # each client started from the round's model, not from the previous client's
    alone, _ = SplitNN(model, 1, batch_size=8).train_round(p, clients[1:], seeds=[2])
    np.testing.assert_array_equal(turns[1].params.bottom, alone.bottom)


def test_each_protocol_trains():
    data = sim.load_dataset("breast-cancer")
    X, y = data.X_train, data.y_train
    model = LayeredModel((30, 16, 8, 2))
    clients = [(X[i::3], y[i::3]) for i in range(3)]
    chance = max(np.mean(data.y_test), 1 - np.mean(data.y_test))
    for proto in (SplitNN(model, 1), SplitNN(model, 1, configuration="u_shaped"), SplitFed(model)):
        p = proto.init(0)
        for r in range(3):
            p = proto.train_round(p, clients, seeds=[10 * r + c for c in range(3)])[0]
        assert proto.accuracy(p, data.X_test, data.y_test) > chance + 0.15
    v = VerticalSplitNN(model, np.array_split(np.arange(30), 3))
    vp = v.init(0)
    for r in range(3):
        vp = v.train_round(vp, X, y, seed=r).params
    assert isinstance(vp, VerticalParams)
    assert v.accuracy(vp, data.X_test, data.y_test) > chance + 0.15


def test_leakage_rows_are_the_returned_gradients():
    X, y = _data(9, n=40)
    model = LayeredModel((6, 8, 3))
    nn = SplitNN(model, 1, batch_size=40)
    res = nn.client_round(nn.init(0), X, y, seed=0, leakage=True)
    assert res.leak_gradients is not None and res.leak_gradients.shape == (40, 8)
    assert res.leak_labels is not None and sorted(res.leak_labels) == sorted(y)
    assert nn.client_round(nn.init(0), X, y, seed=0).leak_gradients is None


def test_protocol_bad_arguments():
    model = LayeredModel((6, 8, 3))
    with pytest.raises(TypeError, match="model must be a LayeredModel"):
        SplitNN("mlp")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="configuration"):
        SplitNN(model, configuration="y-shaped")
    with pytest.raises(ValueError, match="u_shaped split needs a model of >= 3 layers"):
        SplitNN(model, configuration="u_shaped")
    with pytest.raises(ValueError, match="label_dp"):
        SplitNN(LayeredModel((6, 8, 4, 3)), configuration="u_shaped", defences=Defences(label_dp=1))
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        SplitNN(model, batch_size=0)
    with pytest.raises(ValueError, match="lr must be > 0"):
        SplitNN(model, lr=0.0)
    with pytest.raises(TypeError, match="defences must be a Defences"):
        SplitNN(model, defences={"nopeek": 1.0})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="activation_noise must be >= 0"):
        Defences(activation_noise=-1.0)
    with pytest.raises(ValueError, match="clip must be > 0"):
        Defences(clip=0.0)
    with pytest.raises(ValueError, match="label_dp must be > 0"):
        Defences(label_dp=0.0)
    with pytest.raises(ValueError, match="delta must be in"):
        Defences(delta=1.0)
    with pytest.raises(ValueError, match="nopeek must be finite"):
        Defences(nopeek=float("nan"))
    nn = SplitNN(model)
    p = nn.init(0)
    with pytest.raises(ValueError, match=r"client X must have shape \(n, 6\)"):
        nn.client_round(p, np.zeros((4, 5)), np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match="seeds must hold one seed per client"):
        nn.train_round(p, [(np.zeros((4, 6)), np.zeros(4, dtype=int))], seeds=[1, 2])
    with pytest.raises(TypeError, match="executor"):
        SplitFed(model).train_round(p, [(np.zeros((4, 6)), np.zeros(4, dtype=int))], executor=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="combine='concat' needs a top layer"):
        VerticalSplitNN(LayeredModel((6, 3)), [np.arange(3), np.arange(3, 6)], combine="concat")
    with pytest.raises(ValueError, match=r"blocks\[1\] must index columns in \[0, 6\)"):
        VerticalSplitNN(model, [np.arange(3), np.arange(3, 7)])
    for blocks in (None, 0.0, 3, object()):
        with pytest.raises(TypeError, match="blocks must be a sequence of index arrays"):
            VerticalSplitNN(model, blocks)  # type: ignore[arg-type]
    for blocks in ("abc", b"ab"):
        with pytest.raises(TypeError, match="blocks must be a sequence of index arrays"):
            VerticalSplitNN(model, blocks)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"blocks\[1\] must be convertible"):
        VerticalSplitNN(model, [np.arange(3), [[1], [1, 2]]])
    with pytest.raises(ValueError, match="blocks must hold at least one party"):
        VerticalSplitNN(model, [])
    with pytest.raises(ValueError, match="label_dp applies to label-sharing"):
        VerticalSplitNN(model, [np.arange(6)], defences=Defences(label_dp=1.0))
    assert isinstance(p, SplitParams)


def test_a_clip_no_row_reaches_and_no_noise_leave_the_step_unchanged():
    """Clipping only (no noise: no Poisson sampling, no ε) with a bound above every row's
    norm sends the activations as they are and scales their gradient by 1."""
    X, y = _data(10)
    model = LayeredModel((6, 8, 7, 3))
    plain = SplitNN(model, 1, batch_size=16)
    clipped = SplitNN(model, 1, batch_size=16, defences=Defences(clip=1e6))
    p = plain.init(0)
    a = plain.client_round(p, X, y, seed=4)
    b = clipped.client_round(p, X, y, seed=4)
    assert b.sample_rate is None and a.steps == b.steps
    np.testing.assert_allclose(
        clipped.full_params(b.params), plain.full_params(a.params), rtol=1e-14, atol=1e-15
    )
    tight = SplitNN(model, 1, batch_size=16, defences=Defences(clip=1e-3))
    c = tight.client_round(p, X, y, seed=4)
    assert not np.allclose(tight.full_params(c.params), plain.full_params(a.params))
