"""The benchmark cases of ppml_fast and the runner behind ``ppml-fast bench``.

Each area of the library has a module ``ppml_fast._bench.<area>`` whose ``cases(full)``
lists its rows; :data:`AREAS` names them in table order. A :class:`Case` is one operation
at one size, timed in every implementation it has: ``native`` (ppml_fast), ``reference``
(the pure-numpy oracle or numpy's own routine) and any peer library that is installed,
on the same inputs. Two runners time the same list: :func:`run` (``ppml-fast bench``,
which prints one table per area and the targets) and the pytest-benchmark files
``benchmarks/bench_<area>.py``, parametrised over ``(case, impl)`` by
``benchmarks/conftest.py``.

Rows marked ``full`` are the large sizes: ``cases(False)`` leaves them out and
``ppml-fast bench --full`` (or ``PPML_BENCH_FULL=1`` for pytest-benchmark) runs them too.
Operands are made on first use through a :class:`Data` cache, so building the list is
cheap and a runner drops an area's arrays once its last case has run.
"""

from __future__ import annotations

import importlib
import math
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .._tables import render

__all__ = [
    "AREAS",
    "LONG_CALL",
    "Case",
    "Data",
    "Row",
    "Target",
    "case_id",
    "collect",
    "run",
    "select",
    "table",
    "tables",
    "targets_table",
    "throughput",
    "time_call",
    "timing_stats",
    "timings",
]

#: The areas, in table order; ``ppml_fast._bench.<area>`` holds each one's cases.
AREAS = (
    "noise",
    "mechanisms",
    "stats",
    "accounting",
    "clipping",
    "sharing",
    "paillier",
    "ckks",
    "aggregation",
    "split",
    "simulation",
)

Call = Callable[[], Any]


class Data:
    """Operands made on first use, kept until :meth:`clear`.

    The cases of an area share one instance: the first case that needs an array makes it,
    the next ones reuse it, and the runner clears the instance after the last case that
    names it (a later call makes the operands again).
    """

    def __init__(self) -> None:
        self._items: dict[str, Any] = {}

    def get(self, name: str, make: Callable[[], Any]) -> Any:
        """The operand ``name``, made by ``make()`` when it is not there yet.

        Parameters
        ----------
        name : str
            The operand's key in this cache.
        make : callable
            Called without arguments to build the operand on first use.

        Returns
        -------
        object
            What ``make()`` returned, now or on an earlier call.
        """
        if name not in self._items:
            self._items[name] = make()
        return self._items[name]

    def clear(self) -> None:
        """Drop every operand (the next :meth:`get` makes it again)."""
        self._items.clear()


@dataclass(frozen=True)
class Target:
    """A goal for one row: ``metric >= minimum``.

    Attributes
    ----------
    metric : str
        ``"speed-up"`` (reference / native), ``"M/s"`` (native items per second, in
        millions) or ``"vs <peer>"`` (peer time / native time).
    minimum : float
        The smallest value that meets the goal.
    label : str
        The goal in words, as the targets table shows it.
    """

    metric: str
    minimum: float
    label: str

    def measure(self, row: Row) -> float | None:
        """The value of :attr:`metric` in ``row``, or None where the row lacks it.

        Parameters
        ----------
        row : Row
            The timed row.

        Returns
        -------
        float or None
            None when the reference or the peer was not timed, or (``"M/s"``) when the
            case counts no items.
        """
        if self.metric == "speed-up":
            return row.speedup
        if self.metric == "M/s":
            return row.case.items / row.native_s / 1e6 if row.case.items else None
        peer = row.peers_s.get(self.metric.removeprefix("vs "))
        return None if peer is None else peer / row.native_s


@dataclass
class Case:
    """One row of an area's table: an operation at one size, in every implementation.

    Attributes
    ----------
    operation : str
        What is timed; with :attr:`size` it names the row (unique within its area).
    size : str
        The size, as the tables show it.
    native : callable
        ppml_fast's call.
    reference : callable or None
        The oracle's (or numpy's) call on the same inputs, None where there is none.
    reference_name : str
        What the reference is, shown next to its time.
    peers : dict of str to callable
        Other implementations timed on the same inputs (peer libraries when they are
        installed, or probes such as one plain read of the same array).
    items : int
        Values produced per call, for a throughput column in items per second.
    nbytes : int
        Bytes read per call: the throughput column shows GB/s instead.
    target : Target or None
        The goal this row is measured against.
    more_targets : list of Target
        Further goals for the row.
    full : bool
        A large size, run only by ``ppml-fast bench --full`` (``PPML_BENCH_FULL=1``).
    data : Data or None
        The cache of the operands the calls use, cleared after the last case naming it.
    check : callable or None
        ``check(result)`` is true when what the native or the reference call returned is
        right (the pytest-benchmark runner asserts it).
    area : str
        The area the case belongs to, set by :func:`collect`.
    """

    operation: str
    size: str
    native: Call
    reference: Call | None = None
    reference_name: str = "numpy"
    peers: dict[str, Call] = field(default_factory=dict)
    items: int = 0
    nbytes: int = 0
    target: Target | None = None
    more_targets: list[Target] = field(default_factory=list)
    full: bool = False
    data: Data | None = None
    check: Callable[[Any], bool] | None = None
    area: str = ""

    @property
    def key(self) -> str:
        """``"<operation>[<size>]"``: the row's name within its area."""
        return f"{self.operation}[{self.size}]"

    @property
    def targets(self) -> list[Target]:
        """:attr:`target` and :attr:`more_targets`, in that order."""
        return [t for t in (self.target, *self.more_targets) if t is not None]

    def impls(self) -> dict[str, Call]:
        """The timed calls by implementation: ``native``, ``reference`` (if any), peers."""
        out: dict[str, Call] = {"native": self.native}
        if self.reference is not None:
            out["reference"] = self.reference
        out.update(self.peers)
        return out


_ID_SPELLING = str.maketrans({"σ": "sigma", "ε": "eps", "δ": "delta", "Δ": "Delta", "×": "x"})


def case_id(case: Case, impl: str) -> str:
    """The test id of ``impl`` on ``case``: ``"<operation>[<size>]-<impl>"`` in ASCII.

    Parameters
    ----------
    case : Case
        The row.
    impl : str
        ``"native"``, ``"reference"`` or a peer's name.

    Returns
    -------
    str
        The id that pytest-benchmark and ``ppml-fast bench --json`` both use.
    """
    return f"{case.key}-{impl}".translate(_ID_SPELLING)


def select(cases: Iterable[Case], full: bool) -> list[Case]:
    """``cases`` without the ``full`` rows, unless ``full``.

    Parameters
    ----------
    cases : iterable of Case
        An area's rows, large sizes included.
    full : bool
        Keep the large sizes.

    Returns
    -------
    list of Case
        The rows to run.
    """
    return [c for c in cases if full or not c.full]


def collect(full: bool = False, areas: Iterable[str] = AREAS) -> list[Case]:
    """The cases of ``areas`` in table order, each tagged with its area.

    Parameters
    ----------
    full : bool
        Include the rows marked ``full`` (the large sizes).
    areas : iterable of str
        Area names from :data:`AREAS`; an area whose module is absent is skipped.

    Returns
    -------
    list of Case
        The cases; no operand is made yet.
    """
    cases: list[Case] = []
    for area in areas:
        try:
            mod = importlib.import_module(f"{__name__}.{area}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{area}":
                continue
            raise
        for case in mod.cases(full):
            case.area = area
            cases.append(case)
    return cases


#: Seconds: a reference or peer call this slow is timed once, its warm-up call being the
#: measurement (a second call would add minutes and change nothing that matters; native
#: calls always get their untimed warm-up, which may include JIT compilation).
LONG_CALL = 10.0


def timings(
    fn: Call,
    *,
    min_time: float = 0.1,
    min_runs: int = 3,
    max_runs: int = 20,
    slow: float = 0.5,
    long: float = math.inf,
) -> list[float]:
    """Wall times of repeated calls of ``fn`` after one untimed warm-up call.

    Parameters
    ----------
    fn : callable
        Called without arguments.
    min_time : float
        Keep calling until the timed calls add up to this many seconds...
    min_runs : int
        ...and at least this many calls were timed...
    max_runs : int
        ...but never more than this many.
    slow : float
        Two timed calls are enough when they took this many seconds together (slow
        calls vary less than the machine does).
    long : float
        A warm-up call that took this many seconds or more is the one measurement
        (``[its time]``); default: never.

    Returns
    -------
    list of float
        The seconds of each timed call, in order.
    """
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    if first >= long:
        return [first]
    out: list[float] = []
    while len(out) < max_runs:
        spent = sum(out)
        if len(out) >= min_runs and spent >= min_time:
            break
        if len(out) >= 2 and spent >= slow:
            break
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def time_call(fn: Call, *, min_time: float = 0.1, max_runs: int = 20) -> float:
    """The best wall time of ``fn()`` over :func:`timings`' repeated calls.

    Parameters
    ----------
    fn : callable
        Called without arguments.
    min_time, max_runs : float, int
        As in :func:`timings`.

    Returns
    -------
    float
        The shortest time, in seconds.
    """
    return min(timings(fn, min_time=min_time, max_runs=max_runs))


@dataclass
class Row:
    """A timed case: the best time of each implementation (and every time measured).

    Attributes
    ----------
    case : Case
        The case.
    native_s : float
        The native call's best time, in seconds.
    reference_s : float or None
        The reference's best time, None where the case has no reference.
    peers_s : dict of str to float
        Each peer's best time.
    runs : dict of str to list of float
        Every timed call by implementation, for :func:`timing_stats`.
    """

    case: Case
    native_s: float
    reference_s: float | None
    peers_s: dict[str, float]
    runs: dict[str, list[float]] = field(default_factory=dict)

    @property
    def speedup(self) -> float | None:
        """reference / native, None without a reference."""
        return None if self.reference_s is None else self.reference_s / self.native_s


def run(cases: list[Case], progress: Callable[[int, int, Case], None] | None = None) -> list[Row]:
    """Time every implementation of every case, in order.

    Parameters
    ----------
    cases : list of Case
        The cases to time.
    progress : callable, optional
        ``progress(i, n, case)`` before case ``i`` of ``n``.

    Returns
    -------
    list of Row
        One row per case. A case's :class:`Data` is cleared after the last case that
        uses it, so that one area's operands are gone before the next area's are made.
    """
    last = {id(c.data): i for i, c in enumerate(cases) if c.data is not None}
    rows = []
    for i, case in enumerate(cases):
        if progress is not None:
            progress(i, len(cases), case)
        runs = {
            name: timings(fn, long=math.inf if name == "native" else LONG_CALL)
            for name, fn in case.impls().items()
        }
        best = {name: min(t) for name, t in runs.items()}
        peers = {name: best[name] for name in case.peers}
        rows.append(Row(case, best["native"], best.get("reference"), peers, runs))
        if case.data is not None and last[id(case.data)] == i:
            case.data.clear()
    return rows


def timing_stats(data: list[float]) -> dict[str, Any]:
    """pytest-benchmark's summary of a list of timings (its ``stats`` JSON object).

    Parameters
    ----------
    data : list of float
        Seconds per call, at least one.

    Returns
    -------
    dict
        ``min``, ``max``, ``mean``, ``stddev``, ``rounds``, ``median``, ``iqr``, ``q1``,
        ``q3``, ``iqr_outliers``, ``stddev_outliers``, ``outliers``, ``ld15iqr``,
        ``hd15iqr``, ``ops``, ``total``, ``iterations`` (1) and ``data``; the quartiles
        are the medians of the lower and upper halves of the sorted times.
    """
    s = sorted(data)
    n = len(s)
    mean = statistics.mean(s)
    stddev = statistics.stdev(s) if n > 1 else 0.0
    if n == 1:
        q1 = q3 = s[0]
    else:
        q1, q3 = statistics.median(s[: n // 2]), statistics.median(s[(n + 1) // 2 :])
    iqr = q3 - q1
    lo, hi = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    iqr_out = sum(1 for x in s if x < lo or x > hi)
    sd_out = sum(1 for x in s if x < mean - stddev or x > mean + stddev)
    total = sum(s)
    return {
        "min": s[0],
        "max": s[-1],
        "mean": mean,
        "stddev": stddev,
        "rounds": n,
        "median": statistics.median(s),
        "iqr": iqr,
        "q1": q1,
        "q3": q3,
        "iqr_outliers": iqr_out,
        "stddev_outliers": sd_out,
        "outliers": f"{sd_out};{iqr_out}",
        "ld15iqr": min(x for x in s if x >= lo),
        "hd15iqr": max(x for x in s if x <= hi),
        "ops": n / total if total else 0.0,
        "total": total,
        "iterations": 1,
        "data": list(data),
    }


def throughput(case: Case, seconds: float) -> dict[str, float]:
    """The case's work per call and its rate at ``seconds`` per call.

    Parameters
    ----------
    case : Case
        The case (its :attr:`~Case.items` or :attr:`~Case.nbytes`).
    seconds : float
        Seconds per call.

    Returns
    -------
    dict
        ``{"bytes": ..., "GB_per_s": ...}``, ``{"items": ..., "items_per_s": ...}``, or
        empty when the case counts neither.
    """
    if case.nbytes:
        return {"bytes": case.nbytes, "GB_per_s": case.nbytes / seconds / 1e9}
    if case.items:
        return {"items": case.items, "items_per_s": case.items / seconds}
    return {}


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


def _fmt_rate(case: Case, seconds: float) -> str:
    """GB/s for a case that counts bytes; items per second (M/s, or k/s below 0.1 M/s,
    as for Paillier ciphertexts) for one that counts items."""
    if case.nbytes:
        return f"{case.nbytes / seconds / 1e9:.1f} GB/s"
    if not case.items:
        return "-"
    per_s = case.items / seconds
    return f"{per_s / 1e6:.1f} M/s" if per_s >= 1e5 else f"{per_s / 1e3:.1f} k/s"


def table(rows: list[Row], markdown: bool = False) -> str:
    """One table of ``rows`` with the columns they use.

    Parameters
    ----------
    rows : list of Row
        Timed rows, usually one area's.
    markdown : bool
        A Markdown table instead of aligned plain text.

    Returns
    -------
    str
        Columns operation, size, native; reference and speed-up where a row has a
        reference; ``<peer>`` and ``vs <peer>`` (peer / native) for each peer some row
        has; native throughput where a row counts items or bytes.
    """
    peers: list[str] = []
    for r in rows:
        peers += [p for p in r.peers_s if p not in peers]
    with_ref = any(r.reference_s is not None for r in rows)
    with_rate = any(r.case.items or r.case.nbytes for r in rows)
    head = ["operation", "size"]
    head += ["reference", "native", "speed-up"] if with_ref else ["native"]
    for p in peers:
        head += [p, f"vs {p}"]
    if with_rate:
        head.append("native throughput")
    body = []
    for r in rows:
        line = [r.case.operation, r.case.size]
        if with_ref:
            ref = r.reference_s
            shown = "-" if ref is None else f"{_fmt_time(ref)} ({r.case.reference_name})"
            line += [shown, _fmt_time(r.native_s), _fmt_ratio(r.speedup)]
        else:
            line.append(_fmt_time(r.native_s))
        for p in peers:
            t = r.peers_s.get(p)
            line += [_fmt_time(t), _fmt_ratio(None if t is None else t / r.native_s)]
        if with_rate:
            line.append(_fmt_rate(r.case, r.native_s))
        body.append(line)
    return render(head, body, markdown)


def tables(rows: list[Row], markdown: bool = False) -> str:
    """One :func:`table` per area, each under its area's name.

    Parameters
    ----------
    rows : list of Row
        Timed rows of any areas.
    markdown : bool
        Markdown (``## <area>`` headings) instead of plain text.

    Returns
    -------
    str
        The tables in :data:`AREAS` order (areas not in it last), blank-line separated.
    """
    by_area: dict[str, list[Row]] = {}
    for r in rows:
        by_area.setdefault(r.case.area, []).append(r)
    order = sorted(by_area, key=lambda a: AREAS.index(a) if a in AREAS else len(AREAS))
    parts = []
    for area in order:
        title = area or "other"
        heading = f"## {title}\n" if markdown else f"{title}:"
        parts.append(f"{heading}\n{table(by_area[area], markdown)}")
    return "\n\n".join(parts)


def targets_table(rows: list[Row], markdown: bool = False, not_run: Iterable[Case] = ()) -> str:
    """One line per target: the goal, what this run measured, and whether it is met.

    Parameters
    ----------
    rows : list of Row
        Timed rows.
    markdown : bool
        A Markdown table instead of aligned plain text.
    not_run : iterable of Case
        Cases with targets that this run left out (the ``--full`` rows of a quick run):
        their lines say ``--full``.

    Returns
    -------
    str
        Columns operation, size, target, measured, met (``yes``, ``NO`` or ``-`` when
        the metric could not be measured).
    """
    head = ["operation", "size", "target", "measured", "met"]
    body = [_target_line(r, t) for r in rows for t in r.case.targets]
    body += [[c.operation, c.size, t.label, "--full", "-"] for c in not_run for t in c.targets]
    return render(head, body, markdown)


def _target_line(r: Row, t: Target) -> list[str]:
    value = t.measure(r)
    unit = " M/s" if t.metric == "M/s" else "x"
    shown = "-" if value is None else f"{value:.2f}{unit} ({t.metric})"
    met = "-" if value is None else ("yes" if value >= t.minimum else "NO")
    return [r.case.operation, r.case.size, t.label, shown, met]
