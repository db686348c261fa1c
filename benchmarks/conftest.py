"""pytest-benchmark over the cases of ``ppml-fast bench``.

Each ``bench_<area>.py`` names its area (``AREA = "noise"``) and has one test taking the
``case`` and ``impl`` parameters and the ``bench`` fixture; this file parametrises it over
that area's case list (``ppml_fast._bench.<area>.cases``), one test per implementation
of every case: ``impl`` is ``native``, ``reference`` or a peer that is installed, and the
ids read ``<operation>[<size>]-<impl>``. Set ``PPML_BENCH_FULL=1`` for the ``--full``
sizes.

Run: ``pytest benchmarks/ --benchmark-enable`` (the project's pytest options disable
timing by default, so that a plain run is a smoke test: each call runs once). Tests are
grouped by case, so each group compares the implementations of one row;
``extra_info`` holds the case's area, operation and size and its throughput (items or
bytes per call and per second).
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from ppml_fast import _bench

FULL = bool(os.environ.get("PPML_BENCH_FULL"))
SLOW_CALL = 0.1  # seconds: slower calls run 3 rounds of 1 call (pedantic mode)
# seconds: a reference or peer call this slow (as dp_accounting's PLD at the PRV row's
# error) runs 1 round of 1 call after its first call
LONG_CALL = _bench.LONG_CALL

_CASES: dict[str, dict[str, _bench.Case]] = {}


def _cases(area: str) -> dict[str, _bench.Case]:
    """The area's cases by key, built once per session."""
    if area not in _CASES:
        _CASES[area] = {c.key: c for c in _bench.collect(FULL, [area])}
    return _CASES[area]


def pytest_collect_file(file_path: Any, parent: Any) -> Any:
    """Collect ``bench_*.py`` when a directory is given (files given by name are anyway)."""
    if (
        file_path.suffix == ".py"
        and file_path.name.startswith("bench_")
        and not parent.session.isinitpath(file_path)
    ):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise a bench module's test over ``(case, impl)`` of the module's ``AREA``."""
    area = getattr(metafunc.module, "AREA", None)
    if area is None or "impl" not in metafunc.fixturenames:
        return
    params = [
        pytest.param(key, impl, id=_bench.case_id(case, impl))
        for key, case in _cases(area).items()
        for impl in case.impls()
    ]
    metafunc.parametrize(("case", "impl"), params)


def _seconds(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def pytest_benchmark_update_machine_info(config: Any, machine_info: dict[str, Any]) -> None:
    """Add what ``ppml-fast bench --json`` adds: threads used, numpy, peers, CPU line."""
    from ppml_fast import cli

    machine_info["ppml_fast"] = cli.machine_info()["ppml_fast"]


@pytest.fixture(scope="module", autouse=True)
def _drop_operands(request: pytest.FixtureRequest) -> Any:
    """Clear the area's operand caches once its module is done."""
    yield
    for case in _CASES.get(getattr(request.module, "AREA", ""), {}).values():
        if case.data is not None:
            case.data.clear()


@pytest.fixture
def bench(benchmark: Any, request: pytest.FixtureRequest) -> Any:
    """``bench(case, impl)``: time one implementation of a case and check its result.

    The call runs under pytest-benchmark (3 rounds of one call when a call, once
    compiled and warm, takes more than ``SLOW_CALL`` seconds; 1 round when a reference
    or peer call takes ``LONG_CALL`` seconds or more); what the native or the
    reference call returned must pass the case's ``check``. Returns what the call
    returned.
    """

    def run(key: str, impl: str) -> Any:
        case = _cases(request.module.AREA)[key]
        fn = case.impls()[impl]
        benchmark.group = f"{case.area}: {case.key}"
        benchmark.extra_info.update(area=case.area, operation=case.operation, size=case.size)
        if impl == "reference":
            benchmark.extra_info["reference"] = case.reference_name
        if benchmark.disabled:
            result = benchmark(fn)
        else:
            first = _seconds(fn)
            if impl != "native" and first >= LONG_CALL:
                result = benchmark.pedantic(fn, rounds=1, iterations=1)
            else:
                slow = first > SLOW_CALL and _seconds(fn) > SLOW_CALL  # 2nd: JIT done
                result = benchmark.pedantic(fn, rounds=3, iterations=1) if slow else benchmark(fn)
            benchmark.extra_info.update(_bench.throughput(case, benchmark.stats.stats.min))
        if case.check is not None and impl in ("native", "reference"):
            assert case.check(result), f"{impl} returned a wrong result for {case.key}"
        return result

    return run
