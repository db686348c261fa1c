"""Federated-learning simulation: the numpy models' gradients, parameters and checks."""

import numpy as np
import pytest

from ppml_fast import simulation as sim

MODELS = {
    "logreg-binary": (sim.LogisticRegression(), 2),
    "logreg-softmax": (sim.LogisticRegression(), 4),
    "logreg-softmax-2": (sim.LogisticRegression(multinomial=True), 2),
    "mlp-tanh": (sim.MLP(hidden=5, activation="tanh"), 3),
    "mlp-relu": (sim.MLP(hidden=5, activation="relu"), 3),
}


def _problem(model, k, b=7, d=4, seed=0):
    gen = np.random.default_rng(seed)
    params = model.init(gen, d, k) + 0.3 * gen.standard_normal(model.init(gen, d, k).size)
    return params, gen.standard_normal((b, d)), gen.integers(0, k, b)


@pytest.mark.parametrize("name", MODELS)
def test_gradient_matches_central_differences(name):
    model, k = MODELS[name]
    params, X, y = _problem(model, k)
    g = model.gradient(params, X, y)
    h = 1e-6
    fd = np.empty_like(params)
    for i in range(params.size):
        e = np.zeros_like(params)
        e[i] = h
        fd[i] = (model.loss(params + e, X, y) - model.loss(params - e, X, y)) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("name", MODELS)
def test_per_example_gradients_are_single_example_gradients(name):
    model, k = MODELS[name]
    params, X, y = _problem(model, k)
    G = model.per_example_gradients(params, X, y)
    assert G.shape == (X.shape[0], params.size)
    for i in range(X.shape[0]):
        np.testing.assert_allclose(
            G[i], model.gradient(params, X[i : i + 1], y[i : i + 1]), rtol=1e-12, atol=1e-14
        )
    np.testing.assert_allclose(G.mean(axis=0), model.gradient(params, X, y), rtol=1e-12, atol=1e-14)
    assert model.per_example_gradients(params, X[:0], y[:0]).shape == (0, params.size)


def test_parameter_counts_and_predictions():
    lr, mlp = sim.LogisticRegression(), sim.MLP(hidden=8)
    assert lr.init(0, 64, 2).size == 65
    assert lr.init(0, 64, 10).size == 650
    assert sim.LogisticRegression(multinomial=True).init(0, 64, 2).size == 130
    assert mlp.init(0, 64, 10).size == 64 * 8 + 8 + 8 * 10 + 10
    X = np.array([[1.0], [-1.0]])
    w = np.array([5.0, 0.0])  # binary: logit = 5x
    assert list(lr.predict(w, X)) == [1, 0]
    assert lr.accuracy(w, X, np.array([1, 0])) == 1.0
    # the same seed gives the same MLP initialisation
    np.testing.assert_array_equal(mlp.init(3, 5, 3), mlp.init(3, 5, 3))


def test_model_validation():
    lr = sim.LogisticRegression()
    p = lr.init(0, 3, 4)
    X, y = np.zeros((2, 3)), np.array([0, 1])
    with pytest.raises(ValueError, match="multiple of n_features"):
        lr.loss(p[:-1], X, y)
    with pytest.raises(ValueError, match="X must be 2-d"):
        lr.gradient(p, np.zeros(3), y)
    with pytest.raises(ValueError, match=r"y must have shape \(2,\)"):
        lr.gradient(p, X, np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="integer class labels"):
        lr.gradient(p, X, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="n_classes must be >= 2"):
        lr.init(0, 3, 1)
    with pytest.raises(ValueError, match="activation must be one of"):
        sim.MLP(activation="sigmoid")
    with pytest.raises(ValueError, match="params must have"):
        sim.MLP(hidden=4).loss(np.zeros(7), X, y)
    with pytest.raises(ValueError, match="at least one row"):
        lr.accuracy(p, X[:0], y[:0])
