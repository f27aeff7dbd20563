"""EHRSHOT training: the paper's recipes (recipes/ehrshot/), the one-command training data and warm-up set
(`ehrmind ehrshot-train-data`), and data → warm-up → SFT → GRPO → eval on the MIMIC-IV demo (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ehrmind.cli import app
from ehrmind.errors import ConfigError, DataError
from ehrmind.tasks.base import gold_completion
from ehrmind.tasks.ehrshot.warmup import (
    HELD_OUT,
    POOL,
    TRAIN,
    WARMUP,
    balanced_rows,
    split_by_subject,
)
from ehrmind.train.recipe import load_recipe
from ehrmind.types import Example

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes" / "ehrshot"
MODELS = {
    "llama-3.2-3b-instruct.yaml": "meta-llama/Llama-3.2-3B-Instruct",
    "qwen2.5-3b-instruct.yaml": "Qwen/Qwen2.5-3B-Instruct",
}


# ------------------------------------------------------------------ recipes (fast)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_recipes_validate_and_pin_the_papers_settings(name):
    sft = load_recipe(RECIPES / name, stage="sft")
    rl = load_recipe(RECIPES / name, stage="rl")
    run = name.removesuffix("-instruct.yaml")
    assert (sft.task, rl.task) == ("ehrshot", "ehrshot")
    # the warm-up starts from the backbone; GRPO from the warm-up's output
    assert sft.model == MODELS[name] and sft.output_dir == f"runs/ehrshot/{run}/sft"
    assert rl.model == sft.output_dir and rl.output_dir == f"runs/ehrshot/{run}/rl"
    # the folders `ehrmind ehrshot-train-data --out data/ehrshot` writes
    assert sft.data == f"data/ehrshot/{WARMUP}/rationales.jsonl"
    assert rl.data == f"data/ehrshot/{TRAIN}"
    # train_ehrshot_3b.sh: prompt 4000, response 800, lr 1e-6, n 8, KL 0.001, T 0.6, top-p 0.95, 40 epochs
    t = rl.trl
    assert rl.max_prompt_tokens == 4000 and t["max_completion_length"] == 800
    assert t["learning_rate"] == 1e-6 and t["lr_scheduler_type"] == "constant"
    assert t["num_generations"] == 8 and t["beta"] == 0.001 and t["epsilon"] == 0.2
    assert (t["temperature"], t["top_p"], t["num_train_epochs"]) == (0.6, 0.95, 40)
    # 32 prompts × 8 samples per step on 8 GPUs, one optimizer step per generation batch
    completions = t["per_device_train_batch_size"] * 8 * t["steps_per_generation"]
    assert completions == 32 * t["num_generations"]
    assert t["gradient_accumulation_steps"] == t["steps_per_generation"]
    assert t["vllm_max_model_length"] >= rl.max_prompt_tokens + t["max_completion_length"]
    assert t["use_vllm"] and t["bf16"] and t["log_completions"] is False
    # ehrshot.py: 0.1 format + 1 correct, 0 wrong, -2 bad format
    assert (rl.reward_weights.correct, rl.reward_weights.wrong, rl.reward_weights.bad_format) == (1.1, 0, -2)
    # the warm-up: MedCalc's SFT settings, long enough for a prompt and its completion
    s = sft.trl
    assert s["learning_rate"] == 2e-5 and s["num_train_epochs"] == 2 and s["lr_scheduler_type"] == "cosine"
    assert s["max_length"] >= sft.max_prompt_tokens + t["max_completion_length"]
    assert sft.task_options.prefill is True and rl.task_options.prefill is True


def test_vllm_context_shorter_than_prompt_and_completion_is_refused():
    with pytest.raises(ConfigError, match="vllm_max_model_length"):
        load_recipe(RECIPES / "qwen2.5-3b-instruct.yaml", ["trl.vllm_max_model_length=4000"], stage="rl")


# ------------------------------------------------------------------ splits and the warm-up pool (fast)


def _ex(subject: int, i: int, label: bool, split: str | None = None) -> Example:
    meta = {"subject_id": subject, "category": "new_hypertension", "label": label}
    if split:
        meta["split"] = split
    return Example(
        id=f"{subject}@{i}",
        task="ehrshot",
        input={"timeline": "t", "question": "q"},
        target={"label": label, "label_name": "yes" if label else "no"},
        metadata=meta,
    )


def test_split_is_by_patient_and_deterministic():
    examples = [_ex(s, i, (s + i) % 5 == 0) for s in range(200) for i in range(3)]
    a = split_by_subject(examples, held_out_fraction=0.2, seed=1)
    subjects = {name: {ex.metadata["subject_id"] for ex in rows} for name, rows in a.items()}
    assert not subjects[TRAIN] & subjects[HELD_OUT]  # no patient in both
    assert len(a[TRAIN]) + len(a[HELD_OUT]) == len(examples)
    assert 20 <= len(subjects[HELD_OUT]) <= 60  # ~20% of 200 patients
    assert split_by_subject(examples, held_out_fraction=0.2, seed=1) == a
    assert split_by_subject(examples, held_out_fraction=0.2, seed=2) != a


def test_the_datas_own_split_wins():
    rows = [_ex(1, 0, True, "train"), _ex(2, 0, False, "tuning"), _ex(3, 0, False, "held_out")]
    rows.append(_ex(4, 0, True, "test"))  # EHRSHOT's name for held-out patients
    got = split_by_subject(rows, held_out_fraction=0.5)
    assert [ex.id for ex in got[TRAIN]] == ["1@0"]
    assert [ex.id for ex in got[HELD_OUT]] == ["3@0", "4@0"]  # tuning is in neither


def test_warmup_pool_is_label_balanced():
    rows = [_ex(s, 0, s < 7) for s in range(50)]  # 7 yes, 43 no
    pool = balanced_rows(rows, per_label=100, seed=0)
    assert sum(ex.target["label"] for ex in pool) == 7 and len(pool) == 14
    small = balanced_rows(rows, per_label=3, seed=0)
    assert sum(ex.target["label"] for ex in small) == 3 and len(small) == 6
    with pytest.raises(DataError, match="no 'yes' label"):
        balanced_rows([_ex(s, 0, False) for s in range(5)], per_label=3)


def test_rationales_without_a_recipe_are_refused(tmp_path):
    result = runner.invoke(
        app,
        [
            "ehrshot-train-data",
            "--source",
            "x",
            "--labeler",
            "new_hypertension",
            "--out",
            str(tmp_path),
            "--self",
        ],
    )
    assert result.exit_code == 2 and "need --recipe" in result.output


# ------------------------------------------------------------------ end to end on the MIMIC-IV demo (slow)

CPU = {
    # the GPU-only keys of base.yaml, switched off for a CPU run, and a tiny run's sizes
    "bf16": False,
    "use_cpu": True,
    "gradient_checkpointing": False,
    "max_steps": 2,
    "logging_steps": 1,
    "save_strategy": "no",
    "report_to": "none",
    "per_device_train_batch_size": 2,
    "gradient_accumulation_steps": 1,
}
RL_CPU = {"use_vllm": False, "num_generations": 2, "steps_per_generation": 1, "max_completion_length": 16}


def _paper_recipe(tmp_path: Path, data: Path, model: Path) -> Path:
    """recipes/ehrshot/base.yaml with only data, model, outputs and the CPU / size keys changed."""
    body = {
        "include": str(RECIPES / "base.yaml"),
        "sft": {
            "model": str(model),
            "data": str(data / WARMUP / "rationales.jsonl"),
            "output_dir": str(tmp_path / "sft"),
            "trl": CPU,
        },
        "rl": {
            "model": str(tmp_path / "sft"),
            "data": str(data / TRAIN),
            "output_dir": str(tmp_path / "rl"),
            "trl": {**CPU, **RL_CPU},
        },
    }
    path = tmp_path / "ehrshot.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


@pytest.mark.slow
def test_data_warmup_sft_rl_eval_on_the_mimic_demo(tmp_path, tiny_model):
    from conftest import MIMIC_DEMO, shared_file
    from ehrmind.generate.scripted import ScriptedGenerator
    from ehrmind.tasks.ehrshot.warmup import make_rationales
    from ehrmind.train.recipe import recipe_task

    source = shared_file(MIMIC_DEMO)
    data = tmp_path / "data"
    args = [
        "ehrshot-train-data",
        "--source",
        str(source),
        "--labeler",
        "new_hypertension",
        "--out",
        str(data),
    ]
    result = runner.invoke(app, [*args, "--per-label", "3", "--set", "max_tokens=300"])
    assert result.exit_code == 0, result.output
    task_rows = {name: _rows(data / name) for name in (TRAIN, HELD_OUT, POOL)}
    subjects = {n: {r["metadata"]["subject_id"] for r in rows} for n, rows in task_rows.items()}
    assert task_rows[TRAIN] and task_rows[HELD_OUT] and not subjects[TRAIN] & subjects[HELD_OUT]
    assert len(task_rows[TRAIN]) + len(task_rows[HELD_OUT]) == 76  # every new_hypertension example
    labels = [r["target"]["label"] for r in task_rows[POOL]]
    assert labels.count(True) == labels.count(False) == 3 and subjects[POOL] <= subjects[TRAIN]

    # warm-up rationales: a scripted "model" that reasons to the gold answer, verified as the real one would be
    recipe = _paper_recipe(tmp_path, data, tiny_model)
    task = recipe_task(load_recipe(recipe, stage="sft"))
    pool = task.load(data / POOL)
    gold = {ex.input["timeline"]: ex for ex in pool}

    def reply(messages, sample, seed):
        user = next(m["content"] for m in messages if m["role"] == "user")
        ex = next(e for t, e in gold.items() if t in user)
        return gold_completion(task, ex, "The record shows the relevant conditions.")

    summary = make_rationales(task, data, ScriptedGenerator(reply), samples=1)
    assert summary["kept"] == 6
    assert len((data / WARMUP / "rationales.jsonl").read_text().splitlines()) == 6

    for stage in ("sft", "rl"):
        result = runner.invoke(app, [stage, "--recipe", str(recipe)])
        assert result.exit_code == 0, result.output
    for stage, read in (("sft", data / WARMUP / "rationales.jsonl"), ("rl", data / TRAIN)):
        record = json.loads((tmp_path / stage / "ehrmind_run.json").read_text())
        assert record["data"] == str(read)  # each stage read the folder the recipe names
        assert json.loads((tmp_path / stage / "trainer_state.json").read_text())["global_step"] == 2
    assert record["n_examples"] == len(task_rows[TRAIN])  # every training prompt fits max_prompt_tokens
    paper = record["recipe"]["trl"]  # the paper's settings, untouched by the CPU overrides
    assert (paper["beta"], paper["temperature"], paper["lr_scheduler_type"]) == (0.001, 0.6, "constant")

    # the same GRPO settings, exported to verl: every one mirrored (the constant schedule included)
    verl = tmp_path / "verl"
    recipe_gpu = str(RECIPES / "qwen2.5-3b-instruct.yaml")
    args = ["export-verl", "--recipe", recipe_gpu, "--data", str(data / TRAIN), "--out", str(verl)]
    result = runner.invoke(app, [*args, "--set", f"model={tiny_model}"])
    assert result.exit_code == 0, result.output
    script = (verl / "run_verl.sh").read_text()
    for line in (
        "rollout.n=8",
        "optim.lr_scheduler_type=constant",
        "kl_loss_coef=0.001",
        "max_response_length=800",
    ):
        assert line in script, line

    out = tmp_path / "eval"
    args = ["eval", "--task", "ehrshot", "--data", str(data / HELD_OUT), "--model", str(tmp_path / "rl")]
    result = runner.invoke(app, [*args, "--out", str(out), "--limit", "4", "--max-new-tokens", "8"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 4 and "balanced_accuracy" in metrics["binary"]


def _rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "examples.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_self_rationales_from_the_command_line(tmp_path, tiny_model):
    """`--self` samples the model (here the untrained tiny one, which never answers in the contract): the
    attempts are recorded and an empty warm-up set is refused, naming the attempts file."""
    from conftest import MIMIC_DEMO, shared_file

    source = shared_file(MIMIC_DEMO)
    recipe = _paper_recipe(tmp_path, tmp_path / "data", tiny_model)
    out = tmp_path / "data"
    args = ["ehrshot-train-data", "--source", str(source), "--labeler", "new_hypertension", "--out", str(out)]
    opts = ["--per-label", "1", "--set", "max_tokens=200", "--recipe", str(recipe), "--self"]
    result = runner.invoke(app, [*args, *opts, "--samples", "2", "--max-new-tokens", "4"])
    assert result.exit_code == 2, result.output
    assert "no rationale passed verification (4 attempts" in result.output
    attempts = (out / WARMUP / "attempts.jsonl").read_text().splitlines()
    assert len(attempts) == 4 and not any(json.loads(a)["kept"] for a in attempts)


def test_warmup_rationales_from_a_teacher_through_the_command(tmp_path, monkeypatch):
    """`ehrmind ehrshot-train-data --teacher-url` on an `ehrmind data` snapshot: patient-disjoint splits, a
    label-balanced pool, and the teacher's rationales kept only where they verify (a scripted teacher, right
    on yes-labels and wrong on no-labels here), with the recipe's prompt (fast; the MIMIC demo run is slow)."""
    import ehrmind.train.rationales as rationales
    from ehrmind import get_task
    from ehrmind.generate.scripted import ScriptedGenerator
    from ehrmind.io import atomic_write_jsonl
    from ehrmind.snapshot import write_snapshot

    rows = [
        {"id": f"p{i}@2020", "subject_id": i, "prediction_time": "2020-06-01T00:00:00",
         "timeline": f"2020-01-01 clinic visit: blood pressure 1{40 + i}/9{i} mmHg",
         "question": "Will the patient be diagnosed with hypertension within the next year?",
         "label": "yes" if i % 2 else "no", "labeler": "new_hypertension"}
        for i in range(12)
    ]  # fmt: skip
    atomic_write_jsonl(tmp_path / "flat.jsonl", rows)
    task = get_task("ehrshot")
    snapshot = tmp_path / "snap"
    write_snapshot(task, task.load(tmp_path / "flat.jsonl"), tmp_path / "flat.jsonl", snapshot)

    def teacher(messages, sample, seed):  # answers yes: right for yes-labels only; continues the prefill
        assert messages[-1]["role"] == "assistant" and messages[-1]["content"].endswith("<think>")
        return 'The blood pressure is high.</think>\n<answer>{"prediction": "yes"}</answer>'

    seen = {}

    def fake(**kw):
        seen.update(kw)
        return ScriptedGenerator(teacher, "teacher", settings=kw["settings"]), "teacher"

    monkeypatch.setattr(rationales, "teacher_generator", fake)
    out = tmp_path / "data"
    recipe = _paper_recipe(tmp_path, out, tmp_path / "model")
    args = [
        "ehrshot-train-data",
        "--source",
        str(snapshot),
        "--labeler",
        "new_hypertension",
        "--out",
        str(out),
    ]
    args += ["--per-label", "3", "--recipe", str(recipe), "--teacher-url", "http://127.0.0.1:9/v1"]
    result = runner.invoke(app, [*args, "--samples", "2"])
    assert result.exit_code == 0, result.output
    assert seen["teacher_url"] == "http://127.0.0.1:9/v1" and seen["settings"].samples == 2
    train = {
        json.loads(x)["metadata"]["subject_id"]
        for x in (out / TRAIN / "examples.jsonl").read_text().splitlines()
    }
    held = {
        json.loads(x)["metadata"]["subject_id"]
        for x in (out / "held_out" / "examples.jsonl").read_text().splitlines()
    }
    assert train and held and not train & held  # split by patient
    kept = [json.loads(x) for x in (out / WARMUP / "rationales.jsonl").read_text().splitlines()]
    assert len(kept) == 3 and all(r["target"]["label"] is True for r in kept)  # only the verified ones
    assert {r["metadata"]["explanation"] for r in kept} == {"The blood pressure is high."}
    assert "kept" in result.output
