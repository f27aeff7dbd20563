"""Issue #31: outputs that cannot be written. A full disk (the process's file size limit, `ulimit -f`: its
writes fail with EFBIG exactly where ENOSPC would), a read-only file system (a read-only bind mount in a user
namespace, skipped where one cannot be made), a symbolic link in a run folder, a training output_dir that
is a file: each ends as one `error:` line naming the path, exit code 2, no traceback, the old outputs as they
were and no temporary left; appended files keep complete lines, so the rerun continues."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import pytest
import typer
import yaml
from typer.testing import CliRunner

from ehrmind.cli import app
from ehrmind.cli.common import Commands
from ehrmind.errors import ConfigError
from ehrmind.io import JsonlAppender, WriteError, atomic_write_text

runner = CliRunner()


# ----------------------------------------------------------------------------------------------- helpers


def _limit_file_size(size: int):  # noqa: ANN202 - a preexec_fn
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing

    return apply


def _cli(
    *args: str, file_size: int | None = None, read_only: Path | None = None
) -> subprocess.CompletedProcess:
    """The real `ehrmind` program in a subprocess: with writes past `file_size` bytes failing (EFBIG), or
    with `read_only` mounted read-only (in a user and mount namespace of its own)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "EHRMIND_THREADS": "1"}
    command = [sys.executable, "-m", "ehrmind", *args]
    if read_only is not None:
        mount = f"mount --bind {read_only} {read_only} && mount -o remount,bind,ro {read_only}"
        command = ["unshare", "-rm", "sh", "-c", f'{mount} && exec "$@"', "sh", *command]
    preexec = _limit_file_size(file_size) if file_size is not None else None
    return subprocess.run(command, env=env, capture_output=True, text=True, preexec_fn=preexec, timeout=300)


def _one_error_line(output: str, path: Path, *causes: str, action: str = "write") -> str:
    """The one `error:` line, naming `path` and one of `causes`; no traceback."""
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, output
    assert f"cannot {action} {path}:" in lines[0] and any(c in lines[0] for c in causes), lines[0]
    return lines[0]


def _failed(result: subprocess.CompletedProcess, path: Path, *causes: str) -> str:
    assert result.returncode == 2, result.stderr
    return _one_error_line(result.stderr, path, *causes)


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if p.name.endswith(".tmp")]


@contextlib.contextmanager
def _disk_fills_after(size: int):
    """In this process, writes past `size` bytes fail with EFBIG (the soft limit only: lifted again after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


@pytest.fixture(scope="module")
def read_only_ok(tmp_path_factory) -> None:
    """Skip unless a read-only bind mount can be made here (unshare -rm: user namespaces may be off in CI)."""
    folder = tmp_path_factory.mktemp("probe")
    if shutil.which("unshare") is None:
        pytest.skip("unshare not installed: no read-only mount for the test")
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} "
         f"&& ! touch {folder}/x 2>/dev/null"],
        capture_output=True, text=True,
    )  # fmt: skip
    if probe.returncode != 0:
        pytest.skip(f"cannot make a read-only bind mount here (unshare -rm: {probe.stderr.strip()[:200]})")


# ----------------------------------------------------------------------------------------------- disk full


def test_data_on_a_full_disk_is_one_line_and_keeps_the_old_snapshot(tmp_path, synthetic_csv):
    """Was: `OSError: [Errno 27] File too large` with a traceback (the write names no file)."""
    out = tmp_path / "snap"
    args = ["data", "--task", "medcalc", "--source", str(synthetic_csv), "--out", str(out)]
    assert (ok := runner.invoke(app, args)).exit_code == 0, ok.output
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = _cli(*args, "--seed", "7", file_size=3000)  # examples.jsonl is ~10 KB
    line = _failed(result, out / "examples.jsonl", "File too large")
    assert "free some space" in line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before and not _temporaries(tmp_path)


@pytest.mark.slow  # a child process (about 2-6 s)
def test_export_verl_on_a_full_disk_names_the_output_not_its_temporary(tmp_path, synthetic_csv):
    """export-verl builds its folder beside the output and renames it into place: the error names the output's
    file (…/verl/train.parquet), not the temporary folder, and nothing is left."""
    out = tmp_path / "verl"
    result = _cli(
        "export-verl", "--task", "medcalc", "--data", str(synthetic_csv), "--out", str(out), file_size=2000
    )
    _failed(result, out / "train.parquet", "File too large")
    assert list(tmp_path.iterdir()) == []


def test_appender_keeps_complete_lines_when_the_disk_fills_and_continues_after(tmp_path):
    """A batch that does not fit is cut off again (no torn line), the error names the file, and once there
    is room the same appender... or a new one, as a rerun opens, continues the file."""
    path = tmp_path / "predictions.jsonl"
    first = [{"id": str(i), "text": "x" * 100} for i in range(5)]
    second = [{"id": str(i), "text": "y" * 100} for i in range(5, 20)]
    with JsonlAppender(path) as sink:
        sink.write(first)
        kept = path.read_bytes()
        with _disk_fills_after(len(kept) + 300), pytest.raises(WriteError) as caught:
            sink.write(second)  # ~1.7 KB: the write stops at the limit
    assert str(caught.value).startswith(f"cannot write {path}: File too large")
    assert path.read_bytes() == kept  # complete lines only: the torn batch is gone
    with JsonlAppender(path) as sink:  # the rerun, with room
        sink.write(second)
    assert [r["id"] for r in map(json.loads, path.read_text().splitlines())] == [str(i) for i in range(20)]


@pytest.mark.slow  # a child process (about 2-6 s)
def test_tiny_model_on_a_full_disk_leaves_no_model_folder(tmp_path):
    """The model is saved by safetensors (SafetensorError, not OSError) into a folder that is renamed into
    place only when complete: an error line, and no folder that looks like a model."""
    out = tmp_path / "model"
    with _disk_fills_after(200_000):  # model.safetensors is ~800 KB
        result = runner.invoke(app, ["tiny-model", "--out", str(out)])
    assert result.exit_code == 2, result.output
    _one_error_line(result.output, out, "File too large")
    assert list(tmp_path.iterdir()) == []
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with _disk_fills_after(200_000):
        result = runner.invoke(app, ["tiny-model", "--out", str(out)])
    assert result.exit_code == 2 and [p.name for p in out.iterdir()] == ["notes.txt"]
    assert not _temporaries(tmp_path)


def test_an_oserror_no_writer_named_is_one_line_when_it_is_about_writing(tmp_path):
    """The central handler (`Commands`): an OSError of writing that names a file (here ENOTDIR, a file where
    a folder should be) is one line; any other OSError (a file the code expected is missing) is a bug and
    keeps its traceback."""
    demo = typer.Typer(cls=Commands)
    blocker = tmp_path / "file"
    blocker.write_text("")

    @demo.command()
    def write(missing: bool = False) -> None:
        if missing:
            (tmp_path / "nowhere.txt").read_text()
        (blocker / "out.txt").write_text("x")

    @demo.command()
    def fill(out: Annotated[Path, typer.Option()]) -> None:
        with open(out / "big.bin", "wb") as fh:
            fh.write(b"x" * 100_000)  # an OSError naming no file

    result = runner.invoke(demo, ["write"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    _one_error_line(result.output, blocker / "out.txt", "Not a directory", action="use")  # or read?
    result = runner.invoke(demo, ["write", "--missing"])
    assert isinstance(result.exception, FileNotFoundError)  # a bug: the traceback stays
    with _disk_fills_after(10_000):
        result = runner.invoke(demo, ["fill", "--out", str(tmp_path)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    _one_error_line(result.output, tmp_path, "File too large")  # the file unnamed: the command's --out


# ----------------------------------------------------------------------------------------------- read-only


def test_data_into_a_read_only_folder_is_one_line(tmp_path, synthetic_csv, read_only_ok):
    """Was: `OSError: [Errno 30] Read-only file system` from tempfile.mkstemp, with a traceback."""
    out = tmp_path / "ro"
    out.mkdir()
    (out / "examples.jsonl").write_text("old\n")
    result = _cli(
        "data", "--task", "medcalc", "--source", str(synthetic_csv), "--out", str(out), read_only=out
    )
    line = _failed(result, out / "examples.jsonl", "Read-only file system")
    assert "write somewhere else" in line and (out / "examples.jsonl").read_text() == "old\n"


@pytest.mark.slow  # the same atomic_path as `data` above; ~10 s for the subprocess's imports
def test_import_recipe_onto_a_read_only_folder_is_one_line(tmp_path, read_only_ok):
    flat = tmp_path / "config.yaml"
    flat.write_text(yaml.safe_dump({"model_name_or_path": "m", "dataset_name": "d.csv", "output_dir": "o"}))
    ro = tmp_path / "ro"
    ro.mkdir()
    out = ro / "recipe.yaml"
    result = _cli(
        "import-recipe", str(flat), "--stage", "sft", "--task", "medcalc", "--out", str(out), read_only=ro
    )
    _failed(result, out, "Read-only file system")
    assert list(ro.iterdir()) == []


# ----------------------------------------------------------------------------------------------- run folders


def test_a_symlinked_predictions_file_in_eval_out_is_refused(tmp_path, tiny_model, synthetic_csv):
    """Was: the predictions were appended through the link into the file it points to."""
    other = tmp_path / "precious.jsonl"
    other.write_text("")
    out = tmp_path / "eval"
    out.mkdir()
    (out / "predictions.jsonl").symlink_to(other)
    args = ["eval", "--task", "medcalc", "--data", str(synthetic_csv), "--model", str(tiny_model)]
    result = runner.invoke(app, [*args, "--out", str(out), "--limit", "2", "--max-new-tokens", "4"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and f"{out / 'predictions.jsonl'} is a symbolic link" in lines[0]
    assert other.read_text() == "" and sorted(p.name for p in out.iterdir()) == ["predictions.jsonl"]


def test_writers_refuse_a_symlink_or_a_device(tmp_path):
    """Neither appended through (into the file the link points to) nor replaced (a link such as /dev/stdout,
    a device such as /dev/null, as root): one ConfigError naming the path, the target untouched."""
    other = tmp_path / "other.jsonl"
    other.write_text('{"a": 1}\n')
    link = tmp_path / "rows.jsonl"
    link.symlink_to(other)
    with pytest.raises(ConfigError, match="rows.jsonl is a symbolic link"):
        JsonlAppender(link)
    with pytest.raises(ConfigError, match="rows.jsonl is a symbolic link"):
        atomic_write_text(link, "new")
    assert other.read_text() == '{"a": 1}\n' and link.is_symlink()
    with pytest.raises(ConfigError, match="/dev/null is not a regular file"):
        atomic_write_text("/dev/null", "new")
    assert Path("/dev/null").is_char_device()


def _recipe(tmp_path: Path, stage: str, model: Path, data: Path, out: Path, **trl: object) -> Path:
    body = {
        "stage": stage, "task": "medcalc", "data": str(data), "model": str(model), "output_dir": str(out),
        "trl": {"use_cpu": True, "bf16": False, "fp16": False, "gradient_checkpointing": False, "report_to": "none",
                "max_steps": 2, "per_device_train_batch_size": 2, "max_length": 256, **trl},
    }  # fmt: skip
    if stage == "rl":
        del body["trl"]["max_length"]
        body["trl"].update(num_generations=2, max_completion_length=8)
    path = tmp_path / f"{stage}.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


@pytest.mark.parametrize("stage", ["sft", "rl"])
def test_training_onto_a_file_is_refused_before_the_model_loads(stage, tmp_path, tiny_model, synthetic_csv):
    """Was: the model loaded, then a traceback when the Trainer made its output_dir."""
    out = tmp_path / "out"
    out.write_text("keep me")
    result = runner.invoke(
        app, [stage, "--recipe", str(_recipe(tmp_path, stage, tiny_model, synthetic_csv, out))]
    )
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and f"{out} is a file" in lines[0]
    assert out.read_text() == "keep me"


# ----------------------------------------------------------------------------------------------- slow: resume


@pytest.mark.slow
def test_sft_checkpoint_on_a_full_disk_then_resumes(tmp_path, tiny_model, synthetic_csv):
    """The first checkpoint's optimizer.pt (torch.save: a RuntimeError from its zip writer, not an OSError)
    does not fit: one line naming output_dir; the checkpoint left behind (no trainer_state.json) is skipped
    on the rerun, which trains and saves."""
    out = tmp_path / "sft"
    recipe = _recipe(tmp_path, "sft", tiny_model, synthetic_csv, out, save_steps=1)
    result = _cli(
        "sft", "--recipe", str(recipe), file_size=1_500_000
    )  # the model fits, its optimizer does not
    _failed(result, out, "File too large")
    assert (out / "checkpoint-1").is_dir() and not (out / "checkpoint-1" / "trainer_state.json").exists()
    again = _cli("sft", "--recipe", str(recipe))
    assert again.returncode == 0, again.stderr
    assert "checkpoint-1 is incomplete" in again.stderr
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 2


@pytest.mark.slow
def test_eval_on_a_full_disk_then_resumes_to_the_same_predictions(tmp_path, tiny_model, synthetic_csv):
    args = [
        "eval",
        "--task",
        "medcalc",
        "--data",
        str(synthetic_csv),
        "--model",
        str(tiny_model),
        "--limit",
        "6",
    ]
    args += ["--max-new-tokens", "8", "--batch-size", "3"]
    whole = tmp_path / "whole"
    assert (ok := runner.invoke(app, [*args, "--out", str(whole)])).exit_code == 0, ok.output
    out = tmp_path / "cut"
    result = _cli(*args, "--out", str(out), file_size=1600)  # run.json and 3 rows (~1.1 KB) fit, 6 do not
    _failed(result, out / "predictions.jsonl", "File too large")
    rows = (out / "predictions.jsonl").read_text()
    ids = [json.loads(r)["id"] for r in rows.splitlines()]  # the first batch: 3 prompts of like length
    assert rows.endswith("\n") and len(ids) == 3 and set(ids) < {"1", "2", "3", "4", "5", "6"}
    again = runner.invoke(app, [*args, "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert (out / "predictions.jsonl").read_bytes() == (whole / "predictions.jsonl").read_bytes()
    assert not _temporaries(tmp_path)


def test_outputs_written_whole_get_the_permissions_open_gives(tmp_path):
    """atomic_path's temporary was made by tempfile.mkstemp (0600): every result file ended readable by its
    owner only. Now as `open` makes a file: 0666 less the umask."""
    umask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "metrics.json", "{}")
        with JsonlAppender(tmp_path / "rows.jsonl") as sink:
            sink.write([{"a": 1}])
    finally:
        os.umask(umask)
    assert {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()} == {
        "metrics.json": 0o644,
        "rows.jsonl": 0o644,
    }
