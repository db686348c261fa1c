"""Regression tests for inputs that used to be accepted and give a wrong or silent result.

Each test pins one refusal: the error type, the parameter named in the message, and that
nothing the caller passed in (an ``out=`` buffer) was modified before the error.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from ppml_fast import accounting, clipping, mechanisms, noise, paillier, sharing, stats
from ppml_fast import aggregation as ag
from ppml_fast.clipping import clip_and_sum, clip_per_sample
from ppml_fast.simulation import SecureAggregation, history_table

# ----------------------------------------------------------------------------- clipping


def test_clip_and_sum_rejects_one_buffer_for_two_layers():
    g = np.ones((4, 3))
    buf = np.full(3, 7.0)
    with pytest.raises(ValueError, match=r"out\[0\] and out\[1\] must not share memory"):
        clip_and_sum([g, g], 10.0, out=[buf, buf])
    assert (buf == 7.0).all()


def test_clip_and_sum_rejects_overlapping_slices_of_one_buffer():
    g = [np.ones((4, 3)), np.ones((4, 3))]
    buf = np.full(5, 7.0)
    with pytest.raises(ValueError, match="must not share memory"):
        clip_and_sum(g, 10.0, out=[buf[:3], buf[2:]])
    assert (buf == 7.0).all()


def test_clip_and_sum_rejects_an_out_whose_elements_alias():
    g = np.ones((4, 3))
    base = np.full(1, 7.0)
    out = np.lib.stride_tricks.as_strided(base, shape=(3,), strides=(0,))
    with pytest.raises(ValueError, match="out must not have elements that share memory"):
        clip_and_sum(g, 10.0, out=out)
    assert base[0] == 7.0


def test_clip_per_sample_rejects_aliased_strided_outs():
    # Rows not contiguous inside: these used to go through a scratch buffer and a copy
    # back, which skipped the overlap check.
    g = np.ones((2, 3, 2))
    base = np.full((2, 3, 4), 7.0)
    out = base[:, :, ::2]
    with pytest.raises(ValueError, match="must not share memory"):
        clip_per_sample([g, g], 1.0, out=[out, out])
    zero = np.lib.stride_tricks.as_strided(base, shape=(2, 3, 2), strides=(96, 0, 8))
    with pytest.raises(ValueError, match="out must not have elements that share memory"):
        clip_per_sample(g, 1.0, out=zero)
    assert (base == 7.0).all()


def test_disjoint_interleaved_views_are_still_fine_for_one_out():
    g = np.arange(12.0).reshape(4, 3)
    out = np.empty((4, 6))[:, ::2]
    assert np.allclose(clip_per_sample(g, 100.0, out=out), g)
    assert np.allclose(clip_and_sum(g, 100.0, out=np.empty(6)[::2]), g.sum(axis=0))


# ----------------------------------------------------------------------------- stats


@pytest.mark.parametrize("x", [None, "abc", ["a", "b"], np.array(["1", "2"]), object()])
def test_dp_count_refuses_what_is_not_numeric_data(x):
    with pytest.raises(TypeError, match="x must be"):
        stats.dp_count(x, epsilon=1.0, rng=1)


def test_dp_count_refuses_complex_and_ragged_input():
    with pytest.raises(TypeError, match="x must be a real numeric array"):
        stats.dp_count(np.ones(3, dtype=complex), epsilon=1.0, rng=1)
    with pytest.raises(TypeError, match="x must be"):
        stats.dp_count([[1.0], [1.0, 2.0]], epsilon=1.0, rng=1)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_dp_count_refuses_nonfinite_records_as_dp_mean_does(bad, axis):
    x = np.ones((3, 2))
    x[1, 0] = bad
    with pytest.raises(ValueError, match="x must contain only finite values"):
        stats.dp_count(x, epsilon=1.0, rng=1, axis=axis)
    with pytest.raises(ValueError, match="x must contain only finite values"):
        stats.dp_mean(x, bounds=(0, 1), epsilon=1.0, rng=1, axis=axis)


def test_dp_count_still_counts_numeric_records():
    for x in ([True, False, True], np.arange(3, dtype=np.uint8), np.ones(3, np.float16)):
        assert abs(stats.dp_count(x, epsilon=1e9, rng=1) - 3) < 1e-6
    with pytest.raises(ValueError, match="axis must be None for a 0-d x"):
        stats.dp_count(1.0, epsilon=1.0, rng=1, axis=0)


# ----------------------------------------------------------------------------- accounting


@pytest.mark.parametrize(
    ("steps", "exc"),
    [
        (2.5, TypeError),
        (3.0, TypeError),
        (True, TypeError),
        (np.float64(2), TypeError),
        ("3", TypeError),
        (None, TypeError),
        (-1, ValueError),
        (np.nan, ValueError),
        (np.inf, ValueError),
        (2**70, ValueError),
    ],
)
def test_compute_rdp_refuses_a_step_count_that_is_not_a_count(steps, exc):
    with pytest.raises(exc, match="steps"):
        accounting.compute_rdp(0.1, 1.0, steps, [2.0, 3.0])


def test_compute_rdp_takes_numpy_integer_steps():
    a = accounting.compute_rdp(0.1, 1.0, np.int32(7), [2.0, 3.0])
    b = accounting.compute_rdp(0.1, 1.0, 7, [2.0, 3.0])
    assert np.array_equal(a, b)


@pytest.mark.parametrize(
    ("rdp", "exc", "msg"),
    [
        ([0.1, np.nan, 0.4], ValueError, "rdp must not contain NaN"),
        ([0.1, 0.4], ValueError, "same length"),
        ([0.1, -1.0, 0.4], ValueError, "rdp must be >= 0"),
        ([True, False, True], TypeError, "rdp must be real numbers"),
        ([0.1, 1j, 0.4], TypeError, "rdp must be real numbers"),
        ("0.1", TypeError, "rdp must be real numbers"),
        (None, TypeError, "rdp must be real numbers"),
        ([[0.1], [0.2, 0.3]], TypeError, "rdp must be"),
        ([[0.1, 0.2, 0.3]], ValueError, "rdp must be a scalar or 1-D"),
    ],
)
def test_get_privacy_spent_refuses_bad_rdp(rdp, exc, msg):
    with pytest.raises(exc, match=msg):
        accounting.get_privacy_spent(orders=[2.0, 3.0, 4.0], rdp=rdp, delta=1e-5)


@pytest.mark.parametrize(
    ("orders", "exc"),
    [
        ([2.0, np.nan], ValueError),
        ([True, 2.0], ValueError),
        (True, TypeError),
        ([2.0, 1j], TypeError),
        ("2", TypeError),
        (-3.0, ValueError),
        ([], ValueError),
    ],
)
def test_orders_are_checked_by_every_entry_point(orders, exc):
    with pytest.raises(exc, match="orders"):
        accounting.compute_rdp(0.1, 1.0, 1, orders)
    acc = accounting.RDPAccountant()
    acc.step(noise_multiplier=1.0, sample_rate=0.1)
    with pytest.raises(exc, match="alphas"):
        acc.get_epsilon(1e-5, alphas=orders)
    with pytest.raises(exc, match="alphas"):
        acc.get_rdp(orders)


@pytest.mark.parametrize(
    ("entry", "exc"),
    [
        ((1.0, 0.1, 2.5), TypeError),
        ((np.nan, 0.1, 2), ValueError),
        ((1.0, 1.5, 2), ValueError),
        ((1.0, 0.1, -1), ValueError),
        ((1.0, 0.1), ValueError),
        ("abc", TypeError),
        ((1.0, 0.1, True), TypeError),
    ],
)
def test_load_state_dict_refuses_a_corrupt_history_and_loads_nothing(entry, exc):
    acc = accounting.RDPAccountant()
    acc.step(noise_multiplier=1.0, sample_rate=0.1)
    before = acc.state_dict()
    with pytest.raises(exc, match=r"state_dict\['history'\]\[1\]"):
        acc.load_state_dict({"history": [(2.0, 0.1, 3), entry], "mechanism": "rdp"})
    assert acc.state_dict() == before


def test_load_state_dict_refuses_corrupt_events_and_non_mappings():
    acc = accounting.RDPAccountant()
    with pytest.raises(TypeError, match=r"state_dict\['events'\]\[0\]"):
        acc.load_state_dict({"history": [], "events": [("gauss", 1)], "mechanism": "rdp"})
    with pytest.raises(ValueError, match=r"state_dict\['events'\]\[0\]\[1\]"):
        acc.load_state_dict(
            {"history": [], "events": [(accounting.GaussianEvent(1.0), -2)], "mechanism": "rdp"}
        )
    with pytest.raises(TypeError, match="state_dict must be a dict"):
        acc.load_state_dict([("history", [])])


def test_calibration_refuses_a_step_count_out_of_range():
    with pytest.raises(ValueError, match="epochs / sample_rate"):
        accounting.get_noise_multiplier(
            target_epsilon=1.0, target_delta=1e-5, sample_rate=1e-300, epochs=1e300
        )
    with pytest.raises(ValueError, match="max_steps"):
        accounting.get_max_steps(
            target_epsilon=1.0,
            target_delta=1e-5,
            sample_rate=0.1,
            noise_multiplier=1.0,
            max_steps=2**80,
        )
    with pytest.raises(TypeError, match="accountant must be a str"):
        accounting.create_accountant(["rdp"])


# ----------------------------------------------------------------------- secure aggregation


def _round(n, t, k=None):
    clients = [ag.SecAggClient(u) for u in range(n)]
    roster = {u: c.advertise_keys() for u, c in enumerate(clients)}
    graph = ag.secagg_graph(n, k, rng=0)
    server = ag.SecAggServer(n, t, graph)
    server.collect_keys(roster)
    boxes = {u: c.share_keys(roster, graph[u], t) for u, c in enumerate(clients)}
    return clients, server, roster, graph, boxes


@pytest.mark.parametrize("t", [1, 2])
def test_secagg_threshold_below_an_honest_majority_is_refused(t):
    x = np.zeros((5, 3))  # 4 neighbours + the client: 5 holders, majority 3
    with pytest.raises(ValueError, match=r"threshold must be in \[3, 5\]"):
        ag.secure_aggregate(x, threshold=t)
    with pytest.raises(ValueError, match="threshold must be in"):
        ag.SecAggServer(5, t, ag.secagg_graph(5, None))
    c = ag.SecAggClient(0)
    roster = {u: ag.SecAggClient(u).advertise_keys() for u in range(5)}
    with pytest.raises(ValueError, match="threshold must be in"):
        c.share_keys(roster, [1, 2, 3, 4], t)


def test_secagg_plus_threshold_is_a_majority_of_the_neighbourhood():
    x = np.zeros((20, 3))
    with pytest.raises(ValueError, match=r"threshold must be in \[3, 5\]"):
        ag.secure_aggregate(x, neighbors=4, threshold=2)
    assert ag.secure_aggregate(x, neighbors=4, threshold=3, rng=0).threshold == 3
    with pytest.raises(TypeError, match="threshold"):
        ag.secure_aggregate(x, threshold=3.0)
    with pytest.raises(ValueError, match="threshold"):
        SecureAggregation(threshold=1)


def test_secagg_routing_refuses_malformed_outboxes():
    clients, server, _roster, graph, boxes = _round(5, 3, k=2)
    stranger = next(v for v in range(5) if v not in graph[0].tolist() and v != 0)
    blob = next(iter(boxes[0].values()))
    for bad, msg in [
        ({0: {stranger: blob}}, "not a neighbour"),
        ({7: {}}, "sender"),
        ({True: {}}, "sender"),
        ({0: {int(graph[0][0]): "abc"}}, "encrypted share"),
        ({0: {int(graph[0][0]): b"short"}}, "encrypted share"),
        ({0: [blob]}, "outbox"),
        ([(0, {})], "outboxes"),
    ]:
        with pytest.raises(ag.SecAggError, match=msg):
            server.route_shares(bad)
    with pytest.raises(ag.SecAggError, match="not a neighbour"):
        clients[0].receive_shares({stranger: blob})
    with pytest.raises(ag.SecAggError, match="encrypted share"):
        clients[0].receive_shares({int(graph[0][0]): None})
    with pytest.raises(ag.SecAggError, match="after share_keys"):
        ag.SecAggClient(0).receive_shares({})


def test_secagg_keys_and_neighbour_lists_are_checked():
    _clients, server, roster, _graph, _ = _round(4, 3)
    for bad in [{0: roster[0]}, {**roster, 0: (b"x", b"y")}, {**roster, 9: roster[0]}, None]:
        with pytest.raises(ag.SecAggError):
            server.collect_keys(bad)
    c = ag.SecAggClient(0)
    with pytest.raises(ag.SecAggError, match="itself"):
        c.share_keys(roster, [0, 1, 2], 3)
    with pytest.raises(ag.SecAggError, match="twice"):
        c.share_keys(roster, [1, 1, 2], 3)
    with pytest.raises(ag.SecAggError, match="no public keys"):
        c.share_keys({0: roster[0], 1: roster[1]}, [1, 2, 3], 3)
    with pytest.raises(ag.SecAggError, match="client index"):
        c.share_keys(roster, ["1", 2, 3], 3)
    with pytest.raises(ag.SecAggError, match="client index"):
        server.add_masked(1.5, np.zeros(3, np.uint64))


def _unmasked_round():
    n = 5
    clients, server, _roster, _graph, boxes = _round(n, 3)
    for u, box in server.route_shares(boxes).items():
        clients[u].receive_shares(box)
    for u in range(n - 1):
        server.add_masked(u, clients[u].masked_input(np.arange(4, dtype=np.uint64)))
    surv, drop = list(range(n - 1)), [n - 1]
    revealed = {u: clients[u].unmask(surv, drop) for u in surv}
    return server, revealed


def test_secagg_unmask_refuses_malformed_answers_and_still_works():
    server, revealed = _unmasked_round()
    b0 = revealed[1][0]
    s4 = revealed[1][4]
    bad_answers = [
        ({**revealed, 4: revealed[0]}, "did not survive"),
        ({**revealed, 1: {**revealed[1], 0: ("s", s4[1])}}, "kind 'b'"),
        ({**revealed, 1: {**revealed[1], 4: ("b", b0[1])}}, "kind 's'"),
        ({**revealed, 1: {**revealed[1], 0: ("b", b0[1][:2])}}, "must be 3 integers"),
        ({**revealed, 1: {**revealed[1], 0: ("b", b0[1].astype(float))}}, "integers"),
        ({**revealed, 1: {**revealed[1], 0: ("b", np.full(3, 2**62, np.uint64))}}, "field"),
        ({**revealed, 1: {**revealed[1], 0: "b"}}, "pair"),
        ({**revealed, 1: {**revealed[1], "0": b0}}, "client index"),
        ({**revealed, 1: [b0]}, "dict"),
        ({**revealed, 9: {}}, "client index"),
    ]
    for bad, msg in bad_answers:
        with pytest.raises(ag.SecAggError, match=msg):
            server.unmask(bad, 4)
    # the good answers still give the exact sum
    assert server.unmask(revealed, 4).tolist() == [0, 4, 8, 12]


def test_secagg_plus_unmask_refuses_shares_from_non_neighbours():
    n = 7
    clients, server, _roster, graph, boxes = _round(n, 2, k=2)
    for u, box in server.route_shares(boxes).items():
        clients[u].receive_shares(box)
    for u in range(n):
        server.add_masked(u, clients[u].masked_input(np.ones(2, dtype=np.uint64)))
    revealed = {u: clients[u].unmask(list(range(n)), []) for u in range(n)}
    stranger = next(v for v in range(n) if v not in graph[0].tolist() and v != 0)
    fake = dict(revealed[0])
    fake[stranger] = revealed[stranger][stranger]
    with pytest.raises(ag.SecAggError, match="not a neighbour"):
        server.unmask({**revealed, 0: fake}, 2)
    assert server.unmask(revealed, 2).tolist() == [n, n]


def test_secagg_client_unmask_refuses_malformed_lists():
    n = 4
    clients, server, _roster, _graph, boxes = _round(n, 3)
    for u, box in server.route_shares(boxes).items():
        clients[u].receive_shares(box)
    clients[0].masked_input(np.zeros(2, np.uint64))
    for surv, drop in [(["0", 1], []), ([0, 0, 1], [2]), (None, []), ([0.0, 1], [])]:
        with pytest.raises(ag.SecAggError):
            clients[0].unmask(surv, drop)


# ------------------------------------------------------------- found by tests/test_fuzz.py


@pytest.mark.parametrize(
    "kw",
    [{"epsilon_tolerance": 1e-320}, {"target_epsilon": 1e308}, {"sample_rate": 1e-320}],
)
def test_get_noise_multiplier_terminates_when_the_tolerance_cannot_be_met(kw):
    args = {"target_epsilon": 2.0, "target_delta": 1e-5, "sample_rate": 0.01, "steps": 100}
    sigma = accounting.get_noise_multiplier(**{**args, **kw})
    assert math.isfinite(sigma)


def test_subnormal_sensitivity_is_refused_not_divided_by():
    with pytest.raises(ValueError, match="sensitivity must be >="):
        mechanisms.gaussian_sigma(1.0, 1e-5, 1e-320)


def test_huge_clip_is_a_value_error_not_an_overflow():
    with pytest.raises(ValueError, match="clip"):
        ag.quantize([0.5], 1e308, 8)
    with pytest.raises(ValueError, match="noise_multiplier"):
        clip_adaptive = clipping.AdaptiveClipping(1.0, expected_batch_size=40, rng=1)
        clip_adaptive.aggregate(np.ones((4, 3)), 1e-320)


@pytest.mark.parametrize(
    "call",
    [
        lambda v: clip_per_sample(np.ones((2, 2)), 1.0, nonfinite=v),
        lambda v: clipping.dp_aggregate(np.ones((2, 2)), 1.0, 1.0, rng=1, reduction=v),
        lambda v: ag.coordinate_median(np.ones((3, 2)), nan=v),
        lambda v: ag.krum(np.ones((5, 2)), 1, nonfinite=v),
        lambda v: ag.secure_aggregate(np.zeros((3, 2)), neighbors=v),
        lambda v: sharing.beaver_triples((2,), 2, op=v, rng=1),
        lambda v: SecureAggregation(neighbors=v),
    ],
)
def test_string_choices_refuse_arrays_by_name(call):
    with pytest.raises((TypeError, ValueError), match=r"nonfinite|reduction|nan|neighbors|op"):
        call(np.array([]))


@pytest.mark.parametrize("size", [10**30, (2**40, 2**40)])
def test_impossible_sizes_are_refused_by_name(size):
    with pytest.raises(ValueError, match="size"):
        noise.gaussian(1.0, size, rng=1)


def test_dequantize_and_history_table_check_their_arguments():
    with pytest.raises(TypeError, match="v must be"):
        ag.dequantize(None, 8)
    with pytest.raises(TypeError, match="frac_bits"):
        ag.dequantize(np.zeros(2, np.uint64), None)
    with pytest.raises(TypeError, match="history"):
        history_table(None)
    with pytest.raises(TypeError, match="markdown"):
        history_table([], markdown=np.array([]))
    with pytest.raises(TypeError, match="x must be"):
        ag.quantize(None, 1.0, 8)


def test_a_size_beyond_the_machines_memory_is_refused_not_a_memory_error():
    from ppml_fast._validation import physical_memory

    n = physical_memory() // 8 + 1
    with pytest.raises(ValueError, match="size is too large"):
        noise.discrete_laplace(2.0, n, rng=1)


def test_event_lists_and_histories_that_are_0d_arrays_are_type_errors():
    with pytest.raises(TypeError, match="events"):
        accounting.RDPAccountant().compose(np.array(0.0))
    with pytest.raises(TypeError, match="history"):
        history_table(np.array(0.0))


# --- conversions and mechanisms

_RAGGED_INPUT = [[1.0], [1.0, 2.0]]


def _dirichlet(labels):
    from ppml_fast.simulation import dirichlet_partition

    return dirichlet_partition(labels, 2, 1.0, rng=1)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda v: mechanisms.gaussian_mechanism(v, 1.0, 1.0, 1e-5, rng=1), "value"),
        (lambda v: mechanisms.laplace_mechanism(v, 1.0, 1.0, rng=1), "value"),
        (lambda v: mechanisms.randomized_response(v, 1.0, rng=1), "bits"),
        (lambda v: mechanisms.randomized_response_estimate(v, 1.0), "reports"),
        (lambda v: clip_and_sum(np.ones((4, 3)), v), "max_norm"),
        (lambda v: clip_per_sample(np.ones((4, 3)), v), "max_norm"),
        (lambda v: clipping.AdaptiveClipping(1.0, expected_batch_size=4, rng=1).update(v), "norms"),
        (lambda v: _dirichlet(v), "labels"),
        (lambda v: sharing.encode_fixed(v), "x"),
        (lambda v: sharing.SecretTensor.share(v, 2, rng=1), "x"),
        (lambda v: ag.secure_aggregate(v, rng=1), "updates"),
    ],
)
@pytest.mark.parametrize("bad", [_RAGGED_INPUT, "abc", object()], ids=["ragged", "str", "object"])
@pytest.mark.filterwarnings("ignore::ppml_fast.InsecureRandomnessWarning")
def test_conversion_errors_name_the_parameter(call, name, bad):
    """numpy's own conversion error (ragged nesting, text, arbitrary objects) names no
    parameter: each public conversion raises a TypeError that does."""
    with pytest.raises((TypeError, ValueError), match=name):
        call(bad)


def test_gaussian_sigma_scales_with_a_tiny_sensitivity():
    """δ(σ) depends only on σ/Δ: a tiny normal Δ calibrates like Δ = 1 (it used to divide
    by a σ that underflowed to zero)."""
    one = mechanisms.gaussian_sigma(1.0, 1e-5, 1.0)
    for d in (1e-300, 2.3e-308, 1e-200):
        s = mechanisms.gaussian_sigma(1.0, 1e-5, d)
        assert s >= d * one
        assert s == pytest.approx(d * one, rel=1e-12)
    out = mechanisms.gaussian_mechanism(np.zeros(3), 1e-300, 1.0, 1e-5, rng=1)
    assert np.isfinite(out).all()


def test_gaussian_sigma_refuses_a_sigma_that_does_not_fit_a_float_by_name():
    with pytest.raises(ValueError, match="sensitivity"):
        mechanisms.gaussian_sigma(1e300, 1e-5, 2.3e-308)
    with pytest.raises(ValueError, match="sensitivity"):
        mechanisms.gaussian_sigma(1e-100, 1e-300, 1e300)


@pytest.mark.parametrize("dtype", ["abc", 0.0, (1, 2, 3), [[1.0], [1.0, 2.0]], "01", "1,"])
def test_discrete_samplers_name_dtype_when_it_is_not_a_dtype(dtype):
    for fn in (noise.discrete_gaussian, noise.discrete_laplace):
        with pytest.raises(TypeError, match="dtype"):
            fn(2.0, 3, rng=1, dtype=dtype)


@pytest.mark.parametrize("dtype", ["01", "1,", "abc", (1, 2, 3)])
def test_continuous_samplers_name_dtype_when_numpy_cannot_parse_it(dtype):
    """numpy parses a dtype string such as '01' with ast and raises SyntaxError; the
    samplers name dtype with a TypeError instead (found by the fuzz test)."""
    for fn in (noise.laplace, noise.gaussian):
        with pytest.raises(TypeError, match="dtype"):
            fn(1.0, 3, rng=1, dtype=dtype)


@pytest.mark.parametrize("graph", [np.array(0.0), 5, None, "abcd"])
def test_secagg_server_names_a_graph_without_a_length(graph):
    """A 0-d array has __len__ but no length: the server names graph (found by the fuzz
    test; it raised len()'s own TypeError before)."""
    with pytest.raises(TypeError, match="graph"):
        ag.SecAggServer(4, 3, graph)


@pytest.mark.parametrize(
    "events",
    [
        [(None, 3)],
        [("a", 1)],
        [(accounting.GaussianEvent(2.0), 1.5)],
        [(accounting.GaussianEvent(2.0), -1)],
    ],
)
def test_compose_names_events_for_a_bad_item(events):
    with pytest.raises((TypeError, ValueError), match="events"):
        accounting.compose(events, delta=1e-5, accountant="rdp")


@pytest.mark.parametrize("axis", ["abc", 1.5, 10**30, (0, 0), (0, 5), [0], np.ones(2)])
def test_randomized_response_estimate_checks_axis_by_name(axis):
    with pytest.raises((TypeError, ValueError), match="axis"):
        mechanisms.randomized_response_estimate(np.ones((3, 2), dtype=int), 1.0, axis=axis)


def test_randomized_response_estimate_axis_tuple_still_works():
    r = np.ones((3, 2), dtype=int)
    whole = mechanisms.randomized_response_estimate(r, 1.0)
    assert mechanisms.randomized_response_estimate(r, 1.0, axis=(0, 1)) == whole
    assert mechanisms.randomized_response_estimate(r, 1.0, axis=-1).shape == (3,)


@pytest.mark.parametrize("bad", [-1, "abc", 1.5, object()])
def test_rng_errors_name_the_rng_parameter(bad):
    from ppml_fast import rng

    for call in (lambda: rng.resolve(bad), lambda: rng.spawn(bad, 2)):
        with pytest.raises((TypeError, ValueError), match="rng"):
            call()
    with pytest.raises((TypeError, ValueError), match="seed"):
        rng.default_rng(bad)


def test_spawn_refuses_more_children_than_memory_holds_by_name():
    from ppml_fast import rng

    with pytest.raises(ValueError, match="n is too large"):
        rng.spawn(1, 2**62)


# --- Paillier: bad arguments are refused by name, before int(), Fraction or attribute use

_PL_PK, _PL_SK = paillier.generate_paillier_keypair(n_length=256)


def test_paillier_encode_refuses_bad_arguments_by_name():
    enc = paillier.EncodedNumber.encode
    with pytest.raises(TypeError, match="public_key"):
        enc(None, 1.5)
    with pytest.raises(TypeError, match="scalar"):
        enc(_PL_PK, "1.5")
    with pytest.raises(ValueError, match="scalar"):
        enc(_PL_PK, math.inf)
    with pytest.raises(ValueError, match="precision"):
        enc(_PL_PK, 1.5, precision=0)
    with pytest.raises(TypeError, match="precision"):
        enc(_PL_PK, 1.5, precision="abc")
    with pytest.raises(ValueError, match="mantissa"):  # overflow names what to change
        enc(_PL_PK, 1.5, precision=1e-320)
    with pytest.raises(TypeError, match="max_exponent"):
        enc(_PL_PK, 1.5, max_exponent=math.nan)


def test_paillier_encode_refuses_a_huge_max_exponent_at_once():
    # 16**(10**30) used to be built digit by digit; now refused by the exponent bound
    with pytest.raises(ValueError, match="max_exponent"):
        paillier.EncodedNumber.encode(_PL_PK, 0, max_exponent=-(10**30))
    # within the bound, an exponent no mantissa could fill overflows without building it
    with pytest.raises(ValueError, match="mantissa"):
        paillier.EncodedNumber.encode(_PL_PK, 1.5, max_exponent=-(2**30))
    zero = paillier.EncodedNumber.encode(_PL_PK, 0, max_exponent=-50)  # as phe allows
    assert (zero.encoding, zero.exponent) == (0, -50)


def test_paillier_encrypt_refuses_bad_arguments_by_name():
    with pytest.raises(TypeError, match="value"):
        _PL_PK.encrypt(None)
    with pytest.raises(ValueError, match="value"):
        _PL_PK.encrypt(math.nan)
    with pytest.raises(TypeError, match="r_value"):
        _PL_PK.encrypt(1.5, r_value=np.ones(3))
    with pytest.raises(TypeError, match="obfuscation"):
        _PL_PK.encrypt_batch(np.ones(2), obfuscation=np.ones(3))
    with pytest.raises(ValueError, match="values"):
        _PL_PK.encrypt_batch([[1.0], [1.0, 2.0]])
    x = _PL_PK.encrypt(2.5)
    with pytest.raises(ValueError, match="scalar"):
        x + math.inf
    with pytest.raises(ValueError, match="scalar"):
        x * math.nan


def test_paillier_array_methods_refuse_bad_arguments_by_name():
    enc = _PL_PK.encrypt_batch(np.array([1.5, -2.0, 3.25]))
    with pytest.raises(TypeError, match="new_exp"):
        enc.decrease_exponent_to(math.nan)
    with pytest.raises(ValueError, match="new_exp"):
        enc.decrease_exponent_to(-(10**30))
    with pytest.raises(TypeError, match="axis"):
        enc.sum(axis=2.5)
    with pytest.raises(TypeError, match="shape"):
        enc.reshape(2.5)
    with pytest.raises(ValueError, match="shape"):
        enc.reshape(10**30)
    with pytest.raises(ValueError, match="other"):
        enc.dot(np.array([1.0, np.inf, 1.0]))
    with pytest.raises(TypeError, match="data"):
        paillier.EncryptedArray.from_bytes(2**62)
    with pytest.raises(TypeError, match="enc"):
        _PL_SK.decrypt_batch((1, 2, 3))
    with pytest.raises(ValueError, match="enc"):
        _PL_SK.decrypt_batch([])


# --- the last fuzz findings: secure aggregation's lists, empty shapes, complex input


def test_expand_masks_names_seeds_and_signs_that_are_not_lists():
    acc = np.zeros(4, dtype=np.uint64)
    with pytest.raises(TypeError, match="seeds"):
        ag.expand_masks(acc, None, [1])
    with pytest.raises(TypeError, match="signs"):
        ag.expand_masks(acc, [bytes(16)], None)
    with pytest.raises(ValueError, match="signs"):
        ag.expand_masks(acc, [bytes(16)], [True])
    assert not acc.any()


def test_secure_aggregate_names_dropout_that_is_not_indices():
    updates = np.zeros((4, 3))
    for bad in ("abc", [0.5], [None]):
        with pytest.raises(TypeError, match="dropout"):
            ag.secure_aggregate(updates, dropout=bad)
    # a set of indices is still a sequence of clients
    res = ag.secure_aggregate(np.ones((5, 3)), dropout={1})
    np.testing.assert_allclose(res.sum, 4.0 * np.ones(3), atol=1e-4)


def test_share_keys_names_neighbors():
    c = ag.SecAggClient(0)
    roster = {u: ag.SecAggClient(u).advertise_keys() for u in range(4)}
    with pytest.raises(ag.SecAggError, match="neighbors"):
        c.share_keys(threshold=2, neighbors=np.array(0.0), roster=roster)
    with pytest.raises(ag.SecAggError, match="neighbors"):
        c.share_keys(threshold=2, neighbors=[1, 2, 9], roster=roster)


def test_empty_shape_with_huge_dimensions_is_refused_by_name():
    with pytest.raises(ValueError, match="shape"):
        sharing.beaver_triples((0, 2**62, 3), 2)
    with pytest.raises(ValueError, match="size"):
        noise.laplace(1.0, size=(0, 2**62, 4))
    assert noise.laplace(1.0, size=(0, 5)).shape == (0, 5)


def test_complex_input_is_refused_not_truncated():
    with pytest.raises(TypeError, match="x must be real"):
        sharing.encode_fixed([1 + 2j, 3.0])
    with pytest.raises(TypeError, match="updates"):
        ag.secure_aggregate(np.ones((4, 3), dtype=complex))
