"""Bad-input fuzzing of every public function: a correct result or a clear refusal.

The contract (ARCHITECTURE.md): given one bad argument and otherwise good ones, a public
function either returns a sane result or raises ``TypeError`` / ``ValueError`` (or its
area's documented error class) whose message names the parameter, and leaves an ``out=``
buffer untouched. Never another exception type, a crash, a hang, a ``MemoryError`` from a
size that should have been refused, or NaN out of finite inputs.

Each public function has a *spec*: good keyword arguments and the parameters to spoil.
Every parameter is tried with every value of a fixed list of bad values (wrong types,
wrong dtypes and shapes, NaN/inf, empty, huge and negative numbers, non-contiguous and
read-only arrays), then with values Hypothesis draws (numbers at the edges of their
range, arrays of any dtype and shape).
"""

from __future__ import annotations

import math
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ppml_fast
from ppml_fast import accounting as acc
from ppml_fast import aggregation as ag
from ppml_fast import clipping as cl
from ppml_fast import mechanisms as me
from ppml_fast import noise as nz
from ppml_fast import paillier as pl
from ppml_fast import rng as rg
from ppml_fast import sharing as sh
from ppml_fast import simulation as sim
from ppml_fast import split as sp
from ppml_fast import stats as stt

try:
    from ppml_fast import ckks as ck
except ImportError:  # the ckks extra (TenSEAL) is not installed
    ck = None  # type: ignore[assignment]

pytestmark = pytest.mark.filterwarnings(
    "ignore::ppml_fast.InsecureRandomnessWarning", "ignore::UserWarning"
)

# --------------------------------------------------------------------------- bad values


def _readonly(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flags.writeable = False
    return a


def _bad_values() -> list[Any]:
    """One list for every parameter: each is wrong for most parameters, and the few it
    happens to suit must then give a correct result."""
    return [
        None,
        "abc",
        b"ab",
        ["a", "b"],
        object(),
        True,
        False,
        1 + 2j,
        math.nan,
        math.inf,
        -math.inf,
        -1,
        0,
        -1.5,
        2.5,
        1e-320,
        1e308,
        10**30,
        -(10**30),
        2**64,
        2**62,
        np.float64(np.nan),
        np.int64(-3),
        np.array(0.0),  # 0-d arrays: __len__ and __iter__ exist, but raise TypeError
        np.array(3),
        [],
        [[1.0], [1.0, 2.0]],  # ragged
        np.array([]),
        np.zeros((0, 3)),
        np.array([np.nan, 1.0]),
        np.array([1.0, np.inf]),
        np.arange(6).reshape(2, 3),
        np.ones(3, dtype=bool),
        np.array([1, 2], dtype=object),
        np.ones(4, dtype=np.float16),
        np.ones(3, dtype=np.complex128),
        np.array(["1", "2"]),
        np.ones((4, 6))[:, ::2],  # non-contiguous
        np.ones((2, 3, 4)),
        np.ones((3, 3), dtype=np.float32),
        _readonly(np.ones(3)),
        np.full(3, 1e300),
        np.full(3, -(2**63), dtype=np.int64),
        np.full(3, 2**64 - 1, dtype=np.uint64),
        (1, 2, 3),
        (-1, 2),
        (2**40, 2**40),
    ]


BAD = _bad_values()

#: Hypothesis' bad values: numbers at every edge, and arrays of any dtype and small shape.
_NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    # small, or beyond any machine's memory: sizes in between are valid and merely slow
    st.integers(min_value=-16, max_value=16),
    st.integers(min_value=2**45, max_value=2**70),
    st.integers(min_value=-(2**70), max_value=-(2**45)),
    st.complex_numbers(max_magnitude=1e6),
    st.booleans(),
)
_ARRAYS = hnp.arrays(
    dtype=st.sampled_from(
        [np.float64, np.float32, np.float16, np.int64, np.int8, np.uint64, np.bool_, np.complex64]
    ),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
)
DRAWN = st.one_of(_NUMBERS, _ARRAYS, st.lists(_NUMBERS, max_size=4), st.text(max_size=3))


# ------------------------------------------------------------------------------ specs


@dataclass
class Spec:
    """One public callable: good keyword arguments and the parameters to spoil."""

    name: str
    fn: Callable[..., Any]
    good: Callable[[], dict[str, Any]]
    params: list[str]
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    errors: tuple[type[BaseException], ...] = ()
    nan_ok: bool = False  # NaN in the result is documented (e.g. norms of NaN rows)


def _grads() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((4, 3))


_PK, _SK = pl.generate_paillier_keypair(n_length=256)
_ENC = _PK.encrypt_batch(np.array([1.5, -2.0, 3.25]))
_E1 = _PK.encrypt(2.5)
_PACKED = pl.encrypt_packed(_PK, [0.5, -0.25, 1.0], bits=16, clients=4, clip=1.0)


def _call_method(method: str) -> Callable[..., Any]:
    def call(obj: Any, **kw: Any) -> Any:
        return getattr(obj, method)(**kw)

    call.__name__ = method
    return call


def _binop(op: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    def call(a: Any, b: Any) -> Any:
        return op(a, b)

    return call


def _secagg_client_share(threshold: Any, neighbors: Any, roster: Any) -> Any:
    return ag.SecAggClient(0).share_keys(roster, neighbors, threshold)


_ROSTER = {u: ag.SecAggClient(u).advertise_keys() for u in range(4)}

SAMPLER = ["size", "rng", "dtype", "out"]

SPECS: list[Spec] = [
    # ---- noise
    Spec("gaussian", nz.gaussian, lambda: {"sigma": 1.0, "size": 3, "rng": 1}, ["sigma", *SAMPLER]),
    Spec("laplace", nz.laplace, lambda: {"scale": 1.0, "size": 3, "rng": 1}, ["scale", *SAMPLER]),
    Spec(
        "discrete_gaussian",
        nz.discrete_gaussian,
        lambda: {"sigma": 2.0, "size": 3, "rng": 1},
        ["sigma", *SAMPLER],
    ),
    Spec(
        "discrete_laplace",
        nz.discrete_laplace,
        lambda: {"scale": 2.0, "size": 3, "rng": 1},
        ["scale", *SAMPLER],
    ),
    # ---- mechanisms
    Spec(
        "laplace_mechanism",
        me.laplace_mechanism,
        lambda: {"value": np.ones(3), "sensitivity": 1.0, "epsilon": 1.0, "rng": 1},
        ["value", "sensitivity", "epsilon", "rng"],
    ),
    Spec(
        "gaussian_mechanism",
        me.gaussian_mechanism,
        lambda: {"value": np.ones(3), "sensitivity": 1.0, "epsilon": 1.0, "delta": 1e-5, "rng": 1},
        ["value", "sensitivity", "epsilon", "delta", "analytic", "rng"],
    ),
    Spec(
        "gaussian_sigma",
        me.gaussian_sigma,
        lambda: {"epsilon": 1.0, "delta": 1e-5, "sensitivity": 1.0},
        ["epsilon", "delta", "sensitivity", "analytic"],
    ),
    Spec(
        "geometric_mechanism",
        me.geometric_mechanism,
        lambda: {"value": np.arange(3), "sensitivity": 1, "epsilon": 1.0, "rng": 1},
        ["value", "sensitivity", "epsilon", "rng"],
    ),
    Spec(
        "exponential_mechanism",
        me.exponential_mechanism,
        lambda: {"utilities": np.arange(4.0), "epsilon": 1.0, "sensitivity": 1.0, "rng": 1},
        ["utilities", "epsilon", "sensitivity", "rng", "axis"],
    ),
    Spec(
        "report_noisy_max",
        me.report_noisy_max,
        lambda: {"utilities": np.arange(4.0), "epsilon": 1.0, "sensitivity": 1.0, "rng": 1},
        ["utilities", "epsilon", "sensitivity", "rng", "axis"],
    ),
    Spec(
        "randomized_response",
        me.randomized_response,
        lambda: {"bits": np.array([0, 1, 1]), "epsilon": 1.0, "rng": 1},
        ["bits", "epsilon", "rng"],
    ),
    Spec(
        "randomized_response_estimate",
        me.randomized_response_estimate,
        lambda: {"reports": np.array([0, 1, 1]), "epsilon": 1.0},
        ["reports", "epsilon", "axis"],
    ),
    # ---- stats
    *[
        Spec(
            f.__name__,
            f,
            lambda: {"x": np.arange(5.0), "bounds": (0.0, 4.0), "epsilon": 1.0, "rng": 1},
            ["x", "bounds", "epsilon", "rng", "axis"],
        )
        for f in (stt.dp_sum, stt.dp_mean, stt.dp_var)
    ],
    Spec(
        "dp_count",
        stt.dp_count,
        lambda: {"x": np.arange(5.0), "epsilon": 1.0, "rng": 1},
        ["x", "epsilon", "rng", "axis"],
    ),
    Spec(
        "dp_histogram",
        stt.dp_histogram,
        lambda: {"x": np.arange(5.0), "bins": 3, "range": (0.0, 4.0), "epsilon": 1.0, "rng": 1},
        ["x", "bins", "range", "epsilon", "rng"],
    ),
    # ---- accounting
    Spec(
        "compute_rdp",
        acc.compute_rdp,
        lambda: {"q": 0.1, "noise_multiplier": 1.0, "steps": 10, "orders": [2.0, 8.0]},
        ["q", "noise_multiplier", "steps", "orders"],
    ),
    Spec(
        "get_privacy_spent",
        acc.get_privacy_spent,
        lambda: {"orders": [2.0, 4.0, 8.0], "rdp": [0.1, 0.2, 0.4], "delta": 1e-5},
        ["orders", "rdp", "delta"],
    ),
    Spec(
        "get_noise_multiplier",
        acc.get_noise_multiplier,
        lambda: {"target_epsilon": 2.0, "target_delta": 1e-5, "sample_rate": 0.01, "steps": 100},
        ["target_epsilon", "target_delta", "sample_rate", "steps", "epsilon_tolerance"],
    ),
    Spec(
        "get_max_steps",
        acc.get_max_steps,
        lambda: {
            "target_epsilon": 2.0,
            "target_delta": 1e-5,
            "sample_rate": 0.01,
            "noise_multiplier": 1.0,
            "max_steps": 1000,
        },
        ["target_epsilon", "target_delta", "sample_rate", "noise_multiplier", "max_steps"],
    ),
    Spec(
        "compose",
        acc.compose,
        lambda: {"events": [(acc.GaussianEvent(2.0), 3)], "delta": 1e-5, "accountant": "rdp"},
        ["events", "delta", "accountant"],
    ),
    Spec(
        "create_accountant",
        acc.create_accountant,
        lambda: {"mechanism": "rdp"},
        ["mechanism"],
        aliases={"mechanism": ("accountant",)},
    ),
    Spec(
        "GaussianEvent", acc.GaussianEvent, lambda: {"noise_multiplier": 1.0}, ["noise_multiplier"]
    ),
    Spec("LaplaceEvent", acc.LaplaceEvent, lambda: {"noise_multiplier": 1.0}, ["noise_multiplier"]),
    Spec(
        "PoissonSampledEvent",
        acc.PoissonSampledEvent,
        lambda: {"sample_rate": 0.1, "event": acc.GaussianEvent(1.0)},
        ["sample_rate", "event"],
    ),
    Spec(
        "PrivacyBudget",
        acc.PrivacyBudget,
        lambda: {"epsilon": 1.0, "delta": 1e-5},
        ["epsilon", "delta", "composition", "delta_slack"],
    ),
    Spec(
        "RDPAccountant.step",
        _call_method("step"),
        lambda: {"obj": acc.RDPAccountant(), "noise_multiplier": 1.0, "sample_rate": 0.1},
        ["noise_multiplier", "sample_rate"],
    ),
    Spec(
        "RDPAccountant.compose",
        _call_method("compose"),
        lambda: {"obj": acc.RDPAccountant(), "event": acc.GaussianEvent(1.0), "count": 2},
        ["event", "count"],
    ),
    Spec(
        "RDPAccountant.get_epsilon",
        _call_method("get_epsilon"),
        lambda: {"obj": _stepped(acc.RDPAccountant()), "delta": 1e-5, "alphas": [2.0, 8.0]},
        ["delta", "alphas"],
    ),
    Spec(
        "PRVAccountant.get_epsilon",
        _call_method("get_epsilon"),
        lambda: {"obj": _stepped(acc.PRVAccountant()), "delta": 1e-5},
        ["delta"],
    ),
    Spec(
        "load_state_dict",
        _call_method("load_state_dict"),
        lambda: {
            "obj": acc.RDPAccountant(),
            "state_dict": {"history": [(1.0, 0.1, 2)], "mechanism": "rdp"},
        },
        ["state_dict"],
    ),
    # ---- clipping
    Spec(
        "clip_per_sample",
        cl.clip_per_sample,
        lambda: {"grads": _grads(), "max_norm": 1.0, "out": np.zeros((4, 3))},
        ["grads", "max_norm", "out", "nonfinite"],
    ),
    Spec(
        "clip_and_sum",
        cl.clip_and_sum,
        lambda: {"grads": _grads(), "max_norm": 1.0, "out": np.zeros(3)},
        ["grads", "max_norm", "out", "nonfinite"],
    ),
    Spec(
        "per_sample_norms", cl.per_sample_norms, lambda: {"grads": _grads()}, ["grads"], nan_ok=True
    ),
    Spec(
        "dp_aggregate",
        cl.dp_aggregate,
        lambda: {"grads": _grads(), "max_norm": 1.0, "noise_multiplier": 1.0, "rng": 1},
        [
            "grads",
            "max_norm",
            "noise_multiplier",
            "rng",
            "reduction",
            "expected_batch_size",
            "sample_rate",
            "nonfinite",
        ],
    ),
    Spec(
        "AdaptiveClipping",
        cl.AdaptiveClipping,
        lambda: {"initial_norm": 1.0, "expected_batch_size": 4, "rng": 1},
        [
            "initial_norm",
            "expected_batch_size",
            "target_quantile",
            "learning_rate",
            "count_noise_std",
            "min_norm",
            "max_norm",
        ],
    ),
    Spec(
        "AdaptiveClipping.update",
        _call_method("update"),
        lambda: {
            "obj": cl.AdaptiveClipping(1.0, expected_batch_size=4, rng=1),
            "norms": np.ones(4),
        },
        ["norms"],
    ),
    Spec(
        "AdaptiveClipping.aggregate",
        _call_method("aggregate"),
        lambda: {
            "obj": cl.AdaptiveClipping(1.0, expected_batch_size=40, rng=1),
            "grads": _grads(),
            "noise_multiplier": 1.0,
        },
        ["grads", "noise_multiplier"],
    ),
    # ---- sharing
    *[
        Spec(
            f.__name__,
            f,
            lambda: {
                "a": np.arange(3, dtype=np.uint64),
                "b": np.arange(3, dtype=np.uint64),
                "out": np.zeros(3, np.uint64),
            },
            ["a", "b", "modulus", "out"],
        )
        for f in (sh.add, sh.sub, sh.mul)
    ],
    Spec(
        "neg",
        sh.neg,
        lambda: {"a": np.arange(3, dtype=np.uint64), "out": np.zeros(3, np.uint64)},
        ["a", "modulus", "out"],
    ),
    Spec(
        "pow",
        sh.pow,
        lambda: {"a": np.arange(3, dtype=np.uint64), "e": 3, "modulus": sh.MERSENNE61},
        ["a", "e", "modulus"],
    ),
    Spec("sum", sh.sum, lambda: {"a": np.arange(3, dtype=np.uint64)}, ["a", "axis", "modulus"]),
    Spec(
        "inv",
        sh.inv,
        lambda: {"a": np.array([1, 3, 5], dtype=np.uint64), "modulus": sh.MERSENNE61},
        ["a", "modulus"],
    ),
    Spec(
        "matmul",
        sh.matmul,
        lambda: {
            "a": np.ones((2, 3), np.uint64),
            "b": np.ones((3, 2), np.uint64),
            "out": np.zeros((2, 2), np.uint64),
        },
        ["a", "b", "modulus", "out"],
    ),
    Spec(
        "additive_share",
        sh.additive_share,
        lambda: {"x": np.arange(3, dtype=np.uint64), "n_parties": 3, "rng": 1},
        ["x", "n_parties", "modulus", "rng"],
    ),
    Spec(
        "additive_reconstruct",
        sh.additive_reconstruct,
        lambda: {"shares": np.ones((3, 2), np.uint64)},
        ["shares", "modulus"],
    ),
    Spec(
        "shamir_share",
        sh.shamir_share,
        lambda: {"x": np.arange(3, dtype=np.uint64), "n_parties": 3, "threshold": 2, "rng": 1},
        ["x", "n_parties", "threshold", "p", "rng"],
    ),
    Spec(
        "shamir_reconstruct",
        sh.shamir_reconstruct,
        lambda: {"shares": np.ones((3, 2), np.uint64), "points": [1, 2, 3]},
        ["shares", "points", "p", "threshold", "check"],
    ),
    Spec(
        "encode_fixed",
        sh.encode_fixed,
        lambda: {"x": np.array([0.5, -1.25])},
        ["x", "frac_bits", "modulus"],
    ),
    Spec(
        "decode_fixed",
        sh.decode_fixed,
        lambda: {"v": np.array([3, 5], np.uint64)},
        ["v", "frac_bits", "modulus"],
    ),
    Spec(
        "truncate_2pc",
        sh.truncate_2pc,
        lambda: {"shares": np.ones((2, 3), np.uint64)},
        ["shares", "frac_bits"],
    ),
    Spec(
        "truncate",
        sh.truncate,
        lambda: {"shares": np.ones((3, 3), np.uint64), "rng": 1},
        ["shares", "frac_bits", "rng"],
    ),
    Spec(
        "beaver_triples",
        sh.beaver_triples,
        lambda: {"shape": (2, 3), "n_parties": 2, "rng": 1},
        ["shape", "n_parties", "op", "shape_b", "modulus", "rng"],
    ),
    Spec(
        "beaver_mul",
        sh.beaver_mul,
        lambda: {
            "x_shares": np.ones((2, 3), np.uint64),
            "y_shares": np.ones((2, 3), np.uint64),
            "triple": sh.beaver_triples((3,), 2, rng=1),
        },
        ["x_shares", "y_shares", "triple", "modulus"],
    ),
    Spec(
        "beaver_matmul",
        sh.beaver_matmul,
        lambda: {
            "x_shares": np.ones((2, 2, 3), np.uint64),
            "y_shares": np.ones((2, 3, 2), np.uint64),
            "triple": sh.beaver_triples((2, 3), 2, op="matmul", shape_b=(3, 2), rng=1),
        },
        ["x_shares", "y_shares", "triple", "modulus"],
    ),
    Spec(
        "SecretTensor.share",
        sh.SecretTensor.share,
        lambda: {"x": np.array([0.5, 1.5]), "n_parties": 3, "rng": 1},
        ["x", "n_parties", "modulus", "frac_bits", "rng"],
    ),
    # ---- aggregation
    Spec(
        "fedavg",
        ag.fedavg,
        lambda: {"updates": np.ones((3, 4)), "weights": [1.0, 2.0, 3.0], "out": np.zeros(4)},
        ["updates", "weights", "out"],
    ),
    Spec(
        "coordinate_median",
        ag.coordinate_median,
        lambda: {"updates": np.ones((3, 4)), "out": np.zeros(4)},
        ["updates", "nan", "out"],
    ),
    Spec(
        "trimmed_mean",
        ag.trimmed_mean,
        lambda: {"updates": np.ones((5, 4)), "out": np.zeros(4)},
        ["updates", "trim", "nan", "out"],
    ),
    Spec(
        "krum",
        ag.krum,
        lambda: {"updates": np.ones((6, 4)), "n_byzantine": 1, "out": np.zeros(4)},
        ["updates", "n_byzantine", "m", "nonfinite", "out"],
    ),
    Spec(
        "multi_krum",
        ag.multi_krum,
        lambda: {"updates": np.ones((6, 4)), "n_byzantine": 1, "m": 2},
        ["updates", "n_byzantine", "m", "nonfinite"],
    ),
    Spec(
        "dp_fedavg",
        ag.dp_fedavg,
        lambda: {"updates": np.ones((3, 4)), "clip_norm": 1.0, "noise_multiplier": 1.0, "rng": 1},
        ["updates", "clip_norm", "noise_multiplier", "weights", "rng"],
    ),
    Spec(
        "fedprox_gradient",
        ag.fedprox_gradient,
        lambda: {
            "grad": np.ones(3),
            "weights": np.ones(3),
            "global_weights": np.zeros(3),
            "mu": 0.1,
        },
        ["grad", "weights", "global_weights", "mu"],
    ),
    Spec(
        "quantize",
        ag.quantize,
        lambda: {"x": np.array([0.5, -1.0]), "clip": 1.0, "frac_bits": 8},
        ["x", "clip", "frac_bits"],
    ),
    Spec(
        "dequantize",
        ag.dequantize,
        lambda: {"v": np.array([3, 5], np.uint64), "frac_bits": 8},
        ["v", "frac_bits"],
    ),
    Spec(
        "secagg_graph",
        ag.secagg_graph,
        lambda: {"n": 8, "k": 2, "rng": 1},
        ["n", "k", "rng"],
        aliases={"k": ("neighbors", "k")},
    ),
    Spec(
        "expand_masks",
        ag.expand_masks,
        lambda: {"acc": np.zeros(4, np.uint64), "seeds": [bytes(16)], "signs": [1]},
        ["acc", "seeds", "signs", "base"],
        errors=(ag.SecAggError,),
    ),
    Spec(
        "secure_aggregate",
        ag.secure_aggregate,
        lambda: {"updates": np.ones((4, 3)) * 0.25, "rng": 1},
        ["updates", "clip", "frac_bits", "threshold", "neighbors", "dropout", "rng"],
        errors=(ag.SecAggError,),
    ),
    Spec(
        "SecAggServer",
        ag.SecAggServer,
        lambda: {"n": 4, "threshold": 3, "graph": ag.secagg_graph(4, None)},
        ["n", "threshold", "graph"],
    ),
    Spec(
        "SecAggClient.share_keys",
        _secagg_client_share,
        lambda: {"threshold": 3, "neighbors": [1, 2, 3], "roster": _ROSTER},
        ["threshold", "neighbors", "roster"],
        errors=(ag.SecAggError,),
    ),
    # ---- paillier
    Spec(
        "encrypt_batch",
        _call_method("encrypt_batch"),
        lambda: {"obj": _PK, "values": np.array([1.5, -2.0])},
        ["values", "precision", "obfuscation"],
    ),
    Spec(
        "encrypt",
        _call_method("encrypt"),
        lambda: {"obj": _PK, "value": 1.5},
        ["value", "precision", "r_value"],
    ),
    Spec(
        "EncodedNumber.encode",
        pl.EncodedNumber.encode,
        lambda: {"public_key": _PK, "scalar": 1.5},
        ["public_key", "scalar", "precision", "max_exponent"],
    ),
    Spec(
        "decrypt_batch", _call_method("decrypt_batch"), lambda: {"obj": _SK, "enc": _ENC}, ["enc"]
    ),
    Spec(
        "EncryptedArray.add",
        _binop(lambda a, b: a + b),
        lambda: {"a": _ENC, "b": np.ones(3)},
        ["b"],
        aliases={"b": ("other", "operand", "value", "shape", "broadcast", "dtype")},
    ),
    Spec(
        "EncryptedArray.mul",
        _binop(lambda a, b: a * b),
        lambda: {"a": _ENC, "b": np.ones(3)},
        ["b"],
        aliases={"b": ("other", "operand", "value", "shape", "broadcast", "dtype")},
    ),
    Spec("EncryptedArray.sum", _call_method("sum"), lambda: {"obj": _ENC}, ["axis"]),
    Spec(
        "EncryptedArray.dot",
        _call_method("dot"),
        lambda: {"obj": _ENC, "other": np.ones(3)},
        ["other"],
        aliases={"other": ("other", "operand", "shape", "dtype", "matmul")},
    ),
    Spec(
        "EncryptedArray.reshape",
        _binop(lambda a, s: a.reshape(s)),
        lambda: {"a": _ENC, "b": 3},
        ["b"],
        aliases={"b": ("shape",)},
    ),
    Spec(
        "EncryptedArray.decrease_exponent_to",
        _call_method("decrease_exponent_to"),
        lambda: {"obj": _ENC, "new_exp": -40},
        ["new_exp"],
    ),
    Spec(
        "EncryptedArray.from_bytes",
        pl.EncryptedArray.from_bytes,
        lambda: {"data": _ENC.to_bytes(), "public_key": _PK},
        ["data", "public_key"],
    ),
    Spec(
        "EncryptedArray.from_json",
        pl.EncryptedArray.from_json,
        lambda: {"data": _ENC.to_json()},
        ["data"],
    ),
    Spec(
        "encrypt_packed",
        pl.encrypt_packed,
        lambda: {
            "public_key": _PK,
            "values": np.array([0.5, -0.25]),
            "bits": 16,
            "clients": 4,
            "clip": 1.0,
        },
        [
            "public_key",
            "values",
            "bits",
            "clients",
            "clip",
            "frac_bits",
            "rounding",
            "rng",
            "obfuscation",
        ],
    ),
    Spec(
        "decrypt_packed",
        pl.decrypt_packed,
        lambda: {"private_key": _SK, "packed": _PACKED},
        ["private_key", "packed", "integers"],
    ),
    Spec("sum_packed", pl.sum_packed, lambda: {"arrays": [_PACKED, _PACKED]}, ["arrays"]),
    Spec(
        "EncryptedPackedArray.from_bytes",
        pl.EncryptedPackedArray.from_bytes,
        lambda: {"data": _PACKED.to_bytes(), "public_key": _PK},
        ["data", "public_key"],
    ),
    Spec(
        "EncryptedPackedArray.mul",
        _binop(lambda a, b: a * b),
        lambda: {"a": _PACKED, "b": 2},
        ["b"],
        aliases={"b": ("operand", "multiplied", "multiplier", "contributions")},
    ),
    Spec(
        "EncryptedPackedArray.add",
        _binop(lambda a, b: a + b),
        lambda: {"a": _PACKED, "b": _PACKED},
        ["b"],
        aliases={"b": ("operand", "other", "sum()", "added")},
    ),
    Spec(
        "EncryptedNumber.add",
        _binop(lambda a, b: a + b),
        lambda: {"a": _E1, "b": 1.0},
        ["b"],
        aliases={"b": ("other", "scalar", "value", "type")},
    ),
    Spec(
        "EncryptedNumber.mul",
        _binop(lambda a, b: a * b),
        lambda: {"a": _E1, "b": 2.0},
        ["b"],
        aliases={"b": ("other", "scalar", "value", "type")},
    ),
    # ---- rng
    Spec("default_rng", rg.default_rng, lambda: {"seed": 1}, ["seed", "secure"]),
    Spec("spawn", rg.spawn, lambda: {"rng": 1, "n": 3}, ["rng", "n"]),
    Spec("resolve", rg.resolve, lambda: {"rng": 1}, ["rng"]),
    # ---- simulation (the cheap parts)
    Spec(
        "iid_partition",
        sim.iid_partition,
        lambda: {"n_samples": 20, "n_clients": 4, "rng": 1},
        ["n_samples", "n_clients", "rng"],
    ),
    Spec(
        "dirichlet_partition",
        sim.dirichlet_partition,
        lambda: {"labels": np.arange(40) % 4, "n_clients": 4, "alpha": 1.0, "rng": 1},
        ["labels", "n_clients", "alpha", "rng", "min_size", "max_tries"],
    ),
    Spec(
        "SecureAggregation",
        sim.SecureAggregation,
        lambda: {},
        ["neighbors", "dropout", "clip", "frac_bits", "threshold"],
    ),
    Spec("DPFedAvg", sim.DPFedAvg, lambda: {}, ["clip_norm", "noise_multiplier", "delta"]),
    Spec("DPSGD", sim.DPSGD, lambda: {}, ["noise_multiplier", "max_grad_norm", "delta"]),
    Spec(
        "PaillierAggregation",
        sim.PaillierAggregation,
        lambda: {},
        ["key_bits", "precision", "weighted"],
    ),
    Spec(
        "CKKSAggregation",
        sim.CKKSAggregation,
        lambda: {},
        ["preset", "symmetric", "precision", "bound", "weighted", "client_weighting", "security"],
    ),
    Spec("MLP", sim.MLP, lambda: {}, ["hidden", "activation"]),
    Spec("FedAvg", sim.FedAvg, lambda: {}, ["weighted"]),
    Spec("history_table", sim.history_table, lambda: {"history": []}, ["history", "markdown"]),
    Spec(
        "split_history_table",
        sim.split_history_table,
        lambda: {"history": []},
        ["history", "markdown"],
    ),
    # split learning
    Spec(
        "cut_layer_dp",
        sp.cut_layer_dp,
        lambda: {
            "activations": np.ones((4, 3)),
            "max_norm": 1.0,
            "noise_multiplier": 1.0,
            "rng": 1,
        },
        [
            "activations",
            "max_norm",
            "noise_multiplier",
            "mode",
            "sample_rate",
            "rng",
            "out",
            "nonfinite",
            "adjacency",
        ],
        aliases={"activations": ("out",)},
    ),
    Spec(
        "perturb_gradients",
        sp.perturb_gradients,
        lambda: {"gradients": np.ones((4, 3)), "max_norm": 1.0, "noise_multiplier": 1.0, "rng": 1},
        [
            "gradients",
            "max_norm",
            "noise_multiplier",
            "mode",
            "sample_rate",
            "rng",
            "out",
            "nonfinite",
            "adjacency",
        ],
        aliases={"gradients": ("out",)},
    ),
    Spec(
        "rr_with_prior",
        sp.rr_with_prior,
        lambda: {"labels": np.array([0, 1, 2, 1]), "epsilon": 1.0, "n_classes": 3, "rng": 1},
        ["labels", "epsilon", "n_classes", "prior", "rng"],
    ),
    Spec(
        "rr_with_prior_probabilities",
        sp.rr_with_prior_probabilities,
        lambda: {"labels": np.array([0, 1, 2, 1]), "epsilon": 1.0, "n_classes": 3},
        ["labels", "epsilon", "n_classes", "prior"],
    ),
    Spec(
        "norm_attack_scores",
        sp.norm_attack_scores,
        lambda: {"gradients": np.arange(12.0).reshape(4, 3)},
        ["gradients"],
    ),
    Spec(
        "norm_leakage_auc",
        sp.norm_leakage_auc,
        lambda: {"gradients": np.arange(12.0).reshape(4, 3), "labels": np.array([0, 1, 0, 1])},
        ["gradients", "labels", "positive"],
    ),
    Spec(
        "roc_auc",
        sp.roc_auc,
        lambda: {"scores": np.array([0.1, 0.7, 0.3, 0.9]), "labels": np.array([0, 1, 0, 1])},
        ["scores", "labels", "positive"],
    ),
    Spec(
        "activation_leakage",
        sp.activation_leakage,
        lambda: {"inputs": np.arange(12.0).reshape(4, 3), "activations": np.eye(4)},
        ["inputs", "activations"],
    ),
    Spec(
        "distance_correlation",
        sp.distance_correlation,
        lambda: {"x": np.arange(12.0).reshape(4, 3), "z": np.eye(4)},
        ["x", "z"],
    ),
    Spec(
        "distance_correlation_sqr",
        sp.distance_correlation_sqr,
        lambda: {"x": np.arange(12.0).reshape(4, 3), "z": np.eye(4)},
        ["x", "z"],
    ),
    Spec(
        "nopeek_loss",
        sp.nopeek_loss,
        lambda: {"x": np.arange(12.0).reshape(4, 3), "z": np.eye(4), "weight": 0.5},
        ["x", "z", "weight", "out"],
    ),
    Spec(
        "distance_correlation_gradient",
        sp.distance_correlation_gradient,
        lambda: {"x": np.arange(12.0).reshape(4, 3), "z": np.eye(4)},
        ["x", "z"],
    ),
    Spec(
        "Defences",
        sp.Defences,
        lambda: {},
        [
            "activation_noise",
            "clip",
            "nopeek",
            "label_dp",
            "gradient_noise",
            "gradient_clip",
            "delta",
        ],
    ),
    Spec("LayeredModel", sp.LayeredModel, lambda: {"sizes": (4, 3, 2)}, ["sizes", "activation"]),
    Spec(
        "Segment",
        sp.Segment,
        lambda: {"sizes": (4, 3), "activate_last": True},
        ["sizes", "activate_last", "activation"],
    ),
    Spec(
        "SplitNN",
        sp.SplitNN,
        lambda: {"model": sp.LayeredModel((4, 3, 2))},
        ["model", "cut", "configuration", "defences", "batch_size", "lr", "local_epochs"],
    ),
    Spec(
        "SplitFed",
        sp.SplitFed,
        lambda: {"model": sp.LayeredModel((4, 3, 2))},
        ["model", "cut", "configuration", "defences", "batch_size", "lr", "local_epochs"],
    ),
    Spec(
        "VerticalSplitNN",
        sp.VerticalSplitNN,
        lambda: {
            "model": sp.LayeredModel((4, 3, 2)),
            "blocks": [np.array([0, 1]), np.array([2, 3])],
        },
        ["model", "blocks", "cut", "combine", "defences", "batch_size", "lr", "local_epochs"],
    ),
]


def _stepped(a: Any) -> Any:
    a.step(noise_multiplier=1.0, sample_rate=0.01)
    return a


# ---------------------------------------------------------------------------- checker

#: Other words a message may use for a parameter everywhere: ``rng`` errors come from
#: ``ppml_fast.rng``, which calls what it resolves a seed; a spoiled input array changes
#: the shape the given ``out`` must have, so the error may be about ``out``.
COMMON_ALIASES = {
    "rng": ("seed",),
    "grads": ("out", "batch"),
    "updates": ("out", "clients"),
    "a": ("out",),
    "b": ("out",),
    "x_shares": ("shares",),
    "y_shares": ("shares",),
    "target_delta": ("privacy budget",),
    "precision": ("mantissa",),
    "modulus": ("p/2", "p =", "[0, p)"),
}

#: Findings not fixed here, each in a module outside this test's reach or a refusal
#: whose wording still lacks the parameter's name; kept visible as expected failures.
_RAGGED = "numpy's conversion error (ragged or non-numeric input) does not name the parameter"
_OTHER = "refused, but by an error that does not name the parameter or is not a Type/ValueError"
KNOWN: dict[str, str] = {
    "shamir_share-n_parties": (
        "an n_parties of hundreds of millions fits in memory but takes minutes (no time "
        "bound on the share count yet)"
    ),
}
#: Cases that must not run at all: they take the interpreter down.
CRASHES: dict[str, str] = {
    "SecretTensor.share-n_parties": (
        "a huge n_parties is allocated lazily and the process is killed when it is touched"
    ),
}


class _Hang(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Hang


def _arrays_in(value: Any) -> list[np.ndarray]:
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, (list, tuple)):
        return [a for v in value for a in _arrays_in(v)]
    return []


def _has_nan(value: Any) -> bool:
    if isinstance(value, (float, np.floating)):
        return math.isnan(value)
    if isinstance(value, np.ndarray) and value.dtype.kind in "fc":
        return bool(np.isnan(value).any())
    if isinstance(value, (list, tuple)):
        return any(_has_nan(v) for v in value)
    return False


def check(spec: Spec, param: str, bad: Any) -> None:
    """Call ``spec`` with ``param`` spoiled; enforce the contract."""
    kwargs = spec.good()
    kwargs[param] = bad
    outs = [a for k, v in kwargs.items() if k == "out" for a in _arrays_in(v)]
    outs += [v for k, v in kwargs.items() if k == "acc" and isinstance(v, np.ndarray)]
    before = [(a, a.copy()) for a in outs if a.flags.writeable]
    names = (param, *spec.aliases.get(param, ()), *COMMON_ALIASES.get(param, ()))
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(20)
    try:
        result = spec.fn(**kwargs)
    except _Hang:
        pytest.fail(f"{spec.name}({param}={bad!r}) ran past 20 s")
    except (TypeError, ValueError, *spec.errors) as exc:
        msg = str(exc)
        assert any(n in msg for n in names), (
            f"{spec.name}({param}={bad!r}) raised {type(exc).__name__} without naming "
            f"{param}: {msg}"
        )
        for a, copy in before:
            assert np.array_equal(a, copy, equal_nan=a.dtype.kind in "fc"), (
                f"{spec.name}({param}={bad!r}) wrote into out before raising"
            )
        return
    except Exception as exc:
        pytest.fail(f"{spec.name}({param}={bad!r}) raised {type(exc).__name__}: {exc}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    if not spec.nan_ok and not _has_nan(bad):
        assert not _has_nan(result), f"{spec.name}({param}={bad!r}) returned NaN"


def _case(s: Spec, p: str) -> Any:
    key = f"{s.name}-{p}"
    marks = [pytest.mark.xfail(reason=KNOWN[key], strict=False)] if key in KNOWN else []
    if key in CRASHES:
        marks = [pytest.mark.skip(reason=CRASHES[key])]
    return pytest.param(s, p, id=key, marks=marks)


CASES = [_case(s, p) for s in SPECS for p in s.params]


if ck is not None:
    _CK_PARAMS = ck.aggregation_parameters(4, values=100)
    _CK_CTX = ck.make_context(_CK_PARAMS)
    _CK_U = ck.encrypt(_CK_CTX, np.ones(3), workers=1)
    SPECS += [
        Spec(
            "CKKSParameters",
            ck.CKKSParameters,
            lambda: {
                "poly_modulus_degree": 4096,
                "coeff_mod_bit_sizes": (40, 20, 40),
                "scale": 2.0**20,
            },
            [
                "poly_modulus_degree",
                "coeff_mod_bit_sizes",
                "scale",
                "security",
                "galois_keys",
                "primes",
            ],
        ),
        Spec(
            "max_coeff_bits",
            ck.max_coeff_bits,
            lambda: {"poly_modulus_degree": 4096},
            ["poly_modulus_degree", "security"],
        ),
        Spec("general_parameters", ck.general_parameters, lambda: {}, ["security"]),
        Spec(
            "aggregation_parameters",
            ck.aggregation_parameters,
            lambda: {"clients": 4},
            [
                "clients",
                "bound",
                "precision",
                "values",
                "security",
                "encryption",
                "failure_probability",
            ],
        ),
        Spec(
            "error_std",
            ck.error_std,
            lambda: {"params": _CK_PARAMS, "weights": [1.0, 2.0], "bound": 1.0},
            ["params", "encryption", "clients", "weights", "bound"],
        ),
        Spec(
            "error_bound",
            ck.error_bound,
            lambda: {"params": _CK_PARAMS, "values": 10},
            [
                "params",
                "values",
                "encryption",
                "clients",
                "weights",
                "bound",
                "failure_probability",
            ],
        ),
        Spec(
            "make_context",
            ck.make_context,
            lambda: {"params": _CK_PARAMS},
            ["params", "scale", "security", "galois_keys", "symmetric", "n_threads"],
        ),
        Spec("public_context", ck.public_context, lambda: {"context": _CK_CTX}, ["context"]),
        Spec(
            "context_parameters",
            ck.context_parameters,
            lambda: {"context": _CK_CTX},
            ["context", "security"],
        ),
        Spec(
            "serialize_context",
            ck.serialize_context,
            lambda: {"context": _CK_CTX},
            ["context", "secret_key", "galois_keys"],
        ),
        Spec(
            "load_context",
            ck.load_context,
            lambda: {"data": ck.serialize_context(_CK_CTX)},
            ["data", "security"],
        ),
        Spec(
            "encrypt",
            ck.encrypt,
            lambda: {"context": _CK_CTX, "update": np.ones(3), "workers": 1},
            ["context", "update", "symmetric", "weight", "workers", "executor"],
        ),
        Spec("decrypt", ck.decrypt, lambda: {"update": _CK_U}, ["update", "secret_context"]),
        Spec(
            "sum_updates",
            ck.sum_updates,
            lambda: {"updates": [_CK_U, _CK_U]},
            ["updates", "weights"],
        ),
        Spec(
            "load_update",
            ck.load_update,
            lambda: {"data": _CK_U.serialize()},
            ["data", "context"],
        ),
        Spec(
            "encrypted_fedavg",
            ag.encrypted_fedavg,
            lambda: {"encrypted_updates": [_CK_U, _CK_U]},
            ["encrypted_updates", "weights"],
        ),
    ]
    CASES = [_case(s, p) for s in SPECS for p in s.params]


def test_every_public_function_has_a_spec():
    covered = {s.name.split(".")[0] for s in SPECS} | {s.fn.__name__ for s in SPECS}
    skipped = {
        # types and result containers, exercised through the functions that make them
        "DeltaBounds",
        "EpsilonBounds",
        "DPAggregate",
        "DPFedAvgResult",
        "KrumResult",
        "SecAggResult",
        "BeaverTriple",
        "RoundRecord",
        "SimulationResult",
        "SplitRoundRecord",
        "SplitSimulationResult",
        "CutLayerDP",
        "ClientRound",
        "SplitModel",
        "SplitParams",
        "VerticalParams",
        "VerticalRound",
        "Dataset",
        "Model",
        "PrivacyBudgetExhausted",
        "SecAggError",
        "EncodingOverflowError",
        "KeyMismatchError",
        "PaillierPrivateKey",
        "PaillierPrivateKeyring",
        "PaillierPublicKey",
        "generate_paillier_keypair",
        "EncryptedNumber",
        "StreamingFedAvg",
        "LogisticRegression",
        "Generator",
        "is_secure",
        "resolve_for_dp",
        "warn_if_insecure",
        "SecAggClient",
        "SecretTensor",
        "PRVAccountant",
        "RDPAccountant",
        "EncryptedArray",
        "EncodedNumber",
        "EncryptedUpdate",
        # expensive end-to-end drivers, covered by their own test files
        "run_simulation",
        "load_dataset",
        "plot",
        "run_split_simulation",
        "plot_split",
    }
    mods = [nz, me, stt, acc, cl, sh, ag, pl, rg, sim, sp, *([ck] if ck is not None else [])]
    public = {n for m in mods for n in m.__all__ if callable(getattr(m, n))}
    public -= {n for n in public if isinstance(getattr(ppml_fast, n, None), type)}
    missing = public - covered - skipped
    assert not missing, f"no fuzz spec for {sorted(missing)}"


@pytest.mark.parametrize(("spec", "param"), CASES)
def test_fixed_bad_values(spec: Spec, param: str) -> None:
    for bad in BAD:
        check(spec, param, bad)


@pytest.mark.parametrize(("spec", "param"), CASES)
@settings(
    max_examples=4,
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(bad=DRAWN)
def test_drawn_bad_values(spec: Spec, param: str, bad: Any) -> None:
    check(spec, param, bad)
