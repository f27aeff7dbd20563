"""Issue #27: how code from outside ehrmind plugs in — task families (`--task pkg.module:Class`, the
`ehrmind.tasks` entry points), backends and commands — checked in process (the command-line runs of an
installed package are in test_fourth_task.py), and the errors a broken plug-in gives."""

from __future__ import annotations

import logging
import shutil
from types import SimpleNamespace

import pytest

from ehrmind.errors import ConfigError, DataError
from ehrmind.registry import UnknownTask, get_task, load_entry_points, task_class


class _EntryPoint:
    """What `importlib.metadata.entry_points` yields, with a `load` of our choosing."""

    def __init__(self, name: str, value: str, load, dist: str = "some-dist"):
        self.name, self.value, self._load, self.dist = name, value, load, SimpleNamespace(name=dist)

    def load(self):
        return self._load()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module.task:Task", "cannot import task 'no_such_module.task:Task' (ModuleNotFoundError"),
        ("example_family.task:Nope", "cannot import task 'example_family.task:Nope' (AttributeError"),
        ("ehrmind.types:Example", "'ehrmind.types:Example' is not a Task class"),
    ],
)
def test_a_task_by_import_path_that_is_not_one_is_named(spec, message):
    with pytest.raises(UnknownTask) as e:
        task_class(spec)
    assert message in str(e.value)


def test_a_task_by_import_path_is_the_registered_class():
    from example_family.task import BmiTask

    assert task_class("example_family.task:BmiTask") is BmiTask
    assert isinstance(get_task("example_family.task:BmiTask"), BmiTask)


def test_entry_points_load_and_a_broken_one_names_its_package(monkeypatch):
    import importlib.metadata

    loaded = []
    good = _EntryPoint("good", "pkg.good", lambda: loaded.append("good"))
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [good] if group == "g" else [])
    load_entry_points("g", "task")
    assert loaded == ["good"]

    def fail():
        raise ImportError("no module named pkg.bad")

    bad = _EntryPoint("bad", "pkg.bad", fail, dist="bad-dist")
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [good, bad])
    with pytest.raises(ConfigError) as e:
        load_entry_points("g", "backend")
    assert str(e.value) == (
        "backend entry point 'bad' = 'pkg.bad' of package bad-dist failed to load: ImportError: no module named "
        "pkg.bad"
    )


def test_a_family_command_that_fails_to_load_leaves_the_others(monkeypatch, caplog):
    import importlib.metadata

    import ehrmind.cli as cli

    def fail():
        raise RuntimeError("broken plug-in")

    eps = [
        _EntryPoint("eval", "pkg:eval", fail),  # a built-in name is never replaced (not even loaded)
        _EntryPoint("broken-cmd", "pkg:cmd", fail),
    ]
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: eps)
    before = len(cli.app.registered_commands)
    with caplog.at_level(logging.WARNING, logger="ehrmind.cli"):
        cli._family_commands()
    assert len(cli.app.registered_commands) == before
    assert "command broken-cmd (pkg:cmd) not loaded: broken plug-in" in caplog.text
    assert "eval" not in caplog.text


def test_the_families_commands_come_from_entry_points():
    from typer.testing import CliRunner

    from ehrmind.cli import app

    out = CliRunner().invoke(app, ["ehrshot-train-data", "--help"], terminal_width=200).output
    assert "--labeler" in out and "--per-label" in out


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: root / "absent", "model folder not found"),
        (lambda root: root, r"is not a model folder \(no config.json\)"),
    ],
)
def test_loading_a_model_that_is_not_there_is_a_clear_error(tmp_path, make, message):
    from ehrmind.models import load_pretrained

    with pytest.raises(ConfigError, match=message):
        load_pretrained(str(make(tmp_path)), "float32")


def test_a_folder_in_the_hub_layout_loads_and_one_that_is_not_is_named(tmp_path, synthetic_csv):
    task = get_task("medcalc")
    hub = tmp_path / "hub"
    hub.mkdir()
    shutil.copy(synthetic_csv, hub / "test.csv")  # a downloaded dataset: its split named by the file
    examples = task.load(hub, split="test")
    assert examples and examples[0].task == "medcalc"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="neither an `ehrmind data` snapshot nor in a Hugging Face dataset"):
        task.load(empty)
