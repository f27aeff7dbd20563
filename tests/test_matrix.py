"""`ehrmind matrix`: every model on every task — table, JSON and heatmap with intervals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ehrmind import get_task
from ehrmind.cli import app
from ehrmind.eval.matrix import main_metric, model_labels

runner = CliRunner()


@pytest.fixture(scope="module")
def second_model(tmp_path_factory) -> Path:
    from ehrmind.train.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny2") / "model-b", size="tiny", seed=1)


@pytest.fixture(scope="module")
def task_data(tmp_path_factory) -> dict[str, Path]:
    """3 synthetic MedCalc rows and 4 EHRSHOT-style flat rows (timeline, question, yes/no label)."""
    from ehrmind.io import atomic_write_jsonl
    from ehrmind.tasks.medcalc.sample_rows import make_rows

    root = tmp_path_factory.mktemp("matrix_data")
    atomic_write_jsonl(root / "medcalc.jsonl", make_rows(3, seed=2))
    atomic_write_jsonl(
        root / "ehrshot.jsonl",
        [
            {
                "id": f"s{i}",
                "timeline": f"2020-01-0{i + 1} clinic visit: blood pressure 15{i}/9{i} mmHg",
                "question": "Will the patient be diagnosed with hypertension within the next year?",
                "label": "yes" if i % 2 else "no",
                "labeler": "new_hypertension",
            }
            for i in range(4)
        ],
    )
    return {"medcalc": root / "medcalc.jsonl", "ehrshot": root / "ehrshot.jsonl"}


@pytest.mark.parametrize(
    ("task", "metrics", "expected"),
    [
        # EHRSHOT: balanced accuracy at the top level
        (
            "ehrshot",
            {"balanced_accuracy": 0.75, "balanced_accuracy_ci95": [0.5, 1.0]},
            ("balanced accuracy", 0.75, [0.5, 1.0]),
        ),
        # TREC CT: balanced accuracy of the pair classification
        (
            "trec_ct",
            {"classification": {"balanced_accuracy": 0.4, "balanced_accuracy_ci95": None}},
            ("balanced accuracy", 0.4, None),
        ),
        # MedCalc: accuracy is the main metric, whatever else its metrics hold
        ("medcalc", {"accuracy": 0.5, "balanced_accuracy": 0.7}, None),
        ("ehrshot", {"balanced_accuracy": None}, None),
    ],
)
def test_main_metric(task, metrics, expected):
    got = main_metric(get_task(task), metrics)
    assert (got if got is None else (got["name"], got["value"], got["ci95"])) == expected


def test_model_labels_are_unique_and_file_safe(tmp_path):
    (tmp_path / "a" / "model").mkdir(parents=True)
    (tmp_path / "b" / "model").mkdir(parents=True)
    labels = model_labels([str(tmp_path / "a" / "model"), str(tmp_path / "b" / "model"), "org/Model 1"])
    assert labels == ["model", "model-2", "org--Model_1"]


def test_matrix_two_models_two_tasks(tmp_path, tiny_model, second_model, task_data):
    out = tmp_path / "matrix"
    args = ["matrix", "--models", str(tiny_model), str(second_model), "--tasks", "medcalc", "ehrshot"]
    args += ["--data", f"medcalc={task_data['medcalc']}", f"ehrshot={task_data['ehrshot']}"]
    args += ["--out", str(out), "--max-new-tokens", "8", "--batch-size", "4"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    m = json.loads((out / "matrix.json").read_text())
    assert [x["label"] for x in m["models"]] == ["model", "model-b"]
    cells = {(c["model"], c["task"]): c for c in m["cells"]}
    assert set(cells) == {(a, t) for a in ("model", "model-b") for t in ("medcalc", "ehrshot")}
    for (_, task), c in cells.items():
        assert c["n"] == (3 if task == "medcalc" else 4) and c["ci95"] is not None and 0 <= c["accuracy"] <= 1
        assert (out / c["dir"] / "predictions.jsonl").exists() and (out / c["dir"] / "metrics.json").exists()
        if task == "ehrshot":  # the task's main metric, with its interval
            assert c["main_metric"]["name"] == "balanced accuracy" and "ci95" in c["main_metric"]
        else:
            assert c["main_metric"] is None
    table = (out / "matrix.md").read_text()
    assert "| model | medcalc | ehrshot |" in table and "ehrshot (balanced accuracy)" in table
    assert "| model-b | " in table and "% [" in table  # accuracy with its 95% interval
    assert (out / "matrix.png").stat().st_size > 1000


def test_matrix_checks_its_arguments_before_loading_models(tmp_path, task_data):
    base = ["matrix", "--models", str(tmp_path / "no-model"), "--out", str(tmp_path / "o")]
    result = runner.invoke(
        app, [*base, "--tasks", "medcalc", "ehrshot", "--data", f"medcalc={task_data['medcalc']}"]
    )
    assert result.exit_code == 2 and "missing: ['ehrshot']" in result.output
    result = runner.invoke(
        app, [*base, "--tasks", "medcalc", "--data", f"medcalc={task_data['medcalc']}", "--mode", "one-shot"]
    )
    assert result.exit_code == 2 and "needs exemplars" in result.output
    result = runner.invoke(app, [*base, "--tasks", "medcalc", "--data", "medcalc"])
    assert result.exit_code == 2 and "expected --data TASK=PATH" in result.output
