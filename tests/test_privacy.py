"""Privacy by default (issue #26, item 3): training on the paper's recipe prints no patient note, and every
setting that prints data or sends it off the machine is named in a warning at run start and at import."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ehrmind.cli import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
BASE = REPO / "recipes" / "medcalc" / "base.yaml"
CANARY = "Quillfeather"
"""A surname written into every training note: it appears in a log only if a note (or part of one) does."""

CPU_OVERRIDES = {
    # the GPU-only keys of base.yaml, switched off for a CPU run
    "bf16": False,
    "use_cpu": True,
    "gradient_checkpointing": False,
    "max_steps": 1,
    "logging_steps": 1,
    "save_strategy": "no",
}


@pytest.fixture(scope="module")
def notes_jsonl(tmp_path_factory) -> tuple[Path, list[str]]:
    """Training rows whose notes each name a canary; the notes themselves, for the substrings the test seeks."""
    from ehrmind.io import atomic_write_jsonl
    from ehrmind.tasks.medcalc.sample_rows import make_rows

    rows = make_rows(16, seed=5)
    for i, row in enumerate(rows):
        row["Patient Note"] = f"{row['Patient Note']} Seen by Dr {CANARY} in clinic {i}."
    path = tmp_path_factory.mktemp("notes") / "train.jsonl"
    atomic_write_jsonl(path, rows)
    return path, [r["Patient Note"] for r in rows]


def _paper_recipe(tmp_path: Path, stage: str, data: Path, model: Path, trl: dict) -> Path:
    """A recipe that includes recipes/medcalc/base.yaml and changes only data, model, output and the
    CPU / size keys: every other setting (log_completions included) is the paper recipe's."""
    body = {
        "include": str(BASE),
        "data": str(data),
        "split": None,
        stage: {"model": str(model), "output_dir": str(tmp_path / stage), "trl": {**CPU_OVERRIDES, **trl}},
    }
    if stage == "sft":  # the paper's 20% of 16 notes is too few to keep one per category
        body["sft"]["sft_data"] = {"fraction": None}
    path = tmp_path / f"paper-{stage}.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def _note_fragments(notes: list[str]) -> list[str]:
    """Pieces no log may hold: the canary, and a few words from the middle of each note (short enough to
    survive the line wrapping of a console table)."""
    fragments = {CANARY}
    for note in notes:
        words = note.split()
        mid = len(words) // 2
        fragments.add(" ".join(words[mid : mid + 2]))
    return sorted(f for f in fragments if len(f) >= 8)


@pytest.fixture
def all_records(monkeypatch):
    """Every log record of the command at DEBUG level: the CLI's logging set-up replaces the root handlers,
    so the capturing handler is added after it."""
    import ehrmind.cli.train as cli_train

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    setup = cli_train.setup_logging
    loggers = [logging.getLogger(), logging.getLogger("ehrmind")]
    levels = [lg.level for lg in loggers]

    def setup_and_keep(*args, **kwargs):
        setup(*args, **kwargs)
        for lg in loggers:
            lg.setLevel(logging.DEBUG)
        loggers[0].addHandler(Keep(level=logging.DEBUG))

    monkeypatch.setattr(cli_train, "setup_logging", setup_and_keep)
    yield records
    for lg, level in zip(loggers, levels, strict=True):
        lg.setLevel(level)
    for h in [h for h in loggers[0].handlers if isinstance(h, Keep)]:
        loggers[0].removeHandler(h)


@pytest.mark.parametrize(
    ("stage", "trl"),
    [
        pytest.param("sft", {"max_length": 512, "gradient_accumulation_steps": 1}, id="sft"),
        pytest.param(
            "rl",
            {
                "use_vllm": False,
                "per_device_train_batch_size": 4,
                "num_generations": 4,
                "steps_per_generation": 1,
                "gradient_accumulation_steps": 1,
                "max_completion_length": 16,
            },
            id="grpo",
        ),  # fmt: skip
    ],
)
def test_paper_recipe_training_logs_hold_no_note(
    stage, trl, tmp_path, tiny_model, notes_jsonl, capfd, recwarn, all_records
):
    data, notes = notes_jsonl
    path = _paper_recipe(tmp_path, stage, data, tiny_model, trl)
    result = runner.invoke(app, [stage, "--recipe", str(path)])
    assert result.exit_code == 0, result.output[-3000:]
    assert (tmp_path / stage / "log_history.json").is_file()  # it trained
    captured = capfd.readouterr()
    texts = {
        "command output": result.output,
        "stdout": captured.out,
        "stderr": captured.err,
        "log records": "\n".join(r.getMessage() for r in all_records),
        "warnings": "\n".join(str(w.message) for w in recwarn),
    }
    assert all_records, "no log record was captured"
    flat = {name: re.sub(r"\s+", " ", text) for name, text in texts.items()}
    for fragment in _note_fragments(notes):
        for name, text in flat.items():
            assert fragment not in text, f"{fragment!r} (note text) in the {name}"
