"""The grader imports no JAX and fails loudly on an untested sympy."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(code, **env):
    e = dict(os.environ, PYTHONPATH=ROOT, **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e, timeout=120)


def test_grader_imports_no_jax_and_no_other_subpackages():
    code = (
        "import sys\n"
        "from mathjax import grader\n"
        "assert grader.is_equiv('1/2', '0.5')\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('jax', 'jaxlib', 'flax', 'torch', 'transformers')]\n"
        "bad += [m for m in sys.modules if m.startswith('mathjax.') and not m.startswith('mathjax.grader')]\n"
        "assert not bad, bad\n"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr


def test_untested_sympy_version_fails_at_import():
    code = (
        "import sympy\n"
        "sympy.__version__ = '9.9.0'\n"
        "try:\n"
        "    import mathjax.grader\n"
        "except ImportError as e:\n"
        "    print('REFUSED', e)\n"
    )
    proc = _run(code)
    assert "REFUSED" in proc.stdout and "sympy" in proc.stdout, proc.stdout + proc.stderr
    proc = _run(code, MATHJAX_GRADER_ALLOW_UNTESTED_SYMPY="1")
    assert "REFUSED" not in proc.stdout, proc.stdout + proc.stderr


def test_self_test_catches_a_broken_parser(monkeypatch):
    from mathjax.grader import equiv, selftest, symbolic

    monkeypatch.setattr(selftest, "compare", lambda a, b: equiv.Verdict.NOT_EQUAL)
    with pytest.raises(symbolic.GraderDependencyError):
        selftest.run_self_test()


def test_public_api_signatures():
    import inspect

    from mathjax import grader

    assert list(inspect.signature(grader.extract_answer).parameters)[0] == "text"
    assert list(inspect.signature(grader.is_equiv).parameters)[:2] == ["pred_answer", "gold_answer"]
    assert list(inspect.signature(grader.grade).parameters)[:2] == ["text", "gold_answer"]
    for name in ("grade_samples", "majority_answer", "write_report", "check_arithmetic", "has_arithmetic_slip"):
        assert callable(getattr(grader, name)) and getattr(grader, name).__doc__
