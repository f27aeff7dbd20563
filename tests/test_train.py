"""Training: recipes validated before any model loads; real SFT and GRPO steps on a tiny model; resume."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ehrmind import register_task
from ehrmind.cli import app
from ehrmind.errors import ConfigError
from ehrmind.tasks.base import gold_completion
from ehrmind.tasks.medcalc import MedCalcTask
from ehrmind.train.recipe import load_recipe
from ehrmind.types import Score

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
CPU = {"bf16": False, "fp16": False, "use_cpu": True, "gradient_checkpointing": False, "report_to": "none"}


@pytest.fixture(scope="module")
def train_jsonl(tmp_path_factory) -> Path:
    from ehrmind.io import atomic_write_jsonl
    from ehrmind.tasks.medcalc.sample_rows import make_rows

    path = tmp_path_factory.mktemp("train") / "train.jsonl"
    atomic_write_jsonl(path, make_rows(24, seed=3))
    return path


def _recipe(
    tmp_path: Path, stage: str, data: Path, model: Path, out: Path, *, top: dict | None = None, **trl
) -> Path:
    body = {
        **(top or {}),
        "stage": stage,
        "task": "medcalc",
        "data": str(data),
        "model": str(model),
        "output_dir": str(out),
        "trl": {**CPU, "logging_steps": 1, "save_steps": 1000, **trl},
    }
    path = tmp_path / f"{stage}.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


# ------------------------------------------------------------------ recipes


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        # a typo in an ehrmind key names the key and suggests the right one
        pytest.param(["learnig_rate=1"], "unknown key 'learnig_rate'", id="unknown-top-level"),
        pytest.param(
            ["lora.rank=8"], "unknown key 'lora.rank'; known keys: enabled, r,", id="unknown-nested"
        ),
        # every TRL field is checked against TRL's own config class
        pytest.param(["trl.learnin_rate=1e-3"], "did you mean 'learning_rate'", id="unknown-trl"),
        pytest.param(
            ["trl.num_train_epochs=lots"], "trl.num_train_epochs = 'lots' has the wrong type", id="trl-type"
        ),
        pytest.param(["seed=abc"], "seed", id="wrong-type"),
        pytest.param(["trl.output_dir=x"], "top level", id="reserved-in-trl"),
    ],
)
def test_bad_sft_recipes_fail_with_a_fix(tmp_path, overrides, message):
    path = _recipe(tmp_path, "sft", Path("d.jsonl"), Path("m"), tmp_path / "o")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_recipe(path, overrides, stage="sft")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        # 6 completions per step cannot hold whole groups of 4
        pytest.param(
            ["trl.per_device_train_batch_size=6", "trl.num_generations=4"],
            "divisible by trl.num_generations",
            id="group-does-not-divide",
        ),
        pytest.param(["trl.num_generations=1"], ">= 2", id="group-of-one"),
        # KL is a penalty: a negative coefficient would reward drifting from the reference
        pytest.param(["trl.beta=-0.1"], "penalty", id="negative-kl"),
        pytest.param(["reward_weights.bad_format=1"], "bad_format <= wrong", id="format-bonus"),
        # vLLM's context must hold the longest kept prompt and its completion
        pytest.param(
            [
                "trl.use_vllm=true",
                "trl.vllm_max_model_length=100",
                "max_prompt_tokens=64",
                "trl.max_completion_length=64",
            ],
            "must hold the longest kept prompt and its completion: max_prompt_tokens 64",
            id="vllm-context-too-short",
        ),  # fmt: skip
        # TRL's colocated vLLM engine takes no revision: it would load the default one
        pytest.param(
            ["trl.use_vllm=true", "model_kwargs.revision=0123abc"],
            "colocated vLLM engine loads",
            id="vllm-revision",
        ),
        # TRL's own trust_remote_code (passed to vLLM) and the model ehrmind loads must agree
        pytest.param(
            ["trl.trust_remote_code=true", "model_kwargs.trust_remote_code=false"],
            "set it in one place",
            id="remote-code-conflict",
        ),
    ],
)
def test_bad_rl_recipes(tmp_path, overrides, message):
    path = _recipe(
        tmp_path,
        "rl",
        Path("d.jsonl"),
        Path("m"),
        tmp_path / "o",
        num_generations=4,
        per_device_train_batch_size=8,
    )
    with pytest.raises(ConfigError, match=message):
        load_recipe(path, overrides, stage="rl")


def test_bad_recipe_fails_before_the_model_loads(tmp_path):
    # the model folder does not exist: the error must be about the recipe, not the model
    path = _recipe(tmp_path, "rl", Path("d.jsonl"), tmp_path / "no-model", tmp_path / "o", num_generations=3)
    result = runner.invoke(app, ["rl", "--recipe", str(path)])
    assert result.exit_code == 2 and "divisible by trl.num_generations (3)" in result.output
    assert not (tmp_path / "o").exists()


def test_a_recipe_must_name_its_task(tmp_path):
    # no task is trained by default: the error names the file, the key to add and the registered tasks
    path = tmp_path / "sft.yaml"
    path.write_text(yaml.safe_dump({"stage": "sft", "data": "d.jsonl", "model": "m", "output_dir": "o"}))
    with pytest.raises(ConfigError) as err:
        load_recipe(path, stage="sft")
    assert str(path) in str(err.value) and "add `task: <name>`" in str(err.value)
    assert "medcalc" in str(err.value) and "trec_ct" in str(err.value)
    assert load_recipe(path, ["task=trec_ct"], stage="sft").task == "trec_ct"


def test_sft_data_calculators_is_read_as_subgroups(tmp_path, caplog):
    picked = {"sft_data": {"calculators": ["Anion Gap", "39"]}}
    path = _recipe(tmp_path, "sft", Path("d.jsonl"), Path("m"), tmp_path / "o", top=picked)
    with caplog.at_level(logging.WARNING, logger="ehrmind.train.recipe"):
        recipe = load_recipe(path, stage="sft")
    assert (
        recipe.sft_data.subgroups == ["Anion Gap", "39"] and "calculators" not in recipe.sft_data.model_dump()
    )
    assert "sft_data.calculators is deprecated" in caplog.text
    same = load_recipe(path, ["sft_data.subgroups=[Anion Gap, '39']"], stage="sft")
    assert same.sft_data.subgroups == ["Anion Gap", "39"]
    with pytest.raises(ConfigError, match="calculators is the old name of subgroups"):
        load_recipe(path, ["sft_data.subgroups=[Delta Gap]"], stage="sft")


def test_overrides_includes_and_two_stage_files(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(
        yaml.safe_dump(
            {
                "task": "medcalc",
                "data": "d.jsonl",
                "trl": {"logging_steps": 3},
                "sft": {"model": "m", "output_dir": "o/sft", "trl": {"learning_rate": 1e-4}},
                "rl": {"model": "o/sft", "output_dir": "o/rl", "trl": {"num_generations": 4}},
            }
        )
    )
    child = tmp_path / "child.yaml"
    child.write_text("include: base.yaml\nseed: 7\n")
    sft = load_recipe(child, ["trl.learning_rate=3e-3"], stage="sft")  # YAML reads 3e-3 as text: coerced
    assert sft.stage == "sft" and sft.seed == 7 and sft.trl == {"logging_steps": 3, "learning_rate": 0.003}
    rl = load_recipe(child, [], stage="rl")
    assert rl.model == "o/sft" and rl.trl["num_generations"] == 4
    with pytest.raises(ConfigError, match="several stages"):
        load_recipe(child)


def test_shipped_recipes_validate(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "8")
    for path in sorted((REPO / "recipes" / "medcalc").glob("*-instruct.yaml")):
        sft, rl = load_recipe(path, stage="sft"), load_recipe(path, stage="rl")
        assert (
            sft.trl["learning_rate"] == 2e-5
            and sft.trl["num_train_epochs"] == 2
            and sft.trl["max_length"] == 4096
        )
        assert rl.trl["num_generations"] == 12 and rl.trl["learning_rate"] == 1e-6 and rl.trl["beta"] == 0.001
        assert (
            rl.trl["temperature"] == 0.6
            and rl.trl["top_p"] == 0.95
            and rl.trl["max_completion_length"] == 1500
        )
        # 32 prompts × 12 samples per step on 8 GPUs
        t = rl.trl
        assert t["per_device_train_batch_size"] * 8 * t["steps_per_generation"] == 32 * 12
        # vLLM sizes its KV cache for the prompts and completions trained on, not the model's whole context
        assert t["vllm_max_model_length"] >= rl.max_prompt_tokens + t["max_completion_length"]
    for stage in ("sft", "rl"):
        assert load_recipe(REPO / "recipes" / "demo.yaml", stage=stage).trl["use_cpu"] is True


def test_shipped_recipes_print_and_send_nothing(monkeypatch):
    """Issue #26, item 3: base.yaml turned on log_completions (every prompt, note included, printed at each
    step). No shipped recipe prints notes or sends anything off the machine."""
    from ehrmind.train.recipe import privacy_warnings

    monkeypatch.setenv("WORLD_SIZE", "8")
    # every runnable recipe (base.yaml has no model: the medcalc model recipes include it)
    paths = [*(REPO / "recipes").glob("*.yaml"), *(REPO / "recipes" / "medcalc").glob("*-instruct.yaml"),
             *(REPO / "src" / "ehrmind" / "recipes").glob("*.yaml")]  # fmt: skip
    assert (
        len(paths) == 7
    )  # recipes: demo, pretrained, two medcalc models; the package: demo, pretrained, study
    for path in paths:
        for stage in ("sft", "rl"):
            assert privacy_warnings(load_recipe(path, stage=stage).trl) == [], (path, stage)


@pytest.mark.parametrize(
    ("trl", "named"),
    [
        ({}, []),  # nothing set: TRL's defaults as ehrmind passes them (report_to none)
        ({"report_to": "none", "log_completions": False, "push_to_hub": False}, []),
        ({"report_to": []}, []),
        ({"report_to": "tensorboard"}, []),  # local files
        (
            {"report_to": ["tensorboard", "wandb"]},
            ["report_to names wandb"],
        ),  # the tracker, not the local one
        ({"report_to": "mlflow"}, ["report_to names mlflow"]),
        ({"report_to": "all"}, ["report_to names all"]),  # every tracker installed
        ({"log_completions": True}, ["log_completions"]),  # prompts (notes) printed at each step
        ({"push_to_hub": True}, ["Hugging Face Hub"]),
        ({"hub_model_id": "me/medcalc"}, ["Hugging Face Hub as me/medcalc"]),
        ({"log_completions": True, "report_to": ["comet_ml"]}, ["log_completions", "comet_ml"]),
    ],
)
def test_privacy_warnings(trl, named):
    from ehrmind.train.recipe import privacy_warnings

    warnings = privacy_warnings(trl)
    assert len(warnings) == len(named) and all(n in w for n, w in zip(named, warnings, strict=True)), warnings


def test_run_start_warns_of_what_leaves_the_machine(tmp_path, caplog):
    import contextlib
    import importlib.util

    from ehrmind.train.run import start

    path = _recipe(tmp_path, "rl", Path("d.jsonl"), Path("m"), tmp_path / "o", num_generations=4,
                   per_device_train_batch_size=4, push_to_hub=True, report_to=["wandb"], log_completions=True)  # fmt: skip
    missing = importlib.util.find_spec("wandb") is None  # then the run stops: one line naming the package
    refused = pytest.raises(ConfigError, match=r"names wandb but it is not installed: pip install wandb")
    with (
        caplog.at_level("WARNING", logger="ehrmind.train.run"),
        refused if missing else contextlib.nullcontext(),
    ):
        start(load_recipe(path, stage="rl"))
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 3 and "push_to_hub" in warned[1] and "wandb" in warned[2], warned


def test_recipe_settings_reach_trl_without_the_renamed_checkpointing_warning(tmp_path):
    """transformers 5 warned on every run (a FutureWarning: `gradient_checkpointing` is deprecated) because
    the TRL config was built with the old name; ehrmind passes the new one. trust_remote_code reaches TRL's
    own field, which TRL passes to its colocated vLLM engine."""
    import warnings

    from trl import GRPOConfig

    from ehrmind.train.recipe import trl_kwargs

    path = _recipe(tmp_path, "rl", Path("d.jsonl"), Path("m"), tmp_path / "o", num_generations=4,
                   per_device_train_batch_size=4, gradient_checkpointing=True, vllm_max_model_length=512)  # fmt: skip
    recipe = load_recipe(path, ["model_kwargs.trust_remote_code=true"], stage="rl")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = GRPOConfig(**trl_kwargs(recipe))
    assert not [w for w in caught if "checkpointing" in str(w.message)], [str(w.message) for w in caught]
    assert config.gradient_checkpointing is True and config.activation_checkpointing is True
    assert config.trust_remote_code is True and config.vllm_max_model_length == 512


# ------------------------------------------------------------------ real training steps


def _weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def _changed(a: dict, b: dict) -> bool:
    import torch

    return any(not torch.equal(a[k], b[k]) for k in a)


def test_model_init_kwargs_are_honoured_or_refused(tmp_path, tiny_model, train_jsonl):
    """Issue #14, item 4: `trl.model_init_kwargs` was accepted and silently ignored (TRL gets a model
    object). ehrmind now passes them to `from_pretrained` itself, and refuses keys it does not pass."""
    from ehrmind.errors import ConfigError
    from ehrmind.train.recipe import trl_kwargs
    from ehrmind.train.run import prepare

    path = _recipe(tmp_path, "sft", train_jsonl, tiny_model, tmp_path / "o",
                   model_init_kwargs={"attn_implementation": "eager", "torch_dtype": "float64"})  # fmt: skip
    recipe = load_recipe(path, stage="sft")
    assert "model_init_kwargs" not in trl_kwargs(recipe)
    prepared = prepare(recipe)
    assert prepared.model.config._attn_implementation == "eager"
    assert next(prepared.model.parameters()).dtype == __import__("torch").float64
    bad = _recipe(
        tmp_path, "sft", train_jsonl, tiny_model, tmp_path / "o", model_init_kwargs={"device_map": "auto"}
    )
    with pytest.raises(ConfigError, match="device_map not supported"):  # before any model loads
        load_recipe(bad, stage="sft")


def test_sft_steps_change_weights_and_record_the_run(tmp_path, tiny_model, train_jsonl):
    out = tmp_path / "sft"
    path = _recipe(
        tmp_path,
        "sft",
        train_jsonl,
        tiny_model,
        out,
        learning_rate=1e-3,
        max_steps=3,
        per_device_train_batch_size=4,
        max_length=512,
    )
    result = runner.invoke(app, ["sft", "--recipe", str(path), "--set", "sft_data.per_category_cap=5"])
    assert result.exit_code == 0, result.output
    assert _changed(_weights(tiny_model), _weights(out))
    record = json.loads((out / "ehrmind_run.json").read_text())
    assert record["seed"] == 0 and len(record["data_sha256"]) == 64 and record["versions"]["trl"]
    assert record["recipe"]["sft_data"]["per_category_cap"] == 5 and record["data_counts"]["selected"] == 10
    history = json.loads((out / "log_history.json").read_text())
    assert [h["step"] for h in history if "loss" in h] == [1, 2, 3]


def test_sft_loss_is_on_the_completion_only(tmp_path, tiny_model, train_jsonl):
    from ehrmind.train.sft import build_sft_trainer

    path = _recipe(tmp_path, "sft", train_jsonl, tiny_model, tmp_path / "o", max_steps=1, max_length=512)
    trainer, prepared = build_sft_trainer(load_recipe(path, stage="sft"))
    row = trainer.train_dataset[0]
    ids, mask = row["input_ids"], [label != -100 for label in row["labels"]]  # TRL folds the mask into labels
    tok = prepared.tokenizer
    completion = tok.decode([i for i, m in zip(ids, mask, strict=True) if m])
    prompt = tok.decode([i for i, m in zip(ids, mask, strict=True) if not m])
    assert completion.startswith("<think>") and completion.endswith("</answer><|end|>")
    assert "Here is the patient note" in prompt and prompt.endswith("<|assistant|>\n")


@register_task("medcalc_parity")
class ParityTask(MedCalcTask):
    """MedCalc data with a verdict a random model meets about half the time (even-length completions), so a
    few GRPO steps see reward variance and really update the weights. Real MedCalc rewards are exercised by
    the demo, whose SFT-warmed model produces the output format."""

    def verify(self, example, completion):
        ok = len(completion) % 2 == 0
        return Score(
            format_ok=True,
            correct=ok,
            parsed=len(completion),
            reward=self.options.reward_weights.reward(True, ok),
        )


def test_grpo_steps_rewards_equal_verify(tmp_path, tiny_model, train_jsonl):
    from ehrmind import get_task
    from ehrmind.train.data import prompt_text
    from ehrmind.train.rl import build_rl_trainer
    from ehrmind.train.run import train_and_save

    out = tmp_path / "rl"
    path = _recipe(
        tmp_path,
        "rl",
        train_jsonl,
        tiny_model,
        out,
        learning_rate=1e-2,
        max_steps=2,
        per_device_train_batch_size=8,
        num_generations=8,
        max_completion_length=24,
        temperature=1.0,
        beta=0.01,
    )
    recipe = load_recipe(path, ["task=medcalc_parity"], stage="rl")
    trainer, prepared = build_rl_trainer(recipe)
    assert [f.__name__ for f in trainer.reward_funcs] == ["format_reward", "correctness_reward"]
    train_and_save(trainer, recipe, prepared)
    assert _changed(_weights(tiny_model), _weights(out))
    task = get_task("medcalc_parity")
    by_prompt = {prompt_text(prepared.tokenizer, task, ex): ex for ex in prepared.examples}
    logs = trainer._logs  # what TRL logged for each completion
    assert len(logs["completion"]) == 8  # TRL keeps the last generation batch
    rewards = []
    for i, (prompt, completion) in enumerate(zip(logs["prompt"], logs["completion"], strict=True)):
        score = task.verify(by_prompt[prompt], completion)
        total = logs["rewards"]["format_reward"][i] + logs["rewards"]["correctness_reward"][i]
        assert total == pytest.approx(score.reward)
        rewards.append(total)
    assert len(set(rewards)) == 2  # both verdicts occurred, so the update had a signal
    history = json.loads((out / "log_history.json").read_text())
    assert all("rewards/format_reward/mean" in h and "kl" in h for h in history if "reward" in h)
    # issue #15, item 3: the training report shows what TRL logged, per step
    report = (out / "training.md").read_text()
    logged = [h for h in history if "reward" in h]
    for key in ("kl", "completions/mean_length", "completions/clipped_ratio", "frac_reward_zero_std",
                "rewards/format_reward/mean", "rewards/correctness_reward/mean"):  # fmt: skip
        row = next(line for line in report.splitlines() if line.startswith(f"| {key} |"))
        assert row.split(" | ")[2] == f"{logged[-1][key]:.4g}", (key, row)  # the last logged value
    assert report.startswith("# Training: rl\n") and f"Model `{tiny_model}`" in report
    assert (out / "training.png").stat().st_size > 5000


def test_training_report_from_a_hand_written_history(tmp_path):
    from ehrmind.train.report import write_training_report

    history = [
        {"step": 1, "loss": 0.5, "reward": -2.0, "rewards/format_reward/mean": -2.0, "kl": 0.0, "frac_reward_zero_std": 1.0},
        {"step": 2, "loss": 0.4, "reward": -1.0, "rewards/format_reward/mean": -1.5, "kl": 0.02, "frac_reward_zero_std": 0.5},
        {"step": 2, "train_runtime": 3.0, "train_loss": 0.45},  # the final summary: not a step
    ]  # fmt: skip
    path = write_training_report(tmp_path, history, stage="rl", model="runs/sft", data="data/train.jsonl")
    text = path.read_text()
    assert "| kl | 0 | 0.02 | 0 | 0.02 | 2 |" in text and "| reward | -2 | -1 | -2 | -1 | 2 |" in text
    assert "train_runtime" not in text and "On average **75%** of GRPO groups" in text
    assert "Model `runs/sft`, data `data/train.jsonl`, 2 steps" in text
    assert (
        write_training_report(tmp_path / "none", [{"train_runtime": 1.0}], stage="sft", model="m", data="d")
        is None
    )


def test_medcalc_reward_components_sum_to_score_reward(train_jsonl):
    from ehrmind import get_task
    from ehrmind.rewards.trl import reward_functions

    task = get_task("medcalc")
    examples = task.load(train_jsonl)[:3]
    fmt, correct = reward_functions(task, examples)
    ex = examples[0]
    completions = [
        gold_completion(task, ex, "r"),  # right and well-formed: 1.1
        '<think>r</think><answer>{"answer": -1}</answer>',  # well-formed, wrong: 0
        '{"answer": 1}',  # no contract: -2
    ]
    ids = [ex.id] * 3
    totals = [a + b for a, b in zip(fmt(completions, ids), correct(completions, ids), strict=True)]
    assert totals == [task.verify(ex, c).reward for c in completions] == [1.1, 0.0, -2.0]


@pytest.mark.slow  # a real training process killed mid-run (in-process: test_half_written_checkpoint…)
def test_killed_sft_run_resumes_from_its_last_checkpoint(tmp_path, tiny_model, train_jsonl):
    out = tmp_path / "sft"
    path = _recipe(
        tmp_path,
        "sft",
        train_jsonl,
        tiny_model,
        out,
        learning_rate=1e-3,
        max_steps=40,
        per_device_train_batch_size=2,
        save_steps=2,
        max_length=512,
    )
    cmd = [sys.executable, "-m", "ehrmind", "sft", "--recipe", str(path)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline and not (out / "checkpoint-6" / "trainer_state.json").exists():
            if proc.poll() is not None:
                pytest.fail("training finished before it could be killed")
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = sorted(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*"))
    assert done and done[-1] < 40
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "resuming from" in result.stderr + result.stdout
    state = json.loads((out / f"checkpoint-{40}" / "trainer_state.json").read_text())
    assert state["global_step"] == 40
    steps = [h["step"] for h in json.loads((out / "log_history.json").read_text()) if "loss" in h]
    assert steps == list(range(1, 41))  # the counter continued: every step once, none repeated


@pytest.mark.slow  # `accelerate launch` of two processes
def test_accelerate_two_cpu_processes(tmp_path, tiny_model, train_jsonl):
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    if accelerate is None:
        pytest.skip("accelerate's launcher is not installed")
    out = tmp_path / "rl"
    path = _recipe(
        tmp_path,
        "rl",
        train_jsonl,
        tiny_model,
        out,
        learning_rate=1e-3,
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=16,
    )
    cmd = [
        accelerate,
        "launch",
        "--config_file",
        str(REPO / "recipes/accelerate/cpu2.yaml"),
        "-m",
        "ehrmind",
        "rl",
        "--recipe",
        str(path),
    ]
    result = subprocess.run(
        cmd, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((out / "ehrmind_run.json").read_text())
    assert record["recipe"]["stage"] == "rl" and record["num_processes"] == 2
    history = json.loads((out / "log_history.json").read_text())
    assert [h["step"] for h in history if "reward" in h] == [1, 2]


def _launch(config: str, stage: str, recipe: Path) -> subprocess.CompletedProcess:
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    if accelerate is None:
        pytest.skip("accelerate's launcher is not installed")
    cmd = [accelerate, "launch", "--config_file", config, "-m", "ehrmind", stage, "--recipe", str(recipe)]
    return subprocess.run(
        cmd, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=900
    )


@pytest.mark.slow  # two 2-process launches: about 40 s each
@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_two_process_sft_then_grpo_saves_models_the_next_stage_loads(tmp_path, tiny_model, train_jsonl, lora):
    """Issue #14: the final save ran `save_pretrained` on rank 0 only (empty shards under ZeRO-3/FSDP) and the
    LoRA merge likewise. Now every rank calls `Trainer.save_model`; here two CPU processes (gloo) train SFT,
    save, and GRPO starts from that folder, on both ranks, and saves a model that loads."""
    from transformers import AutoModelForCausalLM

    sft, rl = tmp_path / "sft", tmp_path / "rl"
    top = {"lora": {"enabled": True, "r": 4, "alpha": 8}} if lora else None
    sft_recipe = _recipe(tmp_path, "sft", train_jsonl, tiny_model, sft, top=top, learning_rate=1e-2, max_steps=2,
                         per_device_train_batch_size=2, max_length=256)  # fmt: skip
    result = _launch(str(REPO / "recipes/accelerate/cpu2.yaml"), "sft", sft_recipe)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((sft / "ehrmind_run.json").read_text())["num_processes"] == 2
    saved = AutoModelForCausalLM.from_pretrained(sft)  # a plain model folder (LoRA merged in)
    assert _changed(_weights(tiny_model), _weights(sft)) and not (sft / "adapter_config.json").exists()
    assert (sft / "adapter" / "adapter_config.json").exists() is lora
    rl_recipe = _recipe(tmp_path, "rl", train_jsonl, sft, rl, learning_rate=1e-3, max_steps=1,
                        per_device_train_batch_size=4, num_generations=4, max_completion_length=8)  # fmt: skip
    result = _launch(str(REPO / "recipes/accelerate/cpu2.yaml"), "rl", rl_recipe)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((rl / "ehrmind_run.json").read_text())
    assert record["num_processes"] == 2 and record["recipe"]["model"] == str(
        sft
    )  # GRPO started from the SFT save
    assert [h["step"] for h in json.loads((rl / "log_history.json").read_text()) if "reward" in h] == [1]
    assert AutoModelForCausalLM.from_pretrained(rl).config.vocab_size == saved.config.vocab_size


@pytest.mark.skipif(
    not __import__("torch").cuda.is_available() or __import__("torch").cuda.device_count() < 2,
    reason="GPU-only: DeepSpeed ZeRO-3 / FSDP saves need 2 CUDA devices (and deepspeed for ZeRO-3)",
)
@pytest.mark.parametrize("config", ["zero3.yaml", "fsdp.yaml"])
def test_sharded_training_saves_a_loadable_model_on_gpus(tmp_path, tiny_model, train_jsonl, config):
    """The ZeRO-3 and FSDP final saves (issue #14), unchanged where GPUs exist; skipped on CPU."""
    import torch
    from transformers import AutoModelForCausalLM

    if config == "zero3.yaml":
        pytest.importorskip("deepspeed", reason="ZeRO-3 needs `pip install deepspeed`")
    text = (REPO / "recipes/accelerate" / config).read_text()
    cfg = tmp_path / config
    cfg.write_text(text.replace("num_processes: 8", f"num_processes: {torch.cuda.device_count()}"))
    out = tmp_path / "sft"
    recipe = _recipe(tmp_path, "sft", train_jsonl, tiny_model, out, learning_rate=1e-3, max_steps=2,
                     per_device_train_batch_size=2, max_length=256)  # fmt: skip
    result = _launch(str(cfg), "sft", recipe)
    assert result.returncode == 0, result.stderr[-3000:]
    model = AutoModelForCausalLM.from_pretrained(out)
    assert all(p.numel() > 0 for p in model.parameters()) and _changed(_weights(tiny_model), _weights(out))


# ------------------------------------------------------------------ other tasks through the same commands


@pytest.mark.slow  # SFT then GRPO on two more tasks (about 16 s)
@pytest.mark.parametrize("task", ["trec_ct", "ehrshot"])
def test_sft_and_rl_take_other_tasks(task, tmp_path, tiny_model):
    """`ehrmind sft` and `ehrmind rl` with --task trec_ct / ehrshot on data built from the shared samples."""
    from conftest import SHARED_DATA, shared_file

    if task == "trec_ct":
        source = shared_file(SHARED_DATA / "trec_ct" / "official" / "qrels2021.txt").parent.parent
        extra: list[str] = []
    else:
        source = shared_file(
            SHARED_DATA / "ehr_samples" / "mimic_iv_demo_meds" / "mimic_iv_demo_meds_events.parquet"
        )
        extra = ["--labeler", "new_hypertension", "--set", "max_tokens=300"]
    data = tmp_path / "data"
    result = runner.invoke(app, ["data", "--task", task, "--source", str(source), "--out", str(data), *extra])
    assert result.exit_code == 0, result.output
    train = data / ("train.jsonl" if task == "trec_ct" else "examples.jsonl")
    common = {"limit": 8, "max_prompt_tokens": 1800}
    for stage, trl, overrides in (
        (
            "sft",
            {"max_steps": 1, "per_device_train_batch_size": 2, "max_length": 2048},
            ["task_options.mode=direct"],
        ),
        (
            "rl",
            {
                "max_steps": 1,
                "per_device_train_batch_size": 4,
                "num_generations": 4,
                "max_completion_length": 8,
            },
            [],
        ),
    ):
        out = tmp_path / stage
        path = _recipe(tmp_path, stage, train, tiny_model, out, **trl)
        args = [
            stage,
            "--recipe",
            str(path),
            "--set",
            f"task={task}",
            *[f"--set={k}={v}" for k, v in common.items()],
        ]
        result = runner.invoke(app, [*args, *(f"--set={o}" for o in overrides)])
        assert result.exit_code == 0, result.output
        record = json.loads((out / "ehrmind_run.json").read_text())
        assert record["recipe"]["task"] == task and record["data_counts"]["kept"] > 0


def test_half_written_checkpoint_is_skipped_on_resume(tmp_path, tiny_model, train_jsonl, caplog):
    """Issue #16, cause 3: a run killed while writing a checkpoint left a folder without trainer_state.json
    (the Trainer writes it last); every rerun picked it and died with "Can't find a valid checkpoint"."""
    from ehrmind.train.run import last_checkpoint
    from ehrmind.train.sft import run_sft

    out = tmp_path / "sft"
    path = _recipe(
        tmp_path, "sft", train_jsonl, tiny_model, out,
        learning_rate=1e-3, max_steps=4, per_device_train_batch_size=2, save_steps=2, max_length=512,
    )  # fmt: skip
    run_sft(load_recipe(path))
    # what a kill during the step-4 save leaves: the model written, the trainer state cut short
    (out / "checkpoint-4" / "trainer_state.json").write_text('{"global_step": 4, "log_hi')
    for name in ("log_history.json", "config.json", "trainer_state.json"):  # the final save never happened
        (out / name).unlink()
    with caplog.at_level("WARNING", logger="ehrmind.train.run"):
        assert last_checkpoint(out) == str(out / "checkpoint-2")
    assert "checkpoint-4 is incomplete" in caplog.text
    run_sft(load_recipe(path))  # resumes from step 2 and saves step 4 again
    state = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4 and (out / "config.json").exists()
    steps = [h["step"] for h in json.loads((out / "log_history.json").read_text()) if "loss" in h]
    assert steps == [1, 2, 3, 4]


# ------------------------------------------------------------------ a run already trained (issue #26, item 7)


def _files(out: Path) -> dict[str, bytes]:
    return {
        name: (out / name).read_bytes()
        for name in ("ehrmind_run.json", "model.safetensors", "log_history.json")
    }


def test_a_trained_run_says_so_and_keeps_its_record(tmp_path, tiny_model, train_jsonl):
    """`ehrmind sft` again on a finished output_dir resumed it and trained nothing, rewriting its run record;
    with a lower max_steps it ran one step at learning rate 0. Now a run at (or past) its planned steps says
    so and leaves the folder as it is; a higher max_steps trains on; a run stopped before its final save says
    where its model is (the Trainer would train one more step to save it), its record untouched."""
    out = tmp_path / "sft"
    path = _recipe(tmp_path, "sft", train_jsonl, tiny_model, out, learning_rate=1e-3, num_train_epochs=1,
                   per_device_train_batch_size=8, max_length=512)  # fmt: skip
    cmd = ["sft", "--recipe", str(path), "--set", "limit=16"]  # 16 rows, 8 per step: 2 steps in the epoch
    assert runner.invoke(app, cmd).exit_code == 0
    before, mtime = _files(out), (out / "ehrmind_run.json").stat().st_mtime_ns
    # TRL's model card named the base model "[None]" (a local folder): it names the folder now
    card = (out / "README.md").read_text()
    assert "[None]" not in card and f"fine-tuned version of the local model `{tiny_model}`" in card

    for extra, said in (([], "(step 2)"), (["--set", "trl.max_steps=1"], "(step 2, past the 1 planned)")):
        result = runner.invoke(app, [*cmd, *extra])
        assert result.exit_code == 0, result.output
        assert f"{out} is already trained {said}: nothing to train" in result.output
        assert _files(out) == before and (out / "ehrmind_run.json").stat().st_mtime_ns == mtime

    result = runner.invoke(app, [*cmd, "--set", "trl.max_steps=3"])  # one step more
    assert result.exit_code == 0 and "already trained" not in result.output, result.output
    history = json.loads((out / "log_history.json").read_text())
    assert [h["step"] for h in history if "loss" in h] == [1, 2, 3]
    record = (out / "ehrmind_run.json").read_bytes()
    assert json.loads(record)["recipe"]["trl"]["max_steps"] == 3 and record != before["ehrmind_run.json"]

    # stopped after its last checkpoint (step 3), before the final save: said, nothing trained or written
    for name in ("trainer_state.json", "model.safetensors", "log_history.json"):
        (out / name).unlink()
    mtime = (out / "ehrmind_run.json").stat().st_mtime_ns
    result = runner.invoke(app, cmd)  # its one epoch is 2 steps: the checkpoint at step 3 is past it
    assert result.exit_code == 2, result.output
    assert f"{out / 'checkpoint-3'} holds the last step (3, past the 2 planned)" in result.output
    assert "final save" in result.output and not (out / "model.safetensors").exists()
    assert (out / "ehrmind_run.json").stat().st_mtime_ns == mtime and (
        out / "ehrmind_run.json"
    ).read_bytes() == record


def test_grpo_with_a_lower_max_steps_trains_nothing(tmp_path, tiny_model, train_jsonl):
    """The README's `ehrmind rl --set trl.max_steps=10` on a run already past step 10 ran one step at learning
    rate 0 and rewrote the run record to say max_steps 10."""
    out = tmp_path / "rl"
    path = _recipe(tmp_path, "rl", train_jsonl, tiny_model, out, learning_rate=1e-3, max_steps=2,
                   per_device_train_batch_size=4, num_generations=4, max_completion_length=8)  # fmt: skip
    assert runner.invoke(app, ["rl", "--recipe", str(path)]).exit_code == 0
    before, mtime = _files(out), (out / "ehrmind_run.json").stat().st_mtime_ns
    result = runner.invoke(app, ["rl", "--recipe", str(path), "--set", "trl.max_steps=1"])
    assert result.exit_code == 0, result.output
    assert f"{out} is already trained (step 2, past the 1 planned)" in result.output
    assert _files(out) == before and (out / "ehrmind_run.json").stat().st_mtime_ns == mtime


def test_model_card_names_the_hub_model_a_folder_comes_from(tmp_path):
    from ehrmind.train.run import NO_BASE, RUN_RECORD, base_model, name_base_model

    sft, rl = tmp_path / "sft", tmp_path / "rl"
    for folder, model in ((sft, "Qwen/Qwen2.5-3B-Instruct"), (rl, str(sft))):
        folder.mkdir()
        (folder / RUN_RECORD).write_text(json.dumps({"model": model}))
    assert base_model(str(rl)) == ("Qwen/Qwen2.5-3B-Instruct", [str(rl), str(sft)])
    assert base_model("Qwen/Qwen2.5-3B-Instruct") == ("Qwen/Qwen2.5-3B-Instruct", [])
    built = tmp_path / "smollm2"  # a folder `ehrmind get-model` built names its Hub model
    built.mkdir()
    (built / "ehrmind_model.json").write_text(json.dumps({"hub_id": "HuggingFaceTB/SmolLM2-135M-Instruct"}))
    assert base_model(str(built)) == ("HuggingFaceTB/SmolLM2-135M-Instruct", [str(built)])
    card = tmp_path / "README.md"
    card.write_text(
        f"---\nlibrary_name: transformers\n---\n\nThis model is a fine-tuned version of {NO_BASE}.\n"
    )
    name_base_model(card, str(rl))
    text = card.read_text()
    assert "base_model: Qwen/Qwen2.5-3B-Instruct" in text
    assert (
        f"[Qwen/Qwen2.5-3B-Instruct](https://huggingface.co/Qwen/Qwen2.5-3B-Instruct), through `{rl}` → `{sft}`"
        in text
    )
