"""The ``ppml-fast`` console script and the benchmark table it prints."""

import numpy as np
import pytest

from ppml_fast import _bench, cli


def _tiny_cases():
    return [
        _bench.Case(
            "op-a",
            "10",
            native=lambda: np.zeros(10),
            reference=lambda: np.ones(10),
            peers={"peerlib": lambda: np.ones(10)},
            items=10,
        ),
        _bench.Case("op-b", "1", native=lambda: 1, reference=None),
    ]


def test_run_and_table():
    rows = _bench.run(_tiny_cases())
    assert [r.case.operation for r in rows] == ["op-a", "op-b"]
    assert rows[0].speedup is not None and rows[0].speedup > 0 and rows[1].speedup is None
    text = _bench.table(rows)
    header = text.splitlines()[0]
    for col in ("operation", "size", "reference", "native", "speed-up", "peerlib", "vs peerlib"):
        assert col in header
    md = _bench.table(rows, markdown=True).splitlines()
    assert md[0].startswith("| operation") and md[1].startswith("|---")
    assert len(md) == 4 and md[3].split("|")[5].strip() == "-"  # no reference → no ratio


def test_time_call_returns_best_positive():
    calls = []
    t = _bench.time_call(lambda: calls.append(1), min_time=0.0)
    assert t >= 0 and len(calls) >= 4  # warm-up + at least three timed runs


def test_every_registered_case_runs_natively():
    cases = _bench.collect(full=False)
    assert {c.operation.split()[0] for c in cases} >= {"laplace", "gaussian"}
    for c in cases:
        c.native()


def test_bench_command_prints_table(monkeypatch, capsys):
    monkeypatch.setattr(_bench, "collect", lambda full=False: _tiny_cases())
    assert cli.main(["bench", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "machine:" in out and "op-a" in out and "speed-up" in out


def test_bench_markdown_has_machine_and_date(monkeypatch, capsys):
    monkeypatch.setattr(_bench, "collect", lambda full=False: _tiny_cases())
    assert cli.main(["bench", "--markdown"]) == 0
    captured = capsys.readouterr()
    assert "# ppml_fast benchmarks" in captured.out and "cores" in captured.out
    assert "| op-a |" in captured.out
    assert "[1/2] op-a" in captured.err  # progress goes to stderr


def test_bench_filter_without_match_fails(capsys):
    assert cli.main(["bench", "--filter", "no-such-operation"]) == 1
    assert "no benchmark matches" in capsys.readouterr().err


def test_unknown_command_exits():
    with pytest.raises(SystemExit):
        cli.main(["frobnicate"])


def test_targets_table_checks_each_metric():
    fast = _bench.Case(
        "fast",
        "1",
        native=lambda: None,
        reference=lambda: None,
        items=10**6,
        peers={"bare": lambda: None},
    )
    rows = [
        _bench.Row(fast, native_s=0.01, reference_s=0.05, peers_s={"bare": 0.009}),
    ]
    checks = [
        (_bench.Target("speed-up", 4.0, "4x"), "yes"),  # 5x measured
        (_bench.Target("speed-up", 6.0, "6x"), "NO"),
        (_bench.Target("M/s", 100.0, "100 M/s"), "yes"),  # 10^6 / 0.01 s = 100 M/s
        (_bench.Target("vs bare", 1 / 1.2, "1.2x"), "yes"),  # 0.9x
        (_bench.Target("vs bare", 1.0, "1x"), "NO"),
        (_bench.Target("vs absent", 1.0, "peer missing"), "-"),
    ]
    for target, verdict in checks:
        fast.target = target
        line = _bench.targets_table(rows).splitlines()[2]
        assert line.rstrip().endswith(verdict), (target, line)


def test_registered_targets_name_real_metrics():
    cases = [c for c in _bench.collect(full=False) if c.target is not None]
    assert len(cases) >= 5  # laplace, gaussian, discrete_gaussian, two mechanisms
    for c, t in [(case, t) for case in cases for t in (case.target, *case.more_targets)]:
        m = t.metric
        assert m in ("speed-up", "M/s") or m.startswith("vs ")
        if m.startswith("vs ") and c.peers:  # a row whose peer is not installed has none
            assert m.removeprefix("vs ") in c.peers
        if m == "speed-up":
            assert c.reference is not None
        if m == "M/s":
            assert c.items > 0


def test_more_targets_and_bandwidth_column():
    case = _bench.Case(
        "op",
        "1",
        native=lambda: None,
        reference=lambda: None,
        peers={"probe": lambda: None},
        nbytes=2 * 10**9,
        target=_bench.Target("speed-up", 2.0, "2x"),
        more_targets=[_bench.Target("vs probe", 0.7, "70% of the probe")],
    )
    rows = [_bench.Row(case, native_s=1.0, reference_s=3.0, peers_s={"probe": 0.5})]
    lines = _bench.targets_table(rows).splitlines()[2:]
    assert len(lines) == 2
    assert lines[0].rstrip().endswith("yes")  # 3x
    assert lines[1].rstrip().endswith("NO")  # 0.5x of the probe's speed
    assert "2.0 GB/s" in _bench.table(rows)  # 2e9 bytes in 1 s
