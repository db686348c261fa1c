"""Federated-learning simulation: the bundled data sets and the client partitions."""

import numpy as np
import pytest

from ppml_fast import simulation as sim


@pytest.fixture(scope="module")
def digits():
    return sim.load_dataset("digits")


def test_iid_partition_sizes_and_cover():
    parts = sim.iid_partition(103, 10, rng=1)
    sizes = [p.size for p in parts]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == 103
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(103))
    assert all(
        np.array_equal(a, b) for a, b in zip(parts, sim.iid_partition(103, 10, rng=1), strict=True)
    )
    with pytest.raises(ValueError, match="n_clients must be <= n_samples = 5"):
        sim.iid_partition(5, 6)
    with pytest.raises(ValueError, match="n_clients must be >= 1"):
        sim.iid_partition(5, 0)


def _max_class_share(parts, y):
    return float(np.mean([np.bincount(y[p]).max() / p.size for p in parts]))


def test_dirichlet_partition_label_skew(digits):
    y = digits.y_train
    skewed = sim.dirichlet_partition(y, 20, 0.1, rng=0)
    flat = sim.dirichlet_partition(y, 20, 1000.0, rng=0)
    for parts in (skewed, flat):
        assert len(parts) == 20 and min(p.size for p in parts) >= 1
        np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(y.size))
    # digits has 10 balanced classes: an IID client's largest class holds ~10-20% of it
    assert _max_class_share(skewed, y) > 0.5
    assert _max_class_share(flat, y) < 0.25
    assert _max_class_share(sim.iid_partition(y.size, 20, rng=0), y) < 0.25


def test_dirichlet_partition_validation(digits):
    y = digits.y_train
    with pytest.raises(ValueError, match=r"no Dirichlet.*raise alpha or lower n_clients"):
        sim.dirichlet_partition(y, 200, 0.001, rng=0, max_tries=3)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        sim.dirichlet_partition(y, 5, 0.0)
    with pytest.raises(ValueError, match="labels must be a 1-d integer array"):
        sim.dirichlet_partition(y.astype(float), 5, 1.0)
    with pytest.raises(ValueError, match="n_clients \\* min_size must be <= len"):
        sim.dirichlet_partition(y[:10], 5, 1.0, min_size=3)
    parts = sim.dirichlet_partition(y, 10, 0.5, rng=0, min_size=20)
    assert min(p.size for p in parts) >= 20


def test_load_dataset():
    d = sim.load_dataset("breast-cancer", test_fraction=0.2)
    assert d.X_train.shape[1] == 30 and d.n_classes == 2
    assert d.X_test.shape[0] == round(0.2 * 569)
    np.testing.assert_allclose(d.X_train.mean(axis=0), 0, atol=1e-12)
    with pytest.raises(ValueError, match="name must be one of"):
        sim.load_dataset("mnist")
