"""The ``ppml-fast`` console script: ``ppml-fast bench`` prints the benchmark table;
``ppml-fast simulate`` runs a federated-learning simulation (or, with ``--split``, a
split-learning one) and prints its rounds."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import sys
from collections.abc import Iterator
from concurrent.futures import Executor
from importlib import metadata
from typing import Any

from . import __version__, _bench, get_isa
from ._tables import render

#: Peer libraries whose columns appear when they are installed (`pip install .[peers]`).
PEERS = ("opendp", "diffprivlib", "opacus", "dp-accounting", "torch", "mpyc", "phe", "flwr")


def _cpu() -> tuple[str, list[str]]:
    """The CPU model and its flags, from /proc/cpuinfo where there is one."""
    cpu = platform.processor() or platform.machine()
    flags: list[str] = []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    break
    except OSError:
        pass
    return cpu, flags


def _peers() -> dict[str, str]:
    """The installed peer libraries and their versions."""
    out = {}
    for dist in PEERS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def machine() -> str:
    """CPU model and ISA, core count, Python and numpy versions, the peers installed.

    Returns
    -------
    str
        One line: the context every figure of ``ppml-fast bench`` needs.
    """
    import numpy as np

    from . import get_num_threads

    cpu, _ = _cpu()
    peers = [f"{dist} {version}" for dist, version in _peers().items()]
    return (
        f"{cpu}; {isa_line()}; {os.cpu_count()} cores ({get_num_threads()} threads used); "
        f"Python {platform.python_version()}; numpy {np.__version__}; {platform.system()}; "
        f"peers: {', '.join(peers) if peers else 'none installed'}"
    )


def isa_line() -> str:
    """The ISA level ppml_fast runs at, the CPU's best and its sub-features, and the levels
    numpy (and torch, when it is loaded) dispatch to."""
    from . import available_isas, get_isa
    from ._native import _cpu as cpu

    features = cpu.cpu_features()
    subs = ", ".join(
        f"{'' if features[k] else 'no '}{name}"
        for k, name in (("vaes", "VAES"), ("avx512ifma", "AVX-512 IFMA"))
    )
    line = f"ppml_fast ISA {get_isa()} (CPU up to {available_isas()[-1]}; {subs})"
    line += f"; numpy dispatch {_numpy_level()}"
    torch = sys.modules.get("torch")
    if torch is not None:
        line += f"; torch {torch.backends.cpu.get_cpu_capability()}"
    return line


def _numpy_level() -> str:
    """The highest dispatch target numpy uses in this process ("baseline" when none)."""
    try:
        from numpy._core import _multiarray_umath as umath  # type: ignore[attr-defined]

        targets = list(umath.__cpu_dispatch__)
        on = umath.__cpu_features__
    except (ImportError, AttributeError):
        return "unknown"
    used = [t for t in targets if on.get(t)]
    return used[-1] if used else "baseline"


#: What each ppml_fast level asks of the peers, to compare like with like: torch reads
#: ATEN_CPU_CAPABILITY, numpy NPY_DISABLE_CPU_FEATURES (both when they load).
_NUMPY_ABOVE = {
    "generic": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR AVX2 FMA3 AVX512F AVX512_SKX",
    "avx2": "X86_V4 AVX512_ICL AVX512_SPR AVX512F AVX512_SKX",
    "avx512": "",
}
_TORCH_LEVEL = {"generic": "default", "avx2": "avx2", "avx512": "avx512"}


def peer_env(level: str) -> dict[str, str]:
    """Environment variables that run ppml_fast and its peers at ISA ``level``.

    Parameters
    ----------
    level : str
        ``"generic"``, ``"avx2"`` or ``"avx512"``.

    Returns
    -------
    dict
        ``PPML_FAST_ISA``, ``ATEN_CPU_CAPABILITY`` and (below avx512)
        ``NPY_DISABLE_CPU_FEATURES``.
    """
    env = {"PPML_FAST_ISA": level, "ATEN_CPU_CAPABILITY": _TORCH_LEVEL[level]}
    if _NUMPY_ABOVE[level]:
        env["NPY_DISABLE_CPU_FEATURES"] = _NUMPY_ABOVE[level]
    return env


def machine_info() -> dict[str, Any]:
    """The machine, with the keys of pytest-benchmark's ``machine_info``.

    Returns
    -------
    dict
        node, processor, machine, python_* fields, release, system, cpu (brand_raw,
        count, flags) and ``ppml_fast`` (threads used, numpy version, peers, and the
        :func:`machine` line).
    """
    import numpy as np

    from . import get_num_threads

    cpu, flags = _cpu()
    return {
        "node": platform.node(),
        "processor": platform.processor(),
        "machine": platform.machine(),
        "python_compiler": platform.python_compiler(),
        "python_implementation": platform.python_implementation(),
        "python_implementation_version": platform.python_version(),
        "python_version": platform.python_version(),
        "python_build": list(platform.python_build()),
        "release": platform.release(),
        "system": platform.system(),
        "cpu": {"brand_raw": cpu, "count": os.cpu_count(), "flags": flags},
        "ppml_fast": {
            "threads": get_num_threads(),
            "numpy": np.__version__,
            "peers": _peers(),
            "summary": machine(),
        },
    }


def commit_info() -> dict[str, Any]:
    """The git commit of the working directory, with pytest-benchmark's ``commit_info`` keys.

    Returns
    -------
    dict
        id, time, author_time, dirty, project, branch; ``id`` is ``"unversioned"``
        outside a git work tree, ``"unknown"`` (with ``error``) when git fails.
    """
    import subprocess

    def git(*argv: str) -> str:
        done = subprocess.run(
            ["git", *argv], capture_output=True, text=True, timeout=10, check=True
        )
        return done.stdout.strip()

    info: dict[str, Any] = {
        "id": "unversioned",
        "time": None,
        "author_time": None,
        "dirty": False,
        "project": "ppml_fast",
        "branch": "(unknown)",
    }
    try:
        inside = git("rev-parse", "--is-inside-work-tree") == "true"
    except (OSError, subprocess.SubprocessError):
        inside = False
    if not inside:
        return info
    try:
        info["id"] = git("rev-parse", "HEAD")
        info["time"] = git("show", "-s", "--pretty=format:%cI")
        info["author_time"] = git("show", "-s", "--pretty=format:%aI")
        info["dirty"] = bool(git("status", "--porcelain", "--untracked-files=no"))
        branch = git("rev-parse", "--abbrev-ref", "HEAD")
        info["branch"] = "(detached head)" if branch == "HEAD" else branch
    except (OSError, subprocess.SubprocessError) as exc:
        info.update(id="unknown", error=repr(exc))
    return info


def _matches(case: _bench.Case, text: str) -> bool:
    """``--filter``: the text names the case's area or is part of its operation."""
    return not text or text in case.area or text in case.operation


def _bench_json(rows: list[_bench.Row], full: bool) -> dict[str, Any]:
    """The results in pytest-benchmark's JSON layout, one benchmark per implementation.

    Names, groups and params are those of ``benchmarks/bench_<area>.py``, so that
    ``pytest-benchmark compare`` lines a run of either up with the other; ``version`` is
    ppml_fast's.
    """
    import json

    benchmarks = []
    for r in rows:
        c = r.case
        for impl, runs in r.runs.items():
            name = f"test_{c.area}[{_bench.case_id(c, impl)}]"
            extra: dict[str, Any] = {"area": c.area, "operation": c.operation, "size": c.size}
            if impl == "reference":
                extra["reference"] = c.reference_name
            extra.update(_bench.throughput(c, min(runs)))
            benchmarks.append(
                {
                    "group": f"{c.area}: {c.key}",
                    "name": name,
                    "fullname": f"benchmarks/bench_{c.area}.py::{name}",
                    "params": {"case": c.key, "impl": impl},
                    "param": _bench.case_id(c, impl),
                    "extra_info": extra,
                    "options": {"timer": "perf_counter", "full": full},
                    "stats": _bench.timing_stats(runs),
                }
            )
    out = {
        "machine_info": machine_info(),
        "commit_info": commit_info(),
        "benchmarks": benchmarks,
        "datetime": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "version": __version__,
    }
    json.dumps(out)  # fail here, not half-way through the file, on an unserialisable value
    return out


#: How to read the figures: the paragraph under every benchmark document's title.
_HOW_TO_READ = (
    "Times are the best of several runs; speed-up = reference / native and "
    "`vs <peer>` = peer / native, measured in the same run. Quote ratios, not "
    "absolute times: the machines are shared and noisy.\n"
)


def _bench_cmd(args: argparse.Namespace) -> int:
    """``ppml-fast bench``: list or time the cases, print a table per area and the targets."""
    import json

    if args.comparison:
        return _comparison_cmd(args)
    if args.isa == "all":
        return _bench_all_levels(args)
    if args.isa is not None:
        return _bench_at(args, args.isa)
    every = [c for c in _bench.collect(full=True) if _matches(c, args.filter)]
    cases = _bench.select(every, args.full)
    if not cases:
        print("no benchmark matches", file=sys.stderr)
        return 1
    if args.list:
        head = ["area", "operation", "size", "implementations", "suite"]
        body = [
            [c.area, c.operation, c.size, ", ".join(c.impls()), "--full" if c.full else "quick"]
            for c in cases
        ]
        print(render(head, body, markdown=False))
        return 0

    def progress(i: int, n: int, case: _bench.Case) -> None:
        if not args.quiet:
            print(f"[{i + 1}/{n}] {case.operation} ({case.size})", file=sys.stderr, flush=True)

    rows = _bench.run(cases, progress)
    not_run = [c for c in every if c.full and not args.full and c.targets]
    with_targets = any(r.case.targets for r in rows) or bool(not_run)
    if args.markdown and args.section:
        # one level's part of `--isa all`: the caller printed the title
        print(f"## {args.section}\n")
        print(f"Machine: {machine()}.\n")
        print(_demote(_bench.tables(rows, markdown=True)))
        if with_targets:
            print(f"\n### Targets at {get_isa()}\n")
            print(_bench.targets_table(rows, markdown=True, not_run=not_run))
    elif args.markdown:
        today = datetime.date.today().isoformat()
        print("# ppml_fast benchmarks\n")
        print(
            f"Generated by `ppml-fast bench{' --full' if args.full else ''} --markdown` "
            f"on {today}.\n"
        )
        print(f"Machine: {machine()}.\n")
        print(_HOW_TO_READ)
        print(_bench.tables(rows, markdown=True))
        if with_targets:
            print("\n## Targets\n")
            print(
                "Each target is checked against the figures of the same run above; "
                "`--full` marks a target on a size that only `ppml-fast bench --full` runs.\n"
            )
            print(_bench.targets_table(rows, markdown=True, not_run=not_run))
    else:
        print(f"machine: {machine()}\n")
        print(_bench.tables(rows))
        if with_targets:
            print("\ntargets:")
            print(_bench.targets_table(rows, not_run=not_run))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(_bench_json(rows, args.full), f, indent=2)
            f.write("\n")
    return 0


def _comparison_cmd(args: argparse.Namespace) -> int:
    """``ppml-fast bench --comparison``: one round under each aggregation scheme."""
    from ._bench import ckks as bench_ckks

    if not bench_ckks.available():
        print(
            "ppml-fast bench --comparison needs TenSEAL: pip install 'ppml_fast[ckks]'",
            file=sys.stderr,
        )
        return 1
    clients, dim = (100, 10**5) if args.full else (20, 10**4)

    def progress(scheme: str) -> None:
        if not args.quiet:
            print(f"[comparison] {scheme}", file=sys.stderr, flush=True)

    rows = bench_ckks.comparison_table(clients, dim, progress=progress)
    title = f"One round: {clients} clients, {dim:,} parameters, one aggregate"
    if args.markdown:
        print(f"## {title}\n")
        print(f"Machine: {machine()}.\n")
        print(bench_ckks.comparison_markdown(rows, markdown=True))
        print(f"\n{bench_ckks.COMPARISON_NOTES}")
    else:
        print(f"machine: {machine()}\n\n{title}:")
        print(bench_ckks.comparison_markdown(rows, markdown=False))
        print(f"\n{bench_ckks.COMPARISON_NOTES}")
    return 0


def _child_env(level: str) -> dict[str, str]:
    """This process's environment with :func:`peer_env` ``(level)`` applied (a numpy
    feature mask inherited from the caller is dropped where the level sets none)."""
    env = {k: v for k, v in os.environ.items() if k != "NPY_DISABLE_CPU_FEATURES"}
    env.update(peer_env(level))
    return env


def _without_isa(argv: list[str]) -> list[str]:
    """``argv`` without its ``--isa LEVEL`` / ``--isa=LEVEL`` option."""
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a == "--isa":
            skip = True
        elif not a.startswith("--isa="):
            out.append(a)
    return out


def _demote(markdown: str) -> str:
    """Headings one level deeper (an area's ``## noise`` becomes ``### noise``)."""
    return "\n".join("#" + line if line.startswith("#") else line for line in markdown.split("\n"))


def _bench_all_levels(args: argparse.Namespace) -> int:
    """``ppml-fast bench --isa all``: the suite once per ISA level this CPU has, best first,
    each in a child process with numpy and torch forced to the same level; with
    ``--markdown``, one document with a section per level."""
    import subprocess

    from . import available_isas

    base = _without_isa(args.argv)
    levels = list(reversed(available_isas()))
    if args.markdown:
        today = datetime.date.today().isoformat()
        print("# ppml_fast benchmarks\n")
        print(
            f"Generated by `ppml-fast bench{' --full' if args.full else ''} --markdown "
            f"--isa all` on {today}: the suite once per ISA level this CPU has "
            f"({', '.join(levels)}), each run with numpy and torch forced to the same level "
            "(`ppml-fast bench --isa LEVEL`), best level first.\n"
        )
        print(_HOW_TO_READ, flush=True)
    rc = 0
    for level in levels:
        extra = ["--section", f"ISA level {level}"] if args.markdown else []
        if not args.markdown:
            print(f"=== ISA level {level}", flush=True)
        rc |= subprocess.call(
            [sys.executable, "-m", "ppml_fast.cli", *base, *extra], env=_child_env(level)
        )
        print(flush=True)
    return rc


def _bench_at(args: argparse.Namespace, level: str) -> int:
    """``ppml-fast bench --isa LEVEL``: the same command in a child process whose
    environment runs ppml_fast, numpy and torch at ``level`` (they read it when they load,
    so this process, which has loaded numpy, cannot switch them)."""
    import subprocess

    from ._native import parse_level

    try:
        parse_level(level, what="--isa")
    except ValueError as exc:
        print(f"ppml-fast bench: {exc}", file=sys.stderr)
        return 2
    argv = _without_isa(args.argv)
    return subprocess.call([sys.executable, "-m", "ppml_fast.cli", *argv], env=_child_env(level))


_MODES = ("fedavg", "dp-fedavg", "dp-sgd", "secagg", "secagg+", "paillier", "ckks")


@contextlib.contextmanager
def _executor(args: argparse.Namespace) -> Iterator[Executor | None]:
    """The executor ``--executor`` asks for: None (the default thread pool) or a Dask one."""
    if args.executor != "dask":
        yield None
        return
    try:
        import distributed
    except ImportError:
        raise _CommandError(
            "--executor dask needs dask.distributed: pip install 'dask[distributed]'"
        ) from None
    with contextlib.ExitStack() as stack:
        if args.dask_address:
            client = stack.enter_context(distributed.Client(args.dask_address))
        else:
            cluster = stack.enter_context(
                distributed.LocalCluster(
                    n_workers=args.workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                )
            )
            client = stack.enter_context(distributed.Client(cluster))
        yield client.get_executor()


class _CommandError(Exception):
    """A command cannot run as asked: its message goes to stderr, the exit status is 1."""


def _simulate_cmd(args: argparse.Namespace) -> int:
    try:
        if args.split is not None:
            return _simulate_split(args)
        return _simulate_fl(args)
    except _CommandError as e:
        print(e, file=sys.stderr)
        return 1


def _simulate_fl(args: argparse.Namespace) -> int:
    import time

    from . import simulation as sim

    dp_sgd = None
    if args.mode == "dp-sgd" or args.dp_sgd:
        dp_sgd = sim.DPSGD(args.noise_multiplier, args.clip, args.delta)
    aggregator: sim.Aggregator
    if args.mode in ("fedavg", "dp-sgd"):
        aggregator = sim.FedAvg()
    elif args.mode == "dp-fedavg":
        aggregator = sim.DPFedAvg(args.clip, args.noise_multiplier, args.delta)
    elif args.mode == "paillier":
        aggregator = sim.PaillierAggregation()
    elif args.mode == "ckks":
        aggregator = sim.CKKSAggregation(symmetric=args.symmetric)
    else:
        aggregator = sim.SecureAggregation(
            neighbors="auto" if args.mode == "secagg+" else None, dropout=args.dropout
        )
    dataset = args.dataset or "digits"
    data = sim.load_dataset(dataset)
    rounds = 10 if args.rounds is None else args.rounds
    clients = 20 if args.clients is None else args.clients
    model = args.model or "logreg"
    with _executor(args) as executor:
        print(
            f"{args.mode} on {dataset} ({data.X_train.shape[0]} training rows), "
            f"{model}, {clients} clients, {rounds} rounds, "
            f"executor: {args.executor}"
        )
        t0 = time.perf_counter()
        try:
            result = sim.run_simulation(
                data,
                model=model,
                clients=clients,
                alpha=args.alpha,
                rounds=rounds,
                fraction=0.5 if args.fraction is None else args.fraction,
                dp_sgd=dp_sgd,
                aggregator=aggregator,
                seed=args.seed,
                executor=executor,
                progress=False if args.quiet else None,
            )
        except (ImportError, TypeError, ValueError) as e:  # e.g. no TenSEAL, a bad setting
            raise _CommandError(f"ppml-fast simulate: {e}") from None
        elapsed = time.perf_counter() - t0
    print(result.table(markdown=args.markdown))
    last = result.history[-1]
    eps = "" if last.epsilon is None else f", epsilon {last.epsilon:.3f} (delta {args.delta:g})"
    print(f"final test accuracy {last.test_accuracy:.4f}{eps}; {elapsed:.2f} s")
    if args.plot:
        sim.plot(result, args.plot)
    return 0


def _simulate_split(args: argparse.Namespace) -> int:
    import time

    from . import simulation as sim

    dataset = args.dataset or "breast-cancer"
    data = sim.load_dataset(dataset)
    kwargs: dict[str, Any] = {
        "split": args.split,
        "model": args.model or "mlp",
        "cut": args.cut,
        "activation_noise": args.activation_noise,
        "clip": args.clip if args.activation_noise is not None else None,
        "nopeek": args.nopeek,
        "label_dp": args.label_dp,
        "gradient_noise": args.gradient_noise,
        "leakage": args.leakage or bool(args.plot),
        "delta": args.delta,
        "seed": args.seed,
        "progress": False if args.quiet else None,
    }
    for name in ("rounds", "clients", "fraction"):
        if getattr(args, name) is not None:
            kwargs[name] = getattr(args, name)
    with _executor(args) as executor:
        print(
            f"split learning ({args.split}) on {dataset} ({data.X_train.shape[0]} training "
            f"rows), {kwargs['model']} cut after layer {args.cut}, executor: {args.executor}"
        )
        t0 = time.perf_counter()
        try:
            result = sim.run_split_simulation(data, executor=executor, **kwargs)
        except (TypeError, ValueError) as e:
            raise _CommandError(f"ppml-fast simulate: {e}") from None
        elapsed = time.perf_counter() - t0
    print(result.table(markdown=args.markdown))
    last = result.history[-1]
    print(f"final test accuracy {last.test_accuracy:.4f}; {elapsed:.2f} s")
    if args.plot:
        sim.plot_split(result, args.plot)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ppml-fast", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bench", help="run the quick benchmark suite and print a table")
    b.add_argument("--full", action="store_true", help="also run the large sizes")
    b.add_argument("--markdown", action="store_true", help="print BENCHMARKS.md")
    b.add_argument(
        "--filter", default="", help="only the cases of this area or whose operation has this text"
    )
    b.add_argument(
        "--list",
        action="store_true",
        help="list the cases (area, operation, size, implementations) without timing them",
    )
    b.add_argument(
        "--json",
        default=None,
        metavar="FILE",
        help="also write the results to FILE in pytest-benchmark's JSON layout",
    )
    b.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    b.add_argument(
        "--isa",
        default=None,
        choices=("generic", "avx2", "avx512", "all"),
        help="run at this ISA level (at most the CPU's), numpy and torch forced to it too; "
        "all: once per level the CPU has",
    )
    b.add_argument(
        "--comparison",
        action="store_true",
        help="one round under FedAvg, DP-FedAvg, SecAgg+, packed Paillier and CKKS: times, "
        "bytes, what the server learns, error (20 clients x 10^4; --full: 100 x 10^5)",
    )
    b.add_argument("--section", default=None, help=argparse.SUPPRESS)
    b.set_defaults(func=_bench_cmd)
    sim_p = sub.add_parser(
        "simulate", help="run a federated- or split-learning simulation, print its rounds"
    )
    sim_p.add_argument(
        "--mode",
        choices=_MODES,
        default="fedavg",
        help="aggregation (dp-sgd: FedAvg of DP-SGD clients); default fedavg",
    )
    sim_p.add_argument("--rounds", type=int, default=None, help="default 10 (--split: 5)")
    sim_p.add_argument("--clients", type=int, default=None, help="default 20 (--split: 4)")
    sim_p.add_argument(
        "--fraction",
        type=float,
        default=None,
        help="clients sampled per round: default 0.5 (--split splitfed: 1.0)",
    )
    sim_p.add_argument(
        "--alpha",
        type=float,
        default=None,
        help="Dirichlet(alpha) label skew across clients (default: IID)",
    )
    sim_p.add_argument(
        "--dataset",
        choices=("digits", "breast-cancer"),
        default=None,
        help="default digits (--split: breast-cancer, binary, for the label-leakage attack)",
    )
    sim_p.add_argument(
        "--model", choices=("logreg", "mlp"), default=None, help="default logreg (--split: mlp)"
    )
    sim_p.add_argument(
        "--dropout",
        type=float,
        default=0.0,
        help="client dropout rate per round (secagg and secagg+ only)",
    )
    sim_p.add_argument(
        "--dp-sgd",
        action="store_true",
        help="train clients with DP-SGD under any mode but dp-fedavg",
    )
    sim_p.add_argument(
        "--symmetric",
        action="store_true",
        help="--mode ckks: the clients hold the secret key (seeded ciphertexts, half the bytes)",
    )
    sim_p.add_argument("--noise-multiplier", type=float, default=1.0, help="DP noise multiplier")
    sim_p.add_argument(
        "--clip",
        type=float,
        default=1.0,
        help="DP clipping norm (--split: the cut-layer activations' per-example bound)",
    )
    sim_p.add_argument("--delta", type=float, default=1e-5, help="DP delta for the epsilon column")
    sim_p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="master seed (reproducible, DP noise included: for experiments only)",
    )
    sim_p.add_argument("--executor", choices=("threads", "dask"), default="threads")
    sim_p.add_argument(
        "--dask-address", default=None, help="a Dask scheduler to use (default: a local cluster)"
    )
    sim_p.add_argument("--workers", type=int, default=2, help="local Dask cluster size")
    sim_p.add_argument("--plot", default=None, help="save accuracy/epsilon plots to this file")
    sim_p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    sim_p.add_argument("--quiet", action="store_true", help="no progress bar")
    split_g = sim_p.add_argument_group(
        "split learning", "--split runs split learning instead of federated averaging"
    )
    split_g.add_argument(
        "--split",
        choices=("horizontal", "u-shaped", "splitfed", "vertical"),
        default=None,
        help="SplitNN with label sharing, U-shaped SplitNN, SplitFed, or vertical",
    )
    split_g.add_argument(
        "--cut", type=int, default=1, help="the clients hold the first CUT layers (default 1)"
    )
    split_g.add_argument(
        "--activation-noise",
        type=float,
        default=None,
        metavar="SIGMA",
        help="DP on the cut layer: clip activations to --clip, add N(0, (SIGMA clip)^2)",
    )
    split_g.add_argument(
        "--nopeek",
        type=float,
        default=None,
        metavar="WEIGHT",
        help="NoPeek distance-correlation weight",
    )
    split_g.add_argument(
        "--label-dp",
        type=float,
        default=None,
        metavar="EPS",
        help="randomized response with a prior on the labels sent (horizontal, splitfed)",
    )
    split_g.add_argument(
        "--gradient-noise",
        type=float,
        default=None,
        metavar="SIGMA",
        help="perturb the gradients the label holder returns (noise multiplier)",
    )
    split_g.add_argument(
        "--leakage",
        action="store_true",
        help="measure the norm-attack AUC and activation distance correlation per round",
    )
    sim_p.set_defaults(func=_simulate_cmd)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what `--isa` reruns
    if args.command == "simulate" and args.split is not None:
        fl_only = [
            flag
            for flag, given in (
                ("--mode", args.mode != "fedavg"),
                ("--dp-sgd", args.dp_sgd),
                ("--dropout", bool(args.dropout)),
                ("--alpha", args.alpha is not None),
                ("--symmetric", args.symmetric),
            )
            if given
        ]
        if fl_only:
            parser.error(f"{', '.join(fl_only)} cannot be combined with --split")
    elif args.command == "simulate":
        split_only = [
            flag
            for flag, given in (
                ("--cut", args.cut != 1),
                ("--activation-noise", args.activation_noise is not None),
                ("--nopeek", args.nopeek is not None),
                ("--label-dp", args.label_dp is not None),
                ("--gradient-noise", args.gradient_noise is not None),
                ("--leakage", args.leakage),
            )
            if given
        ]
        if split_only:
            parser.error(f"{', '.join(split_only)} need --split")
    if args.command == "simulate" and args.dropout and not args.mode.startswith("secagg"):
        parser.error("--dropout applies to --mode secagg and secagg+ only")
    if args.command == "simulate" and args.symmetric and args.mode != "ckks":
        parser.error("--symmetric applies to --mode ckks only")
    if args.command == "simulate" and args.dp_sgd and args.mode == "dp-fedavg":
        parser.error("--dp-sgd cannot be combined with --mode dp-fedavg (one DP level)")
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
