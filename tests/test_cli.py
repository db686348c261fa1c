"""The ``ppml-fast`` console script and the benchmark runner and tables behind ``bench``."""

import json
import time

import numpy as np
import pytest

from ppml_fast import _bench, cli


def _tiny_cases():
    data = _bench.Data()
    a = _bench.Case(
        "op-a",
        "10",
        native=lambda: data.get("z", lambda: np.zeros(10)),
        reference=lambda: np.ones(10),
        peers={"peerlib": lambda: np.ones(10)},
        items=10,
        data=data,
        area="noise",
    )
    b = _bench.Case("op-b", "1", native=lambda: 1, reference=None, area="noise")
    c = _bench.Case("op-c", "2", native=lambda: 2, nbytes=16, area="sharing")
    big = _bench.Case(
        "op-a",
        "1e9",
        native=lambda: None,
        target=_bench.Target("speed-up", 2.0, "2x at 1e9"),
        full=True,
        area="noise",
    )
    return [a, b, c, big]


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(_bench, "collect", lambda full=False, areas=_bench.AREAS: _tiny_cases())


def test_run_and_table():
    rows = _bench.run(_bench.select(_tiny_cases(), full=False))
    assert [r.case.operation for r in rows] == ["op-a", "op-b", "op-c"]
    assert rows[0].speedup is not None and rows[0].speedup > 0 and rows[1].speedup is None
    assert set(rows[0].runs) == {"native", "reference", "peerlib"}
    assert all(len(t) >= 3 for t in rows[0].runs.values())
    text = _bench.table(rows[:2])
    header = text.splitlines()[0]
    for col in ("operation", "size", "reference", "native", "speed-up", "peerlib", "vs peerlib"):
        assert col in header
    md = _bench.table(rows[:2], markdown=True).splitlines()
    assert md[0].startswith("| operation") and md[1].startswith("|---")
    assert len(md) == 4 and md[3].split("|")[5].strip() == "-"  # no reference → no ratio


def test_table_has_only_the_columns_its_rows_use():
    rows = _bench.run(_bench.select(_tiny_cases(), full=False))
    header = _bench.table([rows[2]]).splitlines()[0].split()
    assert header == ["operation", "size", "native", "native", "throughput"]
    header = _bench.table(rows[1:2]).splitlines()[0].split()
    assert header == ["operation", "size", "native"]  # no reference, peer or throughput


def test_runner_drops_operands_after_their_last_case():
    cases = _bench.select(_tiny_cases(), full=False)
    data = cases[0].data
    _bench.run(cases)
    assert data is not None and not data._items  # made by op-a, cleared after it
    assert data.get("z", lambda: 5) == 5  # a later call makes it again


def test_time_call_returns_best_positive():
    calls = []
    t = _bench.time_call(lambda: calls.append(1), min_time=0.0)
    assert t >= 0 and len(calls) >= 4  # warm-up + at least three timed runs


def test_slow_calls_are_timed_twice():
    assert len(_bench.timings(lambda: time.sleep(0.06), slow=0.1)) == 2
    assert len(_bench.timings(lambda: None, min_time=0.0)) == 3


def test_stats_has_pytest_benchmark_fields():
    s = _bench.timing_stats([0.3, 0.1, 0.2, 0.4])
    for key in ("min", "max", "mean", "median", "stddev", "rounds", "iqr", "q1", "q3", "ops"):
        assert key in s
    assert s["min"] == 0.1 and s["max"] == 0.4 and s["rounds"] == 4
    assert s["median"] == pytest.approx(0.25) and s["q1"] == pytest.approx(0.15)
    assert _bench.timing_stats([0.5])["stddev"] == 0


def test_every_registered_case_runs_natively():
    cases = _bench.collect(full=False)
    assert {c.operation.split()[0] for c in cases} >= {"laplace", "gaussian"}
    assert {c.area for c in cases} >= set(_bench.AREAS) - {"simulation"}
    for c in cases:
        result = c.native()
        assert c.check is None or c.check(result), c.key
        if c.data is not None:
            c.data.clear()


def test_case_keys_are_unique_and_ids_ascii():
    cases = _bench.collect(full=True)
    keys = [(c.area, c.key) for c in cases]
    assert len(keys) == len(set(keys))
    for c in cases:
        for impl in c.impls():
            assert _bench.case_id(c, impl).isascii()
    quick = {(c.area, c.key) for c in _bench.collect(full=False)}
    assert quick == {(c.area, c.key) for c in cases if not c.full}


def test_bench_command_prints_one_table_per_area(tiny, capsys):
    assert cli.main(["bench", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "machine:" in out and "op-a" in out and "speed-up" in out
    assert "\nnoise:\n" in out and "\nsharing:\n" in out
    assert "1e9" in out and "--full" in out  # the target of a row that was not run


def test_bench_markdown_has_machine_date_and_a_table_per_area(tiny, capsys):
    assert cli.main(["bench", "--markdown"]) == 0
    captured = capsys.readouterr()
    assert "# ppml_fast benchmarks" in captured.out and "cores" in captured.out
    assert "| op-a |" in captured.out
    assert "## noise" in captured.out and "## sharing" in captured.out
    assert "## Targets" in captured.out
    noise = captured.out.split("## noise")[1].split("## sharing")[0]
    sharing = captured.out.split("## sharing")[1].split("## Targets")[0]
    assert "peerlib" in noise and "peerlib" not in sharing  # peer columns per area
    assert "speed-up" not in sharing and "GB/s" in sharing
    assert "[1/3] op-a" in captured.err  # progress goes to stderr


def test_bench_full_runs_the_large_rows(tiny, capsys):
    assert cli.main(["bench", "--quiet", "--full"]) == 0
    out = capsys.readouterr().out
    assert "--full" not in out.split("targets:")[1]


def test_bench_list_names_cases_without_timing(tiny, capsys):
    assert cli.main(["bench", "--list"]) == 0
    out = capsys.readouterr().out
    assert "op-a" in out and "peerlib" in out and "sharing" in out
    assert "1e9" not in out  # a --full row
    assert cli.main(["bench", "--list", "--full"]) == 0
    assert "1e9" in capsys.readouterr().out


def test_bench_list_of_the_real_cases(capsys):
    assert cli.main(["bench", "--list", "--filter", "paillier"]) == 0
    out = capsys.readouterr().out
    assert "encrypt_batch" in out and "fedavg" not in out


def test_bench_filter_by_area_and_by_operation(tiny, capsys):
    assert cli.main(["bench", "--list", "--filter", "sharing"]) == 0
    out = capsys.readouterr().out
    assert "op-c" in out and "op-a" not in out
    assert cli.main(["bench", "--list", "--filter", "op-b"]) == 0
    out = capsys.readouterr().out
    assert "op-b" in out and "op-a" not in out and "op-c" not in out


def test_bench_filter_without_match_fails(capsys):
    assert cli.main(["bench", "--filter", "no-such-operation"]) == 1
    assert "no benchmark matches" in capsys.readouterr().err


def test_bench_json_has_pytest_benchmark_layout(tiny, tmp_path, capsys):
    path = tmp_path / "out.json"
    assert cli.main(["bench", "--quiet", "--json", str(path)]) == 0
    doc = json.loads(path.read_text())
    assert set(doc) >= {"machine_info", "commit_info", "benchmarks", "datetime", "version"}
    assert doc["machine_info"]["cpu"]["count"] and "python_version" in doc["machine_info"]
    assert "id" in doc["commit_info"] and "dirty" in doc["commit_info"]
    names = [b["name"] for b in doc["benchmarks"]]
    assert "test_noise[op-a[10]-native]" in names and "test_noise[op-a[10]-peerlib]" in names
    assert len(names) == 5  # op-a: native, reference, peerlib; op-b, op-c: native
    for b in doc["benchmarks"]:
        assert set(b) >= {"group", "name", "fullname", "params", "stats", "extra_info"}
        assert set(b["stats"]) >= {"min", "max", "mean", "median", "stddev", "rounds"}
        assert b["stats"]["min"] <= b["stats"]["median"] <= b["stats"]["max"]
        assert b["fullname"].endswith("::" + b["name"])
    a = next(b for b in doc["benchmarks"] if b["name"] == "test_noise[op-a[10]-native]")
    assert a["params"] == {"case": "op-a[10]", "impl": "native"}
    assert a["group"] == "noise: op-a[10]" and a["extra_info"]["items"] == 10
    assert a["extra_info"]["items_per_s"] > 0


def test_bench_runs_real_cases_on_a_tiny_filter(tmp_path, capsys):
    path = tmp_path / "dp_sum.json"
    argv = ["bench", "--quiet", "--filter", "dp_mean", "--json", str(path), "--markdown"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "## stats" in out and "| dp_mean | 1e+06 |" in out
    doc = json.loads(path.read_text())
    assert {b["params"]["impl"] for b in doc["benchmarks"]} == {"native", "reference"}


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


def test_targets_table_marks_rows_not_run():
    big = _tiny_cases()[-1]
    lines = _bench.targets_table([], not_run=[big]).splitlines()[2:]
    assert len(lines) == 1 and "--full" in lines[0] and "2x at 1e9" in lines[0]


def test_registered_targets_name_real_metrics():
    cases = [c for c in _bench.collect(full=True) if c.targets]
    assert len(cases) >= 5  # laplace, gaussian, discrete_gaussian, two mechanisms
    for c, t in [(case, t) for case in cases for t in case.targets]:
        m = t.metric
        if type(t).measure is not _bench.Target.measure:  # a target with its own measure
            assert t.measure.__doc__, m  # (bytes on the wire: ckks) says what it measures
            continue
        assert m in ("speed-up", "M/s") or m.startswith("vs ")
        if m.startswith("vs ") and c.peers:  # a row whose peer is not installed has none
            assert m.removeprefix("vs ") in c.peers
        if m == "speed-up":
            assert c.reference is not None
        if m == "M/s":
            assert c.items > 0


def test_every_target_has_a_row_in_the_full_run():
    quick_targets = {(c.area, c.key) for c in _bench.collect(full=False) if c.targets}
    full_targets = {(c.area, c.key) for c in _bench.collect(full=True) if c.targets}
    assert quick_targets <= full_targets
    assert len(full_targets) >= 15


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
