"""The quick benchmark suite behind ``ppml-fast bench``.

Each area contributes a module ``ppml_fast._bench.<area>`` with ``cases(full: bool) ->
list[Case]``; :data:`AREAS` lists them in table order. A case times the reference (the
pure-numpy oracle or numpy's own sampler), the native kernel and any peer library that
is installed, on the same inputs, and reports the ratios.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .._tables import render

AREAS = [
    "noise",
    "discrete",
    "mechanisms",
    "stats",
    "accounting",
    "clipping",
    "sharing",
    "paillier",
    "aggregation",
    "secagg",
    "simulation",
]


@dataclass
class Case:
    """One row of the table: an operation at one size, timed in every implementation."""

    operation: str
    size: str
    native: Callable[[], Any]
    reference: Callable[[], Any] | None = None
    reference_name: str = "numpy"
    peers: dict[str, Callable[[], Any]] = field(default_factory=dict)
    items: int = 0  # values produced per call, for a throughput column
    nbytes: int = 0  # bytes read per call: the throughput column shows GB/s instead
    target: Target | None = None  # a figure the issue asks this row to reach
    more_targets: list[Target] = field(default_factory=list)  # further goals for the row


@dataclass(frozen=True)
class Target:
    """A goal for one row: ``metric >= minimum``, where ``metric`` is ``"speed-up"``
    (reference / native), ``"M/s"`` (native throughput) or ``"vs <peer>"`` (peer / native)."""

    metric: str
    minimum: float
    label: str

    def measure(self, row: Row) -> float | None:
        if self.metric == "speed-up":
            return row.speedup
        if self.metric == "M/s":
            return row.case.items / row.native_s / 1e6 if row.case.items else None
        peer = row.peers_s.get(self.metric.removeprefix("vs "))
        return None if peer is None else peer / row.native_s


@dataclass
class Row:
    case: Case
    native_s: float
    reference_s: float | None
    peers_s: dict[str, float]

    @property
    def speedup(self) -> float | None:
        return None if self.reference_s is None else self.reference_s / self.native_s


def _fmt_rate(per_s: float) -> str:
    """Items per second: M/s, or k/s below 0.1 M/s (Paillier ciphertexts)."""
    return f"{per_s / 1e6:.1f} M/s" if per_s >= 1e5 else f"{per_s / 1e3:.1f} k/s"


def time_call(fn: Callable[[], Any], *, min_time: float = 0.15, max_runs: int = 20) -> float:
    """Best wall time of ``fn()`` over repeated runs (after one warm-up call)."""
    fn()
    best = float("inf")
    spent = 0.0
    runs = 0
    while runs < 3 or (spent < min_time and runs < max_runs):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best = min(best, dt)
        spent += dt
        runs += 1
    return best


def collect(full: bool = False, areas: Iterable[str] = AREAS) -> list[Case]:
    cases: list[Case] = []
    for area in areas:
        try:
            mod = importlib.import_module(f"{__name__}.{area}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{area}":
                continue
            raise
        cases.extend(mod.cases(full))
    return cases


def run(cases: list[Case], progress: Callable[[int, int, Case], None] | None = None) -> list[Row]:
    rows = []
    for i, case in enumerate(cases):
        if progress is not None:
            progress(i, len(cases), case)
        native = time_call(case.native)
        ref = time_call(case.reference) if case.reference is not None else None
        peers = {name: time_call(fn) for name, fn in case.peers.items()}
        rows.append(Row(case, native, ref, peers))
    return rows


def peer_names(rows: list[Row]) -> list[str]:
    names: list[str] = []
    for r in rows:
        for n in r.peers_s:
            if n not in names:
                names.append(n)
    return names


def _fmt_time(s: float | None) -> str:
    if s is None:
        return "-"
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.1f} us"


def _fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}x"


def targets_table(rows: list[Row], markdown: bool = False) -> str:
    """One line per row with a target: what the issue asks, what this run measured, met?"""
    head = ["operation", "size", "target", "measured", "met"]
    body = []
    for r in rows:
        for t in (r.case.target, *r.case.more_targets):
            if t is not None:
                body.append(_target_line(r, t))
    return render(head, body, markdown)


def _target_line(r: Row, t: Target) -> list[str]:
    value = t.measure(r)
    unit = " M/s" if t.metric == "M/s" else "x"
    shown = "-" if value is None else f"{value:.2f}{unit} ({t.metric})"
    met = "-" if value is None else ("yes" if value >= t.minimum else "NO")
    return [r.case.operation, r.case.size, t.label, shown, met]


def table(rows: list[Row], markdown: bool = False) -> str:
    """Render the rows: operation, size, reference, native, speed-up, peers, throughput."""
    peers = peer_names(rows)
    head = ["operation", "size", "reference", "native", "speed-up"]
    for p in peers:
        head += [p, f"vs {p}"]
    head.append("native throughput")
    body = []
    for r in rows:
        ref = r.reference_s
        line = [
            r.case.operation,
            r.case.size,
            "-" if ref is None else f"{_fmt_time(ref)} ({r.case.reference_name})",
            _fmt_time(r.native_s),
            _fmt_ratio(r.speedup),
        ]
        for p in peers:
            t = r.peers_s.get(p)
            line += [_fmt_time(t), _fmt_ratio(None if t is None else t / r.native_s)]
        if r.case.nbytes:
            line.append(f"{r.case.nbytes / r.native_s / 1e9:.1f} GB/s")
        else:
            line.append(_fmt_rate(r.case.items / r.native_s) if r.case.items else "-")
        body.append(line)
    return render(head, body, markdown)
