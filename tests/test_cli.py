"""The ``ppml-fast`` console script and the benchmark table it prints."""
import numpy as np
import pytest

from ppml_fast import _bench, cli


def _tiny_cases():
    return [
        _bench.Case("op-a", "10", native=lambda: np.zeros(10), reference=lambda: np.ones(10),
                    peers={"peerlib": lambda: np.ones(10)}, items=10),
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
