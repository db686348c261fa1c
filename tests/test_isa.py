"""ISA levels: the CPU's best level by default, lowered by PPML_FAST_ISA or set_isa/isa(),
never raised; every extension with variants runs at the level asked for; clear errors.

The kernels' results at each level are checked in their areas' tests (parametrised over
``available_isas()``); `.ci/run` also runs the kernel test files once per level.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest

import ppml_fast
from ppml_fast import cli
from ppml_fast._native import LEVELS, cpu_level

# The extensions that have per-level variants; each keeps its own copy of the level.
VARIANT_MODULES = ["sharing", "clipping", "aggregation_secure", "paillier"]


def _kernels(name):
    return importlib.import_module(f"ppml_fast._native.{name}")


def _child(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "PPML_FAST_ISA"}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=120
    )


def test_default_is_the_cpus_best_level_unless_the_environment_lowers_it():
    levels = ppml_fast.available_isas()
    assert levels == LEVELS[: len(levels)] and levels[0] == "generic"
    assert levels[-1] == LEVELS[cpu_level()]
    env = os.environ.get("PPML_FAST_ISA")
    assert ppml_fast.get_isa() == (env.strip().lower() if env else levels[-1])


@pytest.mark.parametrize("level", ppml_fast.available_isas())
def test_every_extension_runs_at_the_level_set(level):
    with ppml_fast.isa(level):
        assert ppml_fast.get_isa() == level
        for name in VARIANT_MODULES:
            assert _kernels(name)._get_isa() == LEVELS.index(level), name


def test_context_manager_restores_the_level_on_error():
    before = ppml_fast.get_isa()
    with pytest.raises(RuntimeError), ppml_fast.isa("generic"):
        assert _kernels("sharing")._get_isa() == 0
        raise RuntimeError
    assert ppml_fast.get_isa() == before
    assert _kernels("sharing")._get_isa() == LEVELS.index(before)


@pytest.mark.parametrize("bad", [1, None, b"avx2", ["avx2"]])
def test_set_isa_rejects_non_strings(bad):
    before = ppml_fast.get_isa()
    with pytest.raises(TypeError, match="isa must be a str"):
        ppml_fast.set_isa(bad)
    assert ppml_fast.get_isa() == before


@pytest.mark.parametrize("bad", ["", "sse2", "avx", "AVX-512", "native"])
def test_set_isa_rejects_unknown_levels(bad):
    before = ppml_fast.get_isa()
    with pytest.raises(ValueError, match="isa must be one of generic, avx2, avx512"):
        ppml_fast.set_isa(bad)
    assert ppml_fast.get_isa() == before


def test_set_isa_accepts_case_and_spaces():
    with ppml_fast.isa(" GENERIC "):
        assert ppml_fast.get_isa() == "generic"


def test_a_level_above_the_cpu_is_refused():
    above = LEVELS[cpu_level() + 1 :]
    if not above:
        pytest.skip("this CPU runs every level")
    before = ppml_fast.get_isa()
    for level in above:
        with pytest.raises(ValueError, match="asks for more than this CPU supports"):
            ppml_fast.set_isa(level)
    assert ppml_fast.get_isa() == before
    res = _child("import ppml_fast.sharing", PPML_FAST_ISA=above[0])
    assert res.returncode != 0
    assert "PPML_FAST_ISA" in res.stderr and "asks for more than this CPU" in res.stderr


@pytest.mark.parametrize("level", ppml_fast.available_isas())
def test_environment_variable_sets_the_level_in_a_new_process(level):
    code = (
        "import ppml_fast, ppml_fast.sharing\n"
        "from ppml_fast._native import sharing, clipping\n"
        "print(ppml_fast.get_isa(), sharing._get_isa(), clipping._get_isa())\n"
    )
    res = _child(code, PPML_FAST_ISA=level)
    assert res.returncode == 0, res.stderr
    idx = str(LEVELS.index(level))
    assert res.stdout.split() == [level, idx, idx]


def test_bad_environment_variable_is_a_clear_error():
    res = _child("import ppml_fast.sharing", PPML_FAST_ISA="fastest")
    assert res.returncode != 0
    assert "PPML_FAST_ISA must be one of generic, avx2, avx512, got 'fastest'" in res.stderr


def test_module_loaded_after_set_isa_runs_at_that_level():
    code = (
        "import ppml_fast\n"
        "ppml_fast.set_isa('generic')\n"
        "from ppml_fast._native import clipping\n"
        "print(clipping._get_isa())\n"
    )
    res = _child(code)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "0"


def test_importing_the_package_does_not_load_a_kernel_or_read_the_cpu():
    res = _child(
        "import sys, ppml_fast\n"
        "print(any(m.startswith('ppml_fast._native.') for m in sys.modules))\n",
        PPML_FAST_ISA="not-a-level",  # not read before a kernel loads
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"


def test_bench_machine_line_names_the_levels():
    line = cli.isa_line()
    assert f"ppml_fast ISA {ppml_fast.get_isa()}" in line
    assert f"CPU up to {ppml_fast.available_isas()[-1]}" in line
    assert "numpy dispatch" in line


@pytest.mark.parametrize("level", LEVELS)
def test_peer_environment_forces_numpy_and_torch_to_the_level(level):
    env = cli.peer_env(level)
    assert env["PPML_FAST_ISA"] == level
    assert env["ATEN_CPU_CAPABILITY"] == {"generic": "default"}.get(level, level)
    disabled = env.get("NPY_DISABLE_CPU_FEATURES", "").split()
    if level == "avx512":
        assert not disabled
    else:
        assert "X86_V4" in disabled and ("X86_V3" in disabled) == (level == "generic")


def test_numpy_honours_the_peer_environment():
    res = _child(
        "from ppml_fast import cli\nprint(cli._numpy_level())\n",
        **cli.peer_env("generic"),
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "baseline"


def test_bench_refuses_a_level_above_the_cpu(capsys):
    above = LEVELS[cpu_level() + 1 :]
    if not above:
        pytest.skip("this CPU runs every level")
    assert cli.main(["bench", "--isa", above[0]]) == 2
    assert "asks for more than this CPU supports" in capsys.readouterr().err


def test_without_isa_drops_both_spellings():
    argv = ["bench", "--isa", "avx2", "--full", "--isa=generic", "--filter", "x"]
    assert cli._without_isa(argv) == ["bench", "--full", "--filter", "x"]


ALL_ARGS = ["--isa", "all", "--filter", "mul mod 2^61-1"]


def test_bench_all_levels_writes_one_section_per_level():
    res = subprocess.run(
        [sys.executable, "-m", "ppml_fast.cli", "bench", "--markdown", "--quiet", *ALL_ARGS],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    levels = list(reversed(ppml_fast.available_isas()))
    heads = [line for line in res.stdout.splitlines() if line.startswith("## ISA level")]
    assert heads == [f"## ISA level {lv}" for lv in levels]
    for lv in levels:
        assert f"ppml_fast ISA {lv} (" in res.stdout
    assert res.stdout.count("### sharing") == len(levels)


def test_child_env_drops_an_inherited_numpy_mask_where_the_level_sets_none(monkeypatch):
    monkeypatch.setenv("NPY_DISABLE_CPU_FEATURES", "X86_V3")
    assert "NPY_DISABLE_CPU_FEATURES" not in cli._child_env("avx512")
    assert (
        cli._child_env("generic")["NPY_DISABLE_CPU_FEATURES"]
        == cli.peer_env("generic")["NPY_DISABLE_CPU_FEATURES"]
    )


def test_bench_isa_reruns_the_arguments_main_was_given(capfd):
    """main(argv) from Python reruns argv (not the interpreter's own command line)."""
    assert cli.main(["bench", "--isa", "generic", "--list", "--filter", "mul mod 2^61-1"]) == 0
    listed = capfd.readouterr().out
    assert "mul mod 2^61-1" in listed and "matmul mod 2^64" not in listed
