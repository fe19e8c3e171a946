"""How strict the suite is, in one plugin (registered in conftest.py): which
tests are `gui` and `slow`, and that a WARNING logged by a test fails it.

Apart from conftest so that tests/test_strict_checks.py can run it on tests of
its own (pytester) and see it fail them.
"""

from __future__ import annotations

import logging
import re

import pytest

# Markers follow from what a test uses or where it lives, so a new test gets
# them without anyone remembering to: `gui` for Qt in this process (pytest-qt's
# qtbot or qapp, also through make_window) and for the window's own modules,
# whose other tests run the window or Qt in a child process; `slow` for the
# modules that start servers, kill processes or build and install a wheel.
GUI_FIXTURES = {"qtbot", "qapp"}
GUI_MODULES = ("test_gui_", "test_demo_window")
SLOW_MODULES = {"test_end_to_end", "test_reliability", "test_pg_reliability", "test_wheel", "test_front",
                "test_restore_resync", "test_restore_reenroll"}


# First, so that `-m gui` / `-m "not slow"` select on these markers too.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.path.stem
        if GUI_FIXTURES & set(getattr(item, "fixturenames", ())) or module.startswith(GUI_MODULES):
            item.add_marker(pytest.mark.gui)
        if module in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def no_unexpected_log_warnings(request, caplog):
    """A WARNING (or worse) logged while the test runs fails it, listing the records.

    The till logs a warning when something went wrong that a person should
    hear of; a test whose scenario is such a thing says so with
    `@pytest.mark.allow_log_warnings("regex", ...)` (the records it expects;
    any, with no pattern). A test that asserts on its records with caplog
    clears them once checked (`caplog.clear()`)."""
    yield
    marker = request.node.get_closest_marker("allow_log_warnings")
    if marker is not None and not marker.args:
        return
    expected = [re.compile(pattern) for pattern in (marker.args if marker else ())]
    unexpected = [record for record in caplog.get_records("call") if record.levelno >= logging.WARNING
                  and not any(pattern.search(record.getMessage()) for pattern in expected)]
    if unexpected:
        pytest.fail("unexpected log records of level WARNING or worse:\n" + "\n".join(
            f"  {r.levelname} {r.name} ({r.filename}:{r.lineno}): {r.getMessage()}" for r in unexpected),
            pytrace=False)
