"""The README's examples run as tests, and so do the docstring examples of the public
modules.

Every fenced ```python block of README.md is executed, in order, in one namespace shared
by the blocks (a later block may build on an earlier one); blocks are found by parsing the
file at test time, so an added block is tested without editing this file. A block that
imports an optional peer (torch, opacus, flwr) is skipped when the peer is missing. Then
the values the README's comments state are checked against the namespace the blocks left
behind (the figures that depend on the machine or on noise, within the stated accuracy).
"""

from __future__ import annotations

import doctest
import importlib
import math
import pkgutil
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import ppml_fast

README = Path(__file__).resolve().parents[1] / "README.md"
OPTIONAL_PEERS = ("torch", "opacus", "flwr")

pytestmark = pytest.mark.filterwarnings("ignore::ppml_fast.InsecureRandomnessWarning")


def python_blocks(text: str) -> list[str]:
    """The bodies of the fenced code blocks whose info string is ``python``."""
    return re.findall(r"^```python[ \t]*\n(.*?)^```[ \t]*$", text, flags=re.M | re.S)


def _needs_missing_peer(block: str) -> str | None:
    if re.search(r"^\s*from\s+ppml_fast\s+import\s+.*\bckks\b", block, flags=re.M):
        try:
            importlib.import_module("tenseal")  # the ckks extra
        except ImportError:
            return "tenseal"
    for peer in OPTIONAL_PEERS:
        if re.search(rf"^\s*(import|from)\s+{peer}\b", block, flags=re.M):
            try:
                importlib.import_module(peer)
            except ImportError:
                return peer
    return None


def test_readme_has_python_blocks():
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    assert blocks, "README.md has no ```python block"
    # the parser sees the block boundaries: no fence left inside a body
    assert all("```" not in b for b in blocks)


def test_block_parser():
    text = "x\n```python\na = 1\n```\n```bash\nls\n```\n```python\nb = a\n```\n"
    assert python_blocks(text) == ["a = 1\n", "b = a\n"]


@pytest.fixture(scope="module")
def readme_namespace():
    """Runs every python block of README.md in order in one namespace and returns it."""
    ns: dict[str, object] = {"__name__": "__readme__"}
    skipped: list[str] = []
    for i, block in enumerate(python_blocks(README.read_text(encoding="utf-8"))):
        peer = _needs_missing_peer(block)
        if peer is not None:
            # only this block: the others (the main example first) still run and are checked
            skipped.append(f"README block {i} needs {peer}, which is not installed")
            continue
        code = compile(block, f"README.md python block {i}", "exec")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ppml_fast.InsecureRandomnessWarning)
            exec(code, ns)  # the README's own example code
    ns["__skipped__"] = skipped
    return ns


def test_readme_examples_run(readme_namespace):
    assert "np" in readme_namespace  # the first block ran to its end


def test_readme_example_values(readme_namespace):
    """The values the README's comments state, checked on what the example computed."""
    ns = readme_namespace
    # noise / mechanisms / stats
    assert ns["x"].shape == (10**6,) and ns["x"].dtype == np.float64
    # Laplace(2) has sd 2√2; the sample sd of 10^6 draws (secure stream) has a standard
    # error of 2√2·√(5/(4·10^6)) ~ 0.0032, so 0.02 is > 6 standard errors (~1e-9 false alarm)
    assert abs(float(np.std(ns["x"])) - 2.0 * math.sqrt(2.0)) < 0.02
    assert ns["z"].dtype == np.int64 and ns["z"].shape == (1000,)
    assert 0 <= ns["mean_age"] <= 100  # clipped to the bounds
    # the noise of ε = 1 on 10,000 records in [0, 100] is Laplace of scale ~0.01 on the
    # mean (sum: 2·50/ε, over n): 0.5 is 50 scales (false alarm e^-50)
    assert abs(ns["mean_age"] - ns["ages"].mean()) < 0.5
    # accounting: "5.632", "~5.18 <= 5.193 <= ~5.20", "0.9173583984375, as Opacus" -- our
    # deterministic values, each >= 3e-4 from a rounding boundary, while a CPU or a
    # numpy/scipy release moves them by ~1e-9 (see test_accounting_prv); σ is compared
    # loosely (the bit-for-bit match with Opacus is test_accounting_calibration's)
    assert round(ns["eps"], 3) == 5.632 and ns["order"] in ns["acc"].DEFAULT_ALPHAS
    assert round(ns["low"], 2) == 5.18 and round(ns["est"], 3) == 5.193
    assert round(ns["high"], 2) == 5.20
    assert abs(ns["sigma"] - 0.9173583984375) < 1e-3
    assert ns["budget"].spent[0] == 0.5
    # clipping: the (10_000,) float32 noisy mean, and the accountant's step
    assert ns["update"].shape == (10_000,) and ns["update"].dtype == np.float32
    assert ns["accountant"].history == [(1.1, 0.01, 1)]
    assert [c.shape for c in ns["clipped"]] == [(8, 3, 4), (8, 5)]
    flat = np.sqrt(sum((c.reshape(8, -1) ** 2).sum(1) for c in ns["clipped"]))
    np.testing.assert_allclose(flat, 1.0, rtol=1e-12)  # flat norm across both layers
    # sharing: any 3 of the 5 shares reconstruct; the private step equals the plaintext one
    np.testing.assert_array_equal(ns["secret"], np.arange(5, dtype=np.uint64))
    xf, yf = ns["Xf"], ns["yf"]
    w_plain = -xf.T @ (0.5 - yf) * (0.5 / len(yf))
    np.testing.assert_allclose(ns["w"].reveal(), w_plain, atol=1e-3)  # fixed point
    # paillier: "[11.75 14.  ] 2.25", a drop-in number and a serialised round trip
    priv = ns["priv"]
    np.testing.assert_array_equal(priv.decrypt_batch(ns["grad"]), [11.75, 14.0])
    assert priv.decrypt(ns["enc"].sum()) == 2.25
    assert priv.decrypt(ns["one"]) == 6.0
    np.testing.assert_array_equal(priv.decrypt_batch(ns["back"]), [5.0, -12.5, 30.0])
    # aggregation: weighted mean, Krum's pick, the exact secure sum ("< 1e-3")
    u = ns["updates"]
    wts = np.arange(1, 51)
    np.testing.assert_allclose(ns["avg"], (wts[:, None] * u).sum(0) / wts.sum(), rtol=1e-12)
    res = ns["res"]
    assert np.abs(res.sum - u[res.survivors].sum(0)).max() < 1e-3
    assert 0 < res.survivors.size <= 50


def test_readme_split_example_values(readme_namespace):
    """The torch split-learning block: trained with DP on the cut layer, ε as stated."""
    ns = readme_namespace
    if "split_acc" not in ns:
        pytest.skip("; ".join(ns["__skipped__"]) or "no split-learning block ran")
    # "~0.98": 12 seeds of torch's init and data gave 0.984-0.992 with fresh secure noise
    # (the spread is ~0.003), so 0.95 is > 10 spreads below the lowest
    assert ns["split_acc"] > 0.95
    # "~3.98": deterministic (σ = 1, q = 1/32, 300 steps, δ = 1e-5); checked loosely, and
    # against a fresh accountant fed the same events
    assert round(ns["cut_eps"], 2) == 3.98
    fresh = ns["acc"].RDPAccountant()
    fresh.history = [(1.0, 128 / 4096, 300)]
    assert abs(fresh.get_epsilon(1e-5) - ns["cut_eps"]) < 1e-9
    sent = ns["sent"]
    assert sent.values.shape == (128, 8) and sent.noise_std == 2.0


def test_readme_blocks_not_skipped_when_peers_are_installed(readme_namespace):
    """A block is skipped only for a peer that is really missing."""
    for reason in readme_namespace["__skipped__"]:
        peer = reason.split(" needs ")[1].split(",")[0]
        with pytest.raises(ImportError):
            importlib.import_module(peer)


# --- docstring examples -----------------------------------------------------------------


def _public_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(ppml_fast.__path__, "ppml_fast."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts[1:]):
            continue  # private modules and the native kernels
        names.append(info.name)
    return ["ppml_fast", *names]


@pytest.mark.parametrize("name", _public_modules())
def test_docstring_examples(name):
    module = importlib.import_module(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ppml_fast.InsecureRandomnessWarning)
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"


def test_docstring_examples_are_found():
    """The doctest run above is not vacuous: the public modules have examples."""
    attempted = 0
    for name in _public_modules():
        finder = doctest.DocTestFinder()
        module = importlib.import_module(name)
        attempted += sum(len(t.examples) for t in finder.find(module))
    assert attempted >= 5


def test_readme_ckks_blocks(readme_namespace):
    """The CKKS blocks: encrypted FedAvg within its precision, and 2·x + 1."""
    ns = readme_namespace
    if "server_ctx" not in ns:
        pytest.skip("; ".join(ns["__skipped__"]) or "no CKKS block ran")
    import numpy as np

    assert not ns["server_ctx"].is_private()
    assert np.abs(ns["avg_w"] - ns["want_w"]).max() < 1e-6
    want_b = sum(n * u[1] for u, n in zip(ns["ck_layers"], ns["ck_sizes"], strict=True))
    assert np.abs(ns["avg_b"] - want_b / ns["ck_sizes"].sum()).max() < 1e-6
    np.testing.assert_allclose((2 * ns["enc_x"] + 1).decrypt(), [1, 3, 5, 7, 9], atol=1e-6)
