"""Issues #13 and #27: a fourth task family is one folder (`plugins/example_family`, a BMI task; beside it a
backend, `plugins/example_backend`, both installable as the distribution `plugins/pyproject.toml` declares).
The family is registered, loaded, rendered, verified, evaluated, diagnosed and trained for a step through the
same code as the built-in tasks, in process and as an installed package through the command line, without a
line of ehrmind changed for it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from example_family import BmiTask
from typer.testing import CliRunner

from ehrmind import get_task, list_tasks
from ehrmind.cli import app
from ehrmind.eval.diagnose import DiagnosisSettings, run_diagnose
from ehrmind.eval.runner import run_eval, run_info
from ehrmind.generate.scripted import ScriptedGenerator
from ehrmind.tasks.base import gold_completion

PLUGINS = Path(__file__).resolve().parent / "plugins"


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
    assert task.verify(ex, gold_completion(task, ex, "r")).strict_correct is True
    wrong = task.verify(ex, '<think>r</think><answer>{"answer": 40}</answer>')
    assert wrong.correct is False and wrong.format_ok and wrong.reward == 0.0
    broken = task.verify(ex, f'{{"answer": {ex.target["value"]}}}')
    assert broken.correct is True and not broken.format_ok and broken.reward == -2.0
    assert task.verify(ex, gold_completion(task, ex, "r")).think == "r"


def test_evaluated_and_diagnosed(bmi_csv, tmp_path):
    task = get_task("toy_bmi")
    examples = task.load(bmi_csv)
    gen = ScriptedGenerator(_answers(task, examples))
    info = run_info(task, examples, str(bmi_csv), model="scripted", samples=2, temperature=0.7, seed=0)
    metrics = run_eval(task, examples, gen, tmp_path / "eval", samples=2, info=info, progress=False)
    assert metrics["n"] == 16 and metrics["accuracy"] == pytest.approx(0.5)
    assert set(metrics["by_sex"]) == {"F", "M"} and metrics["by_sex"]["F"]["accuracy"] == 1.0
    assert metrics["grounding"]["grounded_rate"] == 1.0  # the family's own analysis, its own keys
    assert "## Grounding" in (tmp_path / "eval" / "report.md").read_text()
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


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ehrmind", *args], env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The example plug-ins (`tests/plugins`: the toy_bmi family and the bmi_oracle backend) installed by pip
    as a distribution, into a folder of their own: the command line finds them by their entry points only."""
    work = tmp_path_factory.mktemp("plugins")
    shutil.copytree(PLUGINS, work / "src")  # pip builds in the source folder: keep the repository clean
    site = work / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(site), str(work / "src")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert (site / "ehrmind_example_plugins-1.0.dist-info" / "entry_points.txt").exists()
    return {**os.environ, "PYTHONPATH": str(site)}


@pytest.mark.slow  # five fresh processes and a pip install (about 15 s); in process: the tests above
def test_an_installed_family_and_backend_run_through_the_cli(installed, bmi_csv, tiny_model, tmp_path):
    """Issue #27: a family and a backend from another installed package run through `data`, `eval` (the
    family's own analysis in metrics.json and report.md, its headline on the terminal), `diagnose` and one
    `sft` step, with no file of ehrmind edited for them."""
    done = _cli(
        installed, "data", "--task", "toy_bmi", "--source", str(bmi_csv), "--out", str(tmp_path / "d")
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(x) for x in (tmp_path / "d" / "examples.jsonl").read_text().splitlines()]
    assert len(rows) == 16 and {r["task"] for r in rows} == {"toy_bmi"}

    oracle = [
        "--task",
        "toy_bmi",
        "--data",
        str(tmp_path / "d"),
        "--backend",
        "bmi_oracle",
        "--model",
        "oracle",
    ]
    done = _cli(installed, "eval", *oracle, "--out", str(tmp_path / "e"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "accuracy 100.0%" in done.stdout and "grounded reasoning 100.0%" in done.stdout  # its headline
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["grounding"] == {"values_read": 32, "grounded_rate": 1.0}
    assert metrics["run"]["backend"] == "bmi_oracle" and metrics["run"]["environment"]["oracle"] == "bmi"
    assert "## Grounding" in (tmp_path / "e" / "report.md").read_text()

    done = _cli(installed, "diagnose", *oracle, "--k", "2", "--temperature", "0.7", "--min-items", "2",
                "--out", str(tmp_path / "g"))  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    diagnosis = json.loads((tmp_path / "g" / "diagnosis.json").read_text())
    assert diagnosis["plan_by"] == "sex" and diagnosis["accuracy"]["headlines"] == {"grounded reasoning": 1.0}

    recipe = {
        "stage": "sft", "task": "toy_bmi", "data": str(tmp_path / "d"), "model": str(tiny_model),
        "output_dir": str(tmp_path / "sft"), "sft_data": {"per_group": {"M": 3}},  # a plan's rows: its own group
        "trl": {"use_cpu": True, "bf16": False, "fp16": False, "gradient_checkpointing": False,
                "report_to": "none", "max_steps": 1, "per_device_train_batch_size": 2, "max_length": 256},
    }  # fmt: skip
    (tmp_path / "sft.yaml").write_text(yaml.safe_dump(recipe))
    done = _cli(installed, "sft", "--recipe", str(tmp_path / "sft.yaml"))
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads((tmp_path / "sft" / "ehrmind_run.json").read_text())
    assert record["recipe"]["task"] == "toy_bmi" and record["data_counts"]["kept"] == 3
    assert (tmp_path / "sft" / "config.json").exists()


def test_a_broken_family_plugin_is_named_in_one_line(bmi_csv, tmp_path):
    """A broken entry point is one error line naming it and its package, no traceback (`--task pkg:Class` and
    the loader itself are checked in process: test_plugins.py)."""
    dist = tmp_path / "site" / "broken-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-bmi-family\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[ehrmind.tasks]\ntoy_bmi = example_family.nope\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(PLUGINS)])}
    done = _cli(env, "data", "--task", "toy_bmi", "--source", str(bmi_csv), "--out", str(tmp_path / "broken"))
    assert done.returncode == 2 and "entry point 'toy_bmi'" in done.stderr and "toy-bmi-family" in done.stderr
    assert "Traceback" not in done.stderr
