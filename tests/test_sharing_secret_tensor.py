"""SecretTensor semantics: operands of different rank broadcast like plaintext numpy arrays
(never against the parties' axis), ``sum`` over an out-of-range axis is refused without
opening the secret, and a seeded SecretTensor draws fresh Beaver triples and truncation
pairs for every operation (its stream never restarts)."""

from __future__ import annotations

import numpy as np
import pytest

from ppml_fast import sharing as sh
from ppml_fast.sharing import SecretTensor

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # seeded-stream warning

X = np.array([1.0, 2.0, 3.0])
Y = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])  # leading dim == n_parties (2)


def test_secret_times_secret_of_lower_rank():
    sx, sy = SecretTensor.share(X, 2), SecretTensor.share(Y, 2)
    np.testing.assert_allclose((sx * sy).reveal(), X * Y, atol=1e-3)


def test_secret_plus_secret_of_lower_rank():
    sx, sy = SecretTensor.share(X, 2), SecretTensor.share(Y, 2)
    np.testing.assert_allclose((sx + sy).reveal(), X + Y, atol=1e-3)


def test_secret_times_plaintext_of_higher_rank():
    sx = SecretTensor.share(X, 2)
    got = (sx * Y).reveal()
    assert np.shape(got) == Y.shape
    np.testing.assert_allclose(got, X * Y, atol=1e-3)


def test_plaintext_array_times_secret_reflected():
    sx = SecretTensor.share(X, 2)
    got = (Y * sx).reveal()
    assert np.shape(got) == Y.shape
    np.testing.assert_allclose(got, X * Y, atol=1e-3)


def test_sum_out_of_range_negative_axis_does_not_open_the_secret():
    sx = SecretTensor.share(X, 2)
    with pytest.raises((ValueError, IndexError)):
        sx.sum(axis=-2)


def test_seeded_secret_tensor_does_not_reuse_triples(monkeypatch):
    seen = []
    real = sh.beaver_mul

    def spy(x_shares, y_shares, triple, **kw):
        seen.append((np.asarray(x_shares).copy(), triple))
        return real(x_shares, y_shares, triple, **kw)

    monkeypatch.setattr(sh, "beaver_mul", spy)
    sx = SecretTensor.share(X, 2, rng=7)
    sy = SecretTensor.share(2 * X, 2, rng=8)
    sx * sy
    sx * sy
    (xs0, t0), (_, t1) = seen
    assert not np.array_equal(t0.a, t1.a), "the same Beaver triple served two products"
    eps = sh.additive_reconstruct(sh.sub(xs0, t0.a))
    assert not np.array_equal(eps, xs0[1]), "opened eps equals party 1's share of x"
