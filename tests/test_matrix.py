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
    from ehrmind.tasks.medcalc.tiny_corpus import tiny_corpus
    from ehrmind.train.tiny import build_tiny_model

    return build_tiny_model(
        tmp_path_factory.mktemp("tiny2") / "model-b", size="tiny", seed=1, texts=tiny_corpus()
    )


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
        # EHRSHOT: balanced accuracy of its binary analysis
        (
            "ehrshot",
            {"binary": {"balanced_accuracy": 0.75, "balanced_accuracy_ci95": [0.5, 1.0]}},
            ("balanced accuracy", 0.75, [0.5, 1.0]),
        ),
        # TREC CT: balanced accuracy of the pair classification
        (
            "trec_ct",
            {"classification": {"balanced_accuracy": 0.4, "balanced_accuracy_ci95": None}},
            ("balanced accuracy", 0.4, None),
        ),
        # MedCalc (issue #29): MedCalc-Bench's official accuracy, not ehrmind's extraction (`accuracy`)
        (
            "medcalc",
            {"accuracy": 0.5, "official_accuracy": 0.4, "official_accuracy_ci95": [0.3, 0.5]},
            ("MedCalc-Bench official accuracy", 0.4, [0.3, 0.5]),
        ),
        ("medcalc", {"accuracy": 0.5, "balanced_accuracy": 0.7}, None),  # no official verdicts: none
        ("ehrshot", {"binary": {"balanced_accuracy": None}}, None),
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
        else:  # MedCalc: the benchmark's own verdict (issue #29)
            assert (
                c["main_metric"]["name"] == "MedCalc-Bench official accuracy" and "ci95" in c["main_metric"]
            )
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


def test_matrix_pairs_every_model_with_the_baseline(tmp_path, task_data):
    """--baseline: each other model's cell gets the paired difference on the same items — accuracy with
    McNemar, and the balanced accuracy EHRSHOT reports, recomputed per resample (equal to the cells' own)."""
    import ehrmind
    from ehrmind.generate.backends import Backend
    from ehrmind.generate.scripted import ScriptedGenerator

    gold = {
        ex.input["timeline"]: ex.target["label"] for ex in get_task("ehrshot").load(str(task_data["ehrshot"]))
    }

    def reply(model):  # "trained" answers every EHRSHOT item right, the baseline says "no" to all
        def answer(messages, k, seed):  # each task reads its own key (MedCalc: a wrong answer for both)
            right = next((y for tl, y in gold.items() if tl in messages[-1]["content"]), False)
            said = {"answer": -1, "prediction": "yes" if (model == "trained" and right) else "no"}
            return f"<think>x</think><answer>{json.dumps(said)}</answer>"

        return answer

    backend = Backend(factory=lambda model, settings: ScriptedGenerator(reply(model)))
    data = {"medcalc": str(task_data["medcalc"]), "ehrshot": str(task_data["ehrshot"])}
    m = ehrmind.matrix(["base", "trained"], data, tmp_path / "m", backend=backend, baseline="base")
    cells = {(c["model"], c["task"]): c for c in m["cells"]}
    assert "vs_baseline" not in cells[("base", "ehrshot")]
    v = cells[("trained", "ehrshot")]["vs_baseline"]
    assert sorted(gold.values()) == [False, False, True, True]
    # the two "yes" items gained, none lost: accuracy 50% -> 100%
    assert v["lenient"]["n"] == 4 and v["lenient"]["difference"] == pytest.approx(0.5)
    assert (v["lenient"]["gained"], v["lenient"]["lost"]) == (2, 0) and v["lenient"]["mcnemar_p"] == 0.5
    # balanced accuracy 0.5 (always "no") -> 1.0, the difference of the two cells' own values
    own = [cells[(m, "ehrshot")]["main_metric"]["value"] for m in ("trained", "base")]
    assert v["main_metric"]["difference"] == pytest.approx(0.5) == pytest.approx(own[0] - own[1])
    assert len(v["main_metric"]["ci95"]) == 2
    assert cells[("trained", "medcalc")]["vs_baseline"]["lenient"]["difference"] == pytest.approx(0.0)
    assert (
        "main_metric" not in cells[("trained", "medcalc")]["vs_baseline"]
    )  # accuracy is MedCalc's main metric
    report = (tmp_path / "m" / "matrix.md").read_text()
    assert "## Against the baseline `base` (paired, same items)" in report
    assert "| trained | ehrshot | 4 | +50.0 pts [" in report and "| balanced accuracy +0.500 [" in report
    with pytest.raises(ehrmind.errors.ConfigError, match="--baseline 'other' is not one of"):
        ehrmind.matrix(["base", "trained"], data, tmp_path / "m2", backend=backend, baseline="other")


def test_eval_prints_the_tasks_main_metric(tmp_path, tiny_model, task_data):
    """`ehrmind eval --task ehrshot` prints balanced accuracy (its main metric), not only accuracy; MedCalc
    prints MedCalc-Bench's official accuracy first and ehrmind's extraction under its own name (issue #29)."""
    base = ["eval", "--model", str(tiny_model), "--max-new-tokens", "4"]
    r = runner.invoke(
        app, [*base, "--task", "ehrshot", "--data", str(task_data["ehrshot"]), "--out", str(tmp_path / "e")]
    )
    assert r.exit_code == 0, r.output
    assert "balanced accuracy 0." in r.output
    r = runner.invoke(
        app, [*base, "--task", "medcalc", "--data", str(task_data["medcalc"]), "--out", str(tmp_path / "m")]
    )
    assert r.exit_code == 0 and "balanced accuracy" not in r.output
    # a progress bar ("Loading weights … 100%") may precede the first line without a line break
    lines = [
        line.rpartition("\r")[2].rpartition("it/s]")[2]
        for line in r.output.splitlines()
        if "accuracy" in line
    ]
    assert lines[0].startswith("MedCalc-Bench official accuracy ") and " over n=3" in lines[0]
    assert lines[1].startswith("ehrmind-extraction accuracy ")
    assert not any(line.startswith("accuracy") for line in lines)


@pytest.mark.parametrize(
    ("task", "metrics", "lines"),
    [
        # EHRSHOT: its binary analysis's headline, balanced accuracy then AUROC, each with its interval
        (
            "ehrshot",
            {"binary": {"balanced_accuracy": 0.75, "balanced_accuracy_ci95": [0.5, 1.0], "auroc": 0.8,
                        "auroc_ci95": None}},
            ["balanced accuracy 0.750 (95% CI 0.500–1.000)", "AUROC 0.800"],
        ),
        # TREC CT: classification then ranking
        (
            "trec_ct",
            {"classification": {"balanced_accuracy": 0.4}, "ranking": {"ndcg@10": 0.61, "ndcg@10_ci95": [0.5, 0.7]}},
            ["balanced accuracy 0.400", "NDCG@10 0.610 (95% CI 0.500–0.700)"],
        ),
        # MedCalc (issue #29): the benchmark's own verdict first, then ehrmind's extraction under its own name
        # (with the count of rows where the two differ), and the reasoning checks
        (
            "medcalc",
            {"official_accuracy": 0.3, "official_accuracy_ci95": [0.2, 0.4], "n_official_disagree": 3,
             "reasoning_checks": {"numbers_in_note_rate": 0.9, "final_value_matches_answer_rate": None}},
            ["MedCalc-Bench official accuracy 30.0% (95% CI 20.0–40.0) over n=10",
             "ehrmind-extraction accuracy 50.0% (95% CI 40.0–60.0%) (3 rows where the two verdicts differ)",
             "values in note 90.0%"],
        ),
    ],
)  # fmt: skip
def test_eval_prints_each_analysis_headline(task, metrics, lines, tmp_path, capsys):
    """Issue #27: what `eval`/`score` print after accuracy comes from the task's analyses; a value the run
    lacks prints nothing (MedCalc's final-value rate here)."""
    from ehrmind.cli.evaluate import summary

    summary({"accuracy": 0.5, "ci95": [0.4, 0.6], "n": 10, **metrics}, tmp_path, task)
    out = capsys.readouterr().out.splitlines()
    if task == "medcalc":
        assert out[0].startswith(lines[0]) and out[1:-1] == lines[1:]
        return
    assert out[0].startswith("accuracy 50.0% (95% CI 40.0–60.0) over n=10")
    assert out[1:-1] == lines
