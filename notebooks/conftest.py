"""pytest in notebooks/: nbval runs the .ipynb files; the .py files are their text sources, not tests.

When a cell fails (missing data, say), nbval would go on running the notebook's later cells in
the same kernel, and each would fail again with a NameError for what the failed cell did not
define. Here the rest of that notebook is skipped instead, so the report shows the one failure.
"""

import pytest

collect_ignore_glob = ["[0-9][0-9]_*.py"]  # Jupytext sources, paired with the .ipynb nbval runs

_failed = {}  # notebook path -> name of its first failed cell


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    notebook = str(item.fspath)
    if notebook.endswith(".ipynb") and report.failed and notebook not in _failed:
        _failed[notebook] = item.name


def pytest_runtest_setup(item):
    notebook = str(item.fspath)
    if notebook.endswith(".ipynb") and notebook in _failed:
        pytest.skip(f"{_failed[notebook]} of this notebook failed; its later cells would fail on what it did not define")
