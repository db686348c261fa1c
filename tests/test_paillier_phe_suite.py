"""python-paillier's own test suite, run against ``ppml_fast.paillier``.

The installed ``phe/tests/paillier_test.py`` is read at run time (nothing of it is copied
into this repository), its imports of ``phe.paillier`` / ``phe.encoding`` are pointed at
``ppml_fast.paillier``, and every unittest case in it must pass. This is the drop-in
promise: a user changes the import and their tests keep working. Skipped when phe (or its
tests) is not installed.
"""

from __future__ import annotations

import importlib.util
import io
import pathlib
import re
import types
import unittest

import pytest

phe = pytest.importorskip("phe")

_SUITE = pathlib.Path(phe.__file__).parent / "tests" / "paillier_test.py"


def _load(variant: str) -> types.ModuleType:
    src = _SUITE.read_text()
    src = re.sub(r"^from phe import paillier$", "from ppml_fast import paillier", src, flags=re.M)
    src = re.sub(r"^from phe\.paillier import", "from ppml_fast.paillier import", src, flags=re.M)
    if variant == "our-encoding":
        src = re.sub(
            r"^import phe\.encoding$", "import ppml_fast.paillier as _ours", src, flags=re.M
        )
        src = src.replace("phe.encoding.", "_ours.")
    assert "from ppml_fast import paillier" in src
    mod = types.ModuleType(f"phe_suite_{variant.replace('-', '_')}")
    exec(compile(src, str(_SUITE), "exec"), mod.__dict__)
    return mod


@pytest.mark.skipif(not _SUITE.exists(), reason="phe's tests are not installed")
@pytest.mark.parametrize("variant", ["phe-encoding", "our-encoding"])
def test_python_paillier_suite_passes(variant):
    """Every case of phe's paillier_test.py, with phe's EncodedNumber (duck-typed by us)
    or with ours."""
    assert importlib.util.find_spec("ppml_fast.paillier") is not None
    mod = _load(variant)
    suite = unittest.defaultTestLoader.loadTestsFromModule(mod)
    assert suite.countTestCases() > 150
    stream = io.StringIO()
    result = unittest.TextTestRunner(stream=stream, verbosity=0).run(suite)
    assert result.wasSuccessful(), stream.getvalue()[-5000:]
    assert not result.skipped
