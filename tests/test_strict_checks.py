"""The suite's strictness (tests/strict_checks.py) run on small tests of its own, in a pytest of their
own: a WARNING logged by a test fails it and lists the record, unless the test says it expects it."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.fixture
def inner(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(HERE))

    def run(source: str, *args: str, **modules: str):
        pytester.makepyfile(test_it=source, **modules)
        return pytester.runpytest_subprocess("-p", "strict_checks", "-p", "no:cacheprovider", "-p", "no:randomly",
                                             *args)
    return run


LOGS = """
import logging
import pytest

log = logging.getLogger("pos_app.somewhere")

def test_info():
    log.info("all is well")

def test_warning():
    log.warning("the store was damaged")

@pytest.mark.allow_log_warnings
def test_any_allowed():
    log.error("whatever")

@pytest.mark.allow_log_warnings("^the store was damaged$")
def test_the_expected_one():
    log.warning("the store was damaged")

@pytest.mark.allow_log_warnings("^the store was damaged$")
def test_another_than_expected():
    log.warning("the store was damaged")
    log.warning("the disk is full")

def test_cleared_after_asserting(caplog):
    log.warning("the store was damaged")
    assert [r.getMessage() for r in caplog.records] == ["the store was damaged"]
    caplog.clear()
"""


def test_a_warning_fails_the_test_that_logged_it_unless_the_test_expects_it(inner):
    result = inner(LOGS, "-ra", "--strict-markers", "-o",
                   "markers=allow_log_warnings(*patterns): expected warnings")
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] == 6 and outcomes["errors"] == 2, result.stdout.str()
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_warning*",
        "*WARNING pos_app.somewhere (test_it.py:*): the store was damaged*",
    ])
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_another_than_expected*",
                                 "*WARNING pos_app.somewhere (test_it.py:*): the disk is full*"])
    errors = [line for line in result.stdout.lines if line.startswith("ERROR test_it.py::")]
    assert sorted(line.split("::")[1].split()[0] for line in errors) == ["test_another_than_expected",
                                                                          "test_warning"]


def test_markers_follow_from_fixtures_and_modules(inner):
    window = """
def test_with_qtbot(qtbot):
    pass

def test_without():
    pass
"""
    result = inner(window, "-m", "gui", "--collect-only", "-q",
                   test_gui_thing="def test_in_a_window_module():\n    pass\n",
                   test_wheel="def test_in_a_slow_module():\n    pass\n")
    assert sorted(line for line in result.stdout.lines if "::" in line) == [
        "test_gui_thing.py::test_in_a_window_module", "test_it.py::test_with_qtbot"]
    result = inner(window, "-m", "slow", "--collect-only", "-q",
                   test_gui_thing="def test_in_a_window_module():\n    pass\n",
                   test_wheel="def test_in_a_slow_module():\n    pass\n")
    assert [line for line in result.stdout.lines if "::" in line] == ["test_wheel.py::test_in_a_slow_module"]
