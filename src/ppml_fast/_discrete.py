"""Exact discrete Laplace and Gaussian samplers (in progress)."""


def discrete_laplace(scale, size=None, *, rng=None):
    raise NotImplementedError


def discrete_gaussian(sigma, size=None, *, rng=None):
    raise NotImplementedError
