"""Issue #13: a fourth task family is one folder. `example_family/` (a BMI task) is registered, loaded,
rendered, verified, evaluated, diagnosed and trained for a step through the same code as the built-in tasks,
without a line of ehrmind changed for it."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from ehrmind import get_task, list_tasks
from ehrmind.cli import app
from ehrmind.eval.diagnose import DiagnosisSettings, run_diagnose
from ehrmind.eval.runner import run_eval, run_info
from ehrmind.generate.scripted import ScriptedGenerator
from example_family import BmiTask


@pytest.fixture(scope="module")
def bmi_csv(tmp_path_factory):
    rows = [
        {"id": i, "weight_kg": 50 + 3 * i, "height_m": 1.5 + 0.02 * i, "age": 12 if i % 4 == 0 else 40,
         "sex": "FM"[i % 2], "patient": f"p{i // 2}"}
        for i in range(16)
    ]  # fmt: skip
    path = tmp_path_factory.mktemp("bmi") / "bmi.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _answers(task, examples):
    """Right for even ids, wrong for odd ones: a scripted model whose accuracy is known (50%)."""
    gold = {task.user_prompt(ex): ex for ex in examples}

    def reply(messages, sample, seed):
        ex = gold[messages[-1]["content"]]
        value = ex.target["value"] if int(ex.id) % 2 == 0 else 99.0
        return (
            f"<think>{ex.metadata['explanation']}</think>\n<answer>{json.dumps({'answer': value})}</answer>"
        )

    return reply


def test_registered_loaded_rendered_and_verified(bmi_csv):
    assert "toy_bmi" in list_tasks() and isinstance(get_task("toy_bmi"), BmiTask)
    task = get_task("toy_bmi")
    examples = task.load(bmi_csv)
    assert len(examples) == 16 and examples[1].target == {"value": round(53 / 1.52**2, 1)}
    messages = task.render(examples[1])
    assert [m["role"] for m in messages] == ["system", "user"] and "53 kg" in messages[1]["content"]
    ex = examples[1]
    assert task.verify(ex, task.gold_completion(ex, "r")).strict_correct is True
    wrong = task.verify(ex, '<think>r</think><answer>{"answer": 40}</answer>')
    assert wrong.correct is False and wrong.format_ok and wrong.reward == 0.0
    broken = task.verify(ex, f'{{"answer": {ex.target["value"]}}}')
    assert broken.correct is True and not broken.format_ok and broken.reward == -2.0
    assert task.verify(ex, task.gold_completion(ex, "r")).think == "r"


def test_evaluated_and_diagnosed(bmi_csv, tmp_path):
    task = get_task("toy_bmi")
    examples = task.load(bmi_csv)
    gen = ScriptedGenerator(_answers(task, examples))
    info = run_info(task, examples, str(bmi_csv), model="scripted", samples=2, temperature=0.7, seed=0)
    metrics = run_eval(task, examples, gen, tmp_path / "eval", samples=2, info=info, progress=False)
    assert metrics["n"] == 16 and metrics["accuracy"] == pytest.approx(0.5)
    assert set(metrics["by_sex"]) == {"F", "M"} and metrics["by_sex"]["F"]["accuracy"] == 1.0
    assert metrics["reasoning_checks"]["numbers_in_note_rate"] == 1.0  # the task's own check
    assert "Reasoning checks" in (tmp_path / "eval" / "report.md").read_text()
    diagnosis = run_diagnose(
        "toy_bmi",
        str(bmi_csv),
        tmp_path / "diag",
        DiagnosisSettings(k=2, min_items=2),
        predictions=tmp_path / "eval" / "predictions.jsonl",
        progress=False,
    )
    assert diagnosis["plan_by"] == "sex"  # the finest of the task's plan fields
    verdicts = {g: b["verdict"] for g, b in diagnosis["by_sex"].items()}
    assert verdicts == {"F": "misapplied", "M": "missing"}
    plan = yaml.safe_load((tmp_path / "diag" / "sft_plan.yaml").read_text())
    assert plan["sft_data"]["per_group"] == {"M": 20}


def test_trained_for_a_step(bmi_csv, tiny_model, tmp_path):
    recipe = {
        "stage": "sft",
        "task": "toy_bmi",
        "data": str(bmi_csv),
        "model": str(tiny_model),
        "output_dir": str(tmp_path / "sft"),
        "sft_data": {"per_group": {"M": 3}},  # a plan's rows: the task's own finer group
        "trl": {"use_cpu": True, "bf16": False, "fp16": False, "gradient_checkpointing": False,
                "report_to": "none", "max_steps": 1, "per_device_train_batch_size": 2, "max_length": 256},
    }  # fmt: skip
    path = tmp_path / "sft.yaml"
    path.write_text(yaml.safe_dump(recipe))
    result = CliRunner().invoke(app, ["sft", "--recipe", str(path)])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "sft" / "ehrmind_run.json").read_text())
    assert record["recipe"]["task"] == "toy_bmi" and record["data_counts"]["kept"] == 3
    assert (tmp_path / "sft" / "config.json").exists()


def test_a_family_outside_the_package_is_reachable_from_the_cli(tmp_path, bmi_csv):
    """Issue #27: `--task pkg.module:Class` imports a family from the Python path, and an installed package's
    `ehrmind.tasks` entry point registers one under its own name — through the real command line (a fresh
    process: nothing imported it before)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).resolve().parent
    # an installed distribution, as pip leaves one: its metadata with the entry point, its code on the path
    dist = tmp_path / "site" / "toy_bmi_family-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-bmi-family\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[ehrmind.tasks]\ntoy_bmi = example_family.task:BmiTask\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(tests)])}

    def data(task: str, out: str) -> subprocess.CompletedProcess:
        args = [sys.executable, "-m", "ehrmind", "data", "--task", task, "--source", str(bmi_csv)]
        return subprocess.run([*args, "--out", str(tmp_path / out)], env=env, capture_output=True, text=True)

    for task, out in (("example_family.task:BmiTask", "by-path"), ("toy_bmi", "by-entry-point")):
        done = data(task, out)
        assert done.returncode == 0, done.stderr[-2000:]
        rows = [json.loads(x) for x in (tmp_path / out / "examples.jsonl").read_text().splitlines()]
        assert len(rows) == 16 and {r["task"] for r in rows} == {"toy_bmi"}
    # a broken entry point is named, with its package, in one line
    (dist / "entry_points.txt").write_text("[ehrmind.tasks]\ntoy_bmi = example_family.nope\n")
    done = data("toy_bmi", "broken")
    assert done.returncode == 2 and "entry point 'toy_bmi'" in done.stderr and "toy-bmi-family" in done.stderr
    assert "Traceback" not in done.stderr
