"""Tasks register by name; a duplicate name raises; unknown names say what exists."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ehrmind import get_task, list_tasks, register_task
from ehrmind.errors import ConfigError
from ehrmind.tasks.medcalc import MedCalcTask


def test_medcalc_is_registered():
    assert "medcalc" in list_tasks()
    assert isinstance(get_task("medcalc"), MedCalcTask)


def test_duplicate_name_raises():
    with pytest.raises(ValueError, match="already registered"):

        @register_task("medcalc")
        class Other(MedCalcTask):
            pass


def test_unknown_task_lists_known():
    with pytest.raises(KeyError, match="medcalc"):
        get_task("no-such-task")


def test_bad_options_fail_early():
    with pytest.raises(ConfigError, match="reasoning"):
        get_task("medcalc", mode="chatty")
    with pytest.raises(ConfigError, match="prefill"):
        get_task("medcalc", mode="direct", prefill=True)


def test_import_is_light():
    # importing the package and loading a task must not pull in torch/transformers/trl
    code = (
        "import sys, ehrmind; ehrmind.get_task('medcalc');"
        "print(','.join(m for m in ('torch', 'transformers', 'trl') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_every_task_scores_through_the_one_verify():
    """Issue #13, item 1: `Task.verify` is the only scoring path; trec_ct and ehrshot overrode it. Tasks
    supply `judge` (and `describe_answer` / `read_unscored`), so no registered task may override `verify`."""
    from ehrmind.tasks.base import Task

    names = [
        n for n in list_tasks() if type(get_task(n)).__module__.startswith("ehrmind.")
    ]  # not test doubles
    assert {"medcalc", "trec_ct", "ehrshot"} <= set(names)
    overriding = [n for n in names if type(get_task(n)).verify is not Task.verify]
    assert overriding == []
    assert getattr(Task.verify, "__final__", False)  # typing.final: a type checker flags an override too
    with pytest.raises(ConfigError):  # an unknown task is a user error (and still a KeyError for lookups)
        get_task("no-such-task")
