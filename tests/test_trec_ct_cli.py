"""trec_ct end to end through the command line: `ehrmind data`, `score` with gold completions, `eval` on a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import SHARED_DATA, shared_file
from ehrmind import get_task
from ehrmind.cli import app
from ehrmind.tasks.base import gold_completion, scorable
from test_trec_ct_data import make_source

runner = CliRunner()
TREC_CT = SHARED_DATA / "trec_ct"


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    source = shared_file(TREC_CT / "official" / "qrels2021.txt").parent.parent
    out = tmp_path_factory.mktemp("trec_ct") / "data"
    result = runner.invoke(
        app, ["data", "--task", "trec_ct", "--source", str(source), "--out", str(out), "--seed", "1"]
    )
    assert result.exit_code == 0, result.output
    return out


def test_data_writes_patient_disjoint_splits(data_dir):
    manifest = json.loads((data_dir / "manifest.json").read_text())
    assert manifest["task"] == "trec_ct" and manifest["options"]["seed"] == 1
    assert manifest["label_map"]["trec"] == {"0": "not relevant", "1": "excluded", "2": "eligible"}
    patients: dict[str, set[str]] = {}
    for name in ("train.jsonl", "val.jsonl", "test.jsonl"):
        rows = _lines(data_dir / name)
        assert len(rows) == manifest["files"][name]["n"] > 0
        for row in rows:
            assert row["id"] == f"{row['patient_id']}::{row['trial_id']}"
            assert row["label"] in (0, 1, 2) and row["label_name"] == row["target"]["label_name"]
        patients[name] = {r["patient_id"] for r in rows}
    assert not patients["train.jsonl"] & patients["val.jsonl"]
    assert not patients["train.jsonl"] & patients["test.jsonl"]
    assert not patients["val.jsonl"] & patients["test.jsonl"]
    # SIGIR pairs have no eligibility label to train on: they are all in test, for ranking
    cohorts = {name: {r["cohort"] for r in _lines(data_dir / name)} for name in patients}
    assert "sigir" not in cohorts["train.jsonl"] | cohorts["val.jsonl"] and "sigir" in cohorts["test.jsonl"]
    # every judged pair is either in a split or listed as skipped, with its reason
    skipped = _lines(data_dir / "skipped.jsonl")
    assert len(skipped) + manifest["n"] == manifest["load"]["judged_pairs"]
    assert all(s["reason"] for s in skipped)


def test_score_gold_completions(data_dir, tmp_path):
    task = get_task("trec_ct")
    examples = task.load(data_dir / "test.jsonl")
    first_trec = next(ex for ex in examples if scorable(task, ex))
    preds = tmp_path / "preds.jsonl"
    with open(preds, "w") as fh:
        for ex in examples:
            # SIGIR pairs have no eligibility answer; state one so they can be ranked
            completion = (
                gold_completion(task, ex) if scorable(task, ex) else gold_completion(task, first_trec)
            )
            fh.write(json.dumps({"id": ex.id, "completion": completion}) + "\n")
    out = tmp_path / "score"
    result = runner.invoke(
        app,
        [
            "score",
            "--task",
            "trec_ct",
            "--data",
            str(data_dir / "test.jsonl"),
            "--predictions",
            str(preds),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    n_trec = sum(scorable(task, ex) for ex in examples)
    assert (
        metrics["accuracy"] == 1.0
        and metrics["n"] == n_trec
        and metrics["n_unscorable"] == len(examples) - n_trec
    )
    c = metrics["classification"]
    assert (c["accuracy"], c["cohen_kappa"], c["macro_f1"]) == (1.0, 1.0, 1.0)
    assert metrics["ranking"]["by_cohort"]["trec_2021"]["ndcg@10"] == pytest.approx(
        1.0
    )  # gold order is ideal
    report = (out / "report.md").read_text()
    assert "## Classification" in report and "## Ranking per patient" in report and "## By cohort" in report


def test_eval_tiny_model_on_a_source_folder(tmp_path, tiny_model):
    source = make_source(tmp_path / "source")  # short prompts keep the tiny model fast
    out = tmp_path / "eval"
    args = ["eval", "--task", "trec_ct", "--data", str(source), "--model", str(tiny_model), "--out", str(out)]
    result = runner.invoke(app, [*args, "--limit", "4", "--max-new-tokens", "8", "--batch-size", "4"])
    assert result.exit_code == 0, result.output
    preds = _lines(out / "predictions.jsonl")
    assert len(preds) == 4 and all(
        p["patient_id"] and p["trial_id"] and p["label"] in (0, 1, 2) for p in preds
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 4 and metrics["classification"]["n"] == 4 and metrics["ranking"]["n_patients"] == 1
    assert "## Classification" in (out / "report.md").read_text()


def test_data_bad_qrels_line_names_file_and_line(tmp_path):
    source = make_source(tmp_path / "source")
    (source / "qrels2021.txt").write_text("1 0 NCT00000001 2\n1 0 NCT00000002 7\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["data", "--task", "trec_ct", "--source", str(source), "--out", str(out)])
    assert result.exit_code == 2
    assert "qrels2021.txt, row 2, field 'label': label must be 0, 1 or 2, got '7'" in result.output
    assert not out.exists()  # nothing half-written


def test_data_options_from_the_command_line(tmp_path):
    source = make_source(tmp_path / "source")
    out = tmp_path / "out"
    args = ["data", "--task", "trec_ct", "--source", str(source), "--out", str(out)]
    result = runner.invoke(
        app, [*args, "--set", "balance=true", "--set", "cohorts=[trec_2021]", "--set", "test_frac=0"]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["options"]["balance"] is True and manifest["options"]["cohorts"] == ["trec_2021"]
    bad = runner.invoke(app, [*args, "--set", "shuffle=1"])
    assert bad.exit_code == 2 and "unknown trec_ct option" in bad.output
