"""verl export: train/val parquet, a launch script mirroring the recipe, and compute_score = Task.verify.

Issue #26 (4): every GRPO setting mirrored or refused with its reason (table-driven over `verl_mirror`), paths
absolute, and the way back from verl's checkpoints to a folder `ehrmind eval` loads.

The slow tests run verl itself in the separate verl venv (`make verl-venv`): its config, validation, learning
rate scheduler, dataset class, reward manager, ehrmind's prefill agent loop and its model merger on a real
FSDP checkpoint; they skip when that venv is absent."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import ehrmind.rewards.verl as reward_module
from ehrmind import get_task
from ehrmind.cli import app
from ehrmind.rewards.verl import PREFILL_AGENT, compute_score, verl_rows
from ehrmind.tasks.base import gold_completion
from ehrmind.train.recipe import load_recipe
from ehrmind.train.verl_launch import script_overrides, split_train_val
from ehrmind.train.verl_mirror import ENGINE, MIRRORED, NO_DUAL_CLIP, Inputs, accept, grpo_settings, mirror
from ehrmind.types import Example

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "medcalc" / "qwen2.5-3b-instruct.yaml"
DEMO = REPO / "recipes" / "demo.yaml"
CONSTANT = ("--set", "trl.lr_scheduler_type=constant")  # TRL's default (linear decay) has no verl counterpart
PAPER = ("--allow-unmirrored", "trl.lr_scheduler_type")  # the paper recipe's linear decay, accepted


@pytest.fixture(scope="module")
def synthetic_60(tmp_path_factory) -> Path:
    """60 MedCalc rows: enough for one step of the paper recipe's 32 prompts after the held-out share."""
    import pandas as pd

    from ehrmind.tasks.medcalc.sample_rows import make_rows

    path = tmp_path_factory.mktemp("data60") / "synthetic60.csv"
    pd.DataFrame(make_rows(60, seed=1)).to_csv(path, index=False)
    return path


def export(*args: str) -> str:
    result = CliRunner().invoke(app, ["export-verl", *args])
    assert result.exit_code == 0, result.output
    return result.output


def rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def completions(task, ex) -> list[str]:
    return [
        gold_completion(task, ex, "r"),  # gold answer in the contract
        'x</think><answer>{"answer": -1}</answer>',  # wrong answer
        "no",  # bad format
    ]


def test_train_and_val_are_written_and_disjoint(tmp_path, synthetic_csv):
    out = tmp_path / "verl"
    export(
        "--task",
        "medcalc",
        "--data",
        str(synthetic_csv),
        "--out",
        str(out),
        "--val-fraction",
        "0.25",
        *CONSTANT,
    )
    train, val = rows(out / "train.parquet"), rows(out / "val.parquet")
    assert len(train) + len(val) == 20 and len(val) >= 5
    notes = [
        {json.loads(r["extra_info"]["example"])["metadata"]["note_id"] for r in part} for part in (train, val)
    ]
    assert not notes[0] & notes[1]  # grouped by note: no item leaks across
    assert {r["extra_info"]["split"] for r in val} == {"val"}
    assert json.loads((out / "export.json").read_text())["val"] == "note_id"
    # the same seed gives the same split
    again = tmp_path / "again"
    export(
        "--task",
        "medcalc",
        "--data",
        str(synthetic_csv),
        "--out",
        str(again),
        "--val-fraction",
        "0.25",
        *CONSTANT,
    )
    assert [r["extra_info"]["id"] for r in rows(again / "val.parquet")] == [
        r["extra_info"]["id"] for r in val
    ]


def test_a_non_empty_folder_needs_overwrite(tmp_path, synthetic_csv):
    out = tmp_path / "verl"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    args = ["export-verl", "--task", "medcalc", "--data", str(synthetic_csv), "--out", str(out), *CONSTANT]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert (out / "keep.txt").exists()
    export(*args[1:], "--overwrite")
    assert not (out / "keep.txt").exists() and (out / "run_verl.sh").exists()


def test_split_keeps_groups_together():
    examples = [
        Example(id=str(i), task="medcalc", input={}, target={}, metadata={"note_id": f"n{i // 3}"})
        for i in range(30)
    ]
    fields = get_task("medcalc").groups.split
    train, val, field = split_train_val(examples, 0.2, seed=3, fields=fields)
    assert field == "note_id" and len(train) + len(val) == 30
    assert not {e.metadata["note_id"] for e in train} & {e.metadata["note_id"] for e in val}
    assert split_train_val(examples, 0.2, seed=3, fields=fields)[1] == val


def paper_export(out: Path, data: Path, model: Path) -> str:
    """The paper recipe's export of `data` for `model` (its settings verl cannot mirror accepted)."""
    return export(
        "--recipe", str(RECIPE), "--data", str(data), "--model", str(model), "--out", str(out), *PAPER
    )


def test_launch_script_holds_the_recipe_settings(tmp_path, synthetic_60, tiny_model):
    out = tmp_path / "verl"
    printed = paper_export(out, synthetic_60, tiny_model)
    script = (out / "run_verl.sh").read_text()
    o = script_overrides(script)
    trl = load_recipe(RECIPE, stage="rl").trl
    assert int(o["actor_rollout_ref.rollout.n"]) == trl["num_generations"] == 12
    assert float(o["actor_rollout_ref.actor.optim.lr"]) == trl["learning_rate"]
    assert o["actor_rollout_ref.actor.use_kl_loss"] == "true"
    assert float(o["actor_rollout_ref.actor.kl_loss_coef"]) == trl["beta"]
    # the paper's k3 as is (the recipe turns TRL's bias correction off), as its verl script ran it
    assert o["actor_rollout_ref.actor.kl_loss_type"] == "low_var_kl" and not trl["use_bias_correction_kl"]
    assert float(o["actor_rollout_ref.actor.clip_ratio_low"]) == trl["epsilon"]
    assert float(o["actor_rollout_ref.actor.clip_ratio_high"]) == trl["epsilon"]
    assert float(o["actor_rollout_ref.rollout.temperature"]) == trl["temperature"]
    assert float(o["actor_rollout_ref.rollout.top_p"]) == trl["top_p"]
    assert int(o["data.max_response_length"]) == trl["max_completion_length"]
    assert int(o["data.train_batch_size"]) == 32  # 12 per device × 8 GPUs × 4 steps / 12 samples
    assert o["algorithm.adv_estimator"] == "grpo"
    # vLLM generation: TRL's sequence-level importance-sampling mask (ratio ≤ 3), as verl's IcePop bounds
    assert o["algorithm.rollout_correction.rollout_is"] == "sequence"
    assert o["algorithm.rollout_correction.rollout_is_threshold"] == "'1e-30_3'"
    assert float(o["actor_rollout_ref.actor.optim.weight_decay"]) == 0.0  # TRL's 0, not verl's 0.01
    assert o["actor_rollout_ref.model.path"] == "$MODEL" and f"EXPORTED_MODEL={tiny_model}\n" in script
    # the real longest prompt, counted with the model's tokenizer as `ehrmind rl` counts it
    from transformers import AutoTokenizer

    from ehrmind.train.data import prompt_text

    tok = AutoTokenizer.from_pretrained(tiny_model)
    task = get_task("medcalc", prefill=True)
    lengths = [len(tok(prompt_text(tok, task, ex))["input_ids"]) for ex in task.load(synthetic_60)]
    assert int(o["data.max_prompt_length"]) == max(lengths)
    assert "measured with the tokenizer" in script and "measured with the tokenizer" in printed
    # the reward function is the installed ehrmind's compute_score
    path = Path(o["reward.custom_reward_function.path"])
    assert path.is_absolute() and path.exists() and path == Path(reward_module.__file__).resolve()
    assert o["reward.custom_reward_function.name"] == "compute_score"
    assert "pip install 'verl[vllm]==0.9.1'" in script
    assert o["actor_rollout_ref.rollout.agent.agent_loop_config_path"] == str(out / "agent_loops.yaml")


def test_beta_zero_turns_the_kl_loss_off(tmp_path, synthetic_csv):
    out = tmp_path / "verl"
    export(
        "--recipe",
        str(RECIPE),
        "--set",
        "trl.beta=0",
        "--data",
        str(synthetic_csv),
        "--out",
        str(out),
        "--gpus",
        "1",
        *PAPER,
    )
    o = script_overrides((out / "run_verl.sh").read_text())
    assert o["actor_rollout_ref.actor.use_kl_loss"] == "false"


def test_prompt_length_without_a_tokenizer_is_flagged_as_an_estimate(tmp_path, synthetic_csv):
    out = tmp_path / "verl"
    printed = export("--task", "medcalc", "--data", str(synthetic_csv), "--out", str(out), *CONSTANT)
    assert "ESTIMATED" in printed and "ESTIMATED" in (out / "run_verl.sh").read_text()
    assert json.loads((out / "export.json").read_text())["prompt_lengths"]["measured"] is False
    assert "set MODEL" in (out / "run_verl.sh").read_text()  # no model known: the script asks for one


def test_export_and_score_round_trip(tmp_path, synthetic_csv):
    out = tmp_path / "verl"
    export("--task", "medcalc", "--data", str(synthetic_csv), "--out", str(out), *CONSTANT)
    train = rows(out / "train.parquet")
    assert train[0]["data_source"] == "ehrmind/medcalc"
    assert [m["role"] for m in train[0]["prompt"]] == ["system", "user"]
    task = get_task("medcalc")
    examples = {ex.id: ex for ex in task.load(synthetic_csv)}
    for row in train[:5]:
        ex = examples[row["extra_info"]["id"]]
        for completion in completions(task, ex):
            got = compute_score(
                row["data_source"], completion, row["reward_model"]["ground_truth"], row["extra_info"]
            )
            assert got["score"] == task.verify(ex, completion).reward


def test_prefill_round_trips_through_compute_score(tmp_path, synthetic_csv):
    out = tmp_path / "verl"
    export("--task", "medcalc", "--data", str(synthetic_csv), "--prefill", "--out", str(out), *CONSTANT)
    task = get_task("medcalc", prefill=True)
    examples = {ex.id: ex for ex in task.load(synthetic_csv)}
    for row in rows(out / "train.parquet")[:5]:
        # verl renders the prompt itself: system and user turns; ehrmind's agent loop appends the prefill
        assert [m["role"] for m in row["prompt"]] == ["system", "user"]
        assert row["agent_name"] == PREFILL_AGENT and row["extra_info"]["prefill"] == task.contract.prefill
        ex = examples[row["extra_info"]["id"]]
        rewards = []
        for completion in completions(task, ex):  # what the model generates after the prefill
            got = compute_score(row["data_source"], completion, "", row["extra_info"])
            assert got["score"] == task.verify(ex, completion).reward
            rewards.append(got["score"])
        assert rewards == [1.1, 0.0, -2.0]
    assert (out / "agent_loops.yaml").read_text().count("ehrmind.rewards.verl_agent.PrefillAgentLoop") == 1


def test_direct_mode_is_kept(synthetic_csv):
    task = get_task("medcalc", mode="direct")
    ex = task.load(synthetic_csv)[0]
    row = verl_rows(task, [ex])[0]
    assert compute_score(row["data_source"], gold_completion(task, ex), "", row["extra_info"])["score"] == 1.1
    assert json.loads(row["extra_info"]["task_options"])["mode"] == "direct"
    assert "agent_name" not in row


# ---------------------------------------------------------------- faithful or loud (issue #26, 4)

DEMO_LIKE = {  # one generation batch per optimizer step, as in the shipped recipes
    "per_device_train_batch_size": 8,
    "gradient_accumulation_steps": 8,
    "num_generations": 8,
    "lr_scheduler_type": "constant",
    "max_steps": 20,
}
A, OPT, ALG = "actor_rollout_ref.actor.", "actor_rollout_ref.actor.optim.", "algorithm."


def mirrored(n_train: int = 64, **trl):
    """The verl overrides for DEMO_LIKE + `trl` on 1 GPU (what `export-verl --gpus 1` computes)."""
    settings = {**DEMO_LIKE, **trl}
    return mirror(
        Inputs(trl=grpo_settings(settings), given=frozenset(settings), gpus=1, n_train=n_train, seed=3)
    )


def test_every_grpo_setting_is_mirrored_or_declared_and_documented():
    import dataclasses

    from trl import GRPOConfig

    fields = {f.name for f in dataclasses.fields(GRPOConfig) if f.init}
    owned = [name for names in MIRRORED.values() for name in names]
    assert len(owned) == len(set(owned)) and not set(owned) & set(ENGINE)  # one declaration per field
    assert set(owned) | set(ENGINE) == fields  # a TRL upgrade's new field fails here until placed
    doc = (REPO / "docs" / "verl.md").read_text()
    assert [f for f in sorted(fields) if f"`{f}`" not in doc] == []


MIRRORS = [
    # (recipe trl settings over DEMO_LIKE, overrides verl must get)
    ({}, {OPT + "weight_decay": 0.0, OPT + "lr_scheduler_type": "constant", OPT + "lr_warmup_steps": 0}),
    (
        {},
        {"trainer.total_training_steps": 20, "trainer.total_epochs": 3, "data.train_batch_size": 8},
    ),  # 64 // 8
    ({}, {ALG + "norm_adv_by_std_in_grpo": True, A + "loss_agg_mode": "token-mean"}),  # group, dapo: TRL's
    (
        {},
        {
            A + "clip_ratio_c": NO_DUAL_CLIP,
            A + "use_kl_loss": False,
            ALG + "rollout_correction.rollout_is": None,
        },
    ),
    # two optimizer steps per generation: half the verl steps, mini-batches of half the prompts
    ({"steps_per_generation": 16}, {"trainer.total_training_steps": 10, A + "ppo_mini_batch_size": 8}),
    ({"num_iterations": 2}, {A + "ppo_epochs": 2, "trainer.total_training_steps": 10}),
    (
        {"max_steps": -1, "num_train_epochs": 2},
        {"trainer.total_training_steps": 16, "trainer.total_epochs": 2},
    ),
    # schedules transformers builds, in verl's terms; a warmup share rounds up as TrainingArguments does
    (
        {"lr_scheduler_type": "cosine", "warmup_steps": 0.13},
        {OPT + "lr_scheduler_type": "cosine", OPT + "lr_warmup_steps": 3},
    ),
    (
        {"lr_scheduler_type": "constant_with_warmup", "warmup_steps": 4},
        {OPT + "lr_scheduler_type": "constant", OPT + "lr_warmup_steps": 4},
    ),
    (
        {"lr_scheduler_type": "constant", "warmup_steps": 4},
        {OPT + "lr_warmup_steps": 0},
    ),  # HF's constant ignores it
    (
        {"lr_scheduler_type": "cosine_with_min_lr", "lr_scheduler_kwargs": {"min_lr_rate": 0.1}},
        {OPT + "lr_scheduler_type": "cosine", OPT + "min_lr_ratio": 0.1},
    ),
    ({"adam_beta2": 0.99, "max_grad_norm": 0.5}, {OPT + "betas": [0.9, 0.99], OPT + "clip_grad": 0.5}),
    ({"adam_epsilon": 1e-6}, {OPT + "override_optimizer_config": {"eps": 1e-6}}),
    ({"scale_rewards": "none"}, {ALG + "norm_adv_by_std_in_grpo": False}),
    ({"scale_rewards": False}, {ALG + "norm_adv_by_std_in_grpo": False}),  # TRL's old boolean spelling
    (
        {"loss_type": "grpo"},
        {A + "loss_agg_mode": "seq-mean-token-mean", A + "policy_loss.loss_mode": "vanilla"},
    ),
    (
        {"loss_type": "dr_grpo", "max_completion_length": 300},
        {A + "loss_agg_mode": "seq-mean-token-sum-norm", A + "loss_scale_factor": 300},
    ),
    ({"loss_type": "grpo", "importance_sampling_level": "sequence"}, {A + "policy_loss.loss_mode": "gspo"}),
    ({"loss_type": "sapo"}, {A + "policy_loss.loss_mode": "sapo", A + "tau_pos": 1.0, A + "tau_neg": 1.05}),
    (
        {"loss_type": "cispo", "epsilon_high": 5.0},
        {A + "clip_ratio_low": 1.0, A + "clip_ratio_high": 4.0},
    ),  # cap at 5
    ({"epsilon_high": 0.28, "delta": 2.0}, {A + "clip_ratio_high": 0.28, A + "clip_ratio_c": 2.0}),
    ({"beta": 0.04}, {A + "use_kl_loss": True, A + "kl_loss_coef": 0.04, A + "kl_loss_type": "low_var_kl+"}),
    ({"beta": 0.04, "use_bias_correction_kl": False}, {A + "kl_loss_type": "low_var_kl"}),
    # TRL's vLLM importance-sampling correction (on by default with vLLM): mask → IcePop, truncate → TIS
    (
        {"use_vllm": True},
        {
            ALG + "rollout_correction.rollout_is": "sequence",
            ALG + "rollout_correction.rollout_is_threshold": "1e-30_3",
        },
    ),
    (
        {
            "use_vllm": True,
            "vllm_importance_sampling_mode": "token_truncate",
            "vllm_importance_sampling_clip_max": 2.0,
        },
        {
            ALG + "rollout_correction.rollout_is": "token",
            ALG + "rollout_correction.rollout_is_threshold": 2.0,
        },
    ),
    (
        {"use_vllm": True, "vllm_importance_sampling_correction": False},
        {ALG + "rollout_correction.rollout_is": None},
    ),
    (
        {"top_k": 0, "temperature": 0.7},
        {"actor_rollout_ref.rollout.top_k": -1, "actor_rollout_ref.rollout.temperature": 0.7},
    ),
    ({"top_k": 20}, {"actor_rollout_ref.rollout.top_k": 20}),
    ({"save_steps": 5, "save_total_limit": 2}, {"trainer.save_freq": 5, "trainer.max_actor_ckpt_to_keep": 2}),
    ({"save_strategy": "no"}, {"trainer.save_freq": 20}),  # still one checkpoint at the end, for the way back
    ({"data_seed": 7}, {"data.seed": 7, "actor_rollout_ref.rollout.seed": 3}),
]


@pytest.mark.parametrize(("trl", "expected"), MIRRORS)
def test_settings_are_mirrored(trl, expected):
    m = mirrored(**trl)
    assert m.refused == []
    assert {k: m.overrides.get(k, "absent") for k in expected} == expected


REFUSALS = [
    # (recipe trl settings over DEMO_LIKE, the setting the refusal names)
    ({"lr_scheduler_type": "linear"}, "trl.lr_scheduler_type"),  # verl's FSDP optimizer: constant or cosine
    (
        {"lr_scheduler_type": "cosine", "steps_per_generation": 16},
        "trl.lr_scheduler_type",
    ),  # verl steps it per batch
    ({"scale_rewards": "batch"}, "trl.scale_rewards"),  # batch std: verl's GRPO has group std or none
    ({"weight_decay": 0.01}, "trl.weight_decay"),  # HF exempts biases and norms; verl decays all
    ({"loss_type": "bnpo"}, "trl.loss_type"),  # per-micro-batch normalisation
    ({"loss_type": "vespo"}, "trl.loss_type"),  # no verl loss
    ({"importance_sampling_level": "sequence", "loss_type": "dapo"}, "trl.importance_sampling_level"),
    ({"max_steps": 21, "steps_per_generation": 16}, "trl.max_steps"),  # not whole verl steps of 2
    ({"beta": 0.01, "num_iterations": 2}, "trl.use_bias_correction_kl"),  # π/π_old ≠ 1 after the first pass
    ({"mask_truncated_completions": True}, "trl.mask_truncated_completions"),
    ({"top_entropy_quantile": 0.2}, "trl.top_entropy_quantile"),
    ({"entropy_coef": 0.01}, "trl.entropy_coef"),
    ({"sync_ref_model": True}, "trl.sync_ref_model"),
    ({"repetition_penalty": 1.1}, "trl.repetition_penalty"),
    ({"optim": "adafactor"}, "trl.optim"),
    ({"multi_objective_aggregation": "normalize_then_sum"}, "trl.multi_objective_aggregation"),
    ({"disable_dropout": True}, "trl.disable_dropout"),
    (
        {
            "use_vllm": True,
            "vllm_importance_sampling_mode": "token_truncate",
            "vllm_importance_sampling_clip_min": 0.5,
        },
        "trl.vllm_importance_sampling_clip_min",
    ),
]


@pytest.mark.parametrize(("trl", "setting"), REFUSALS)
def test_settings_verl_cannot_run_are_refused_by_name(trl, setting):
    from ehrmind.errors import ConfigError

    m = mirrored(**trl)
    assert [r.setting for r in m.refused] == [setting]
    with pytest.raises(ConfigError, match=rf"{setting}: .*--allow-unmirrored {setting}"):
        accept(m, [])
    assert [r.setting for r in accept(mirrored(**trl), [setting.removeprefix("trl.")])] == [setting]


def test_batches_verl_cannot_run_are_errors():
    from ehrmind.errors import ConfigError

    with pytest.raises(ConfigError, match="fewer than one step's 8"):  # verl would train nothing
        mirrored(n_train=7)
    with pytest.raises(ConfigError, match="span two generation batches"):
        mirrored(steps_per_generation=12)


def demo_export(out: Path, data: Path, *args: str):
    cmd = ["export-verl", "--recipe", str(DEMO), "--data", str(data), "--out", str(out), "--gpus", "1", *args]
    return CliRunner().invoke(app, cmd)


def test_demo_recipe_is_mirrored_or_refused(tmp_path, synthetic_csv):
    # as shipped: TRL's linear decay has no verl counterpart, so the export stops and says so in one line
    result = demo_export(tmp_path / "refused", synthetic_csv)
    assert result.exit_code == 2 and not (tmp_path / "refused").exists()
    assert "trl.lr_scheduler_type: 'linear'" in result.output and "--allow-unmirrored" in result.output
    assert len(result.output.strip().splitlines()) == 1
    # with a schedule verl runs: 20 optimizer steps stay 20 steps, decay, no weight decay, group-std rewards
    out = tmp_path / "verl"
    result = demo_export(
        out, synthetic_csv, "--set", "trl.lr_scheduler_type=cosine", "--set", "trl.warmup_steps=2"
    )
    assert result.exit_code == 0, result.output
    o = script_overrides((out / "run_verl.sh").read_text())
    assert int(o["trainer.total_training_steps"]) == 20
    n_train = json.loads((out / "export.json").read_text())["n_train"]
    assert int(o["trainer.total_epochs"]) == -(
        -20 // (n_train // 8)
    )  # enough passes for 20 steps of 8 prompts
    assert (o[OPT + "lr_scheduler_type"], o[OPT + "lr_warmup_steps"], o[OPT + "min_lr_ratio"]) == (
        "cosine",
        "2",
        "0.0",
    )
    assert float(o[OPT + "weight_decay"]) == 0.0 and o[ALG + "norm_adv_by_std_in_grpo"] == "true"
    assert (
        "Not carried (how TRL runs, not what it trains): bf16, logging_steps, use_cpu."
        in (out / "run_verl.sh").read_text()
    )
    # batch scaling is refused by name
    result = demo_export(
        tmp_path / "batch",
        synthetic_csv,
        "--set",
        "trl.lr_scheduler_type=cosine",
        "--set",
        "trl.scale_rewards=batch",
    )
    assert result.exit_code == 2 and "trl.scale_rewards: 'batch'" in result.output


def test_an_accepted_difference_is_recorded(tmp_path, synthetic_csv):
    out = tmp_path / "verl"
    result = demo_export(out, synthetic_csv, "--allow-unmirrored", "trl.lr_scheduler_type")
    assert result.exit_code == 0, result.output
    script = (out / "run_verl.sh").read_text()
    line = "trl.lr_scheduler_type: 'linear' has no verl counterpart"
    assert "# ACCEPTED DIFFERENCES (--allow-unmirrored)" in script and line in script
    info = json.loads((out / "export.json").read_text())
    assert any(line in d for d in info["accepted_differences"])
    assert info["run_record"]["accepted_differences"] == info["accepted_differences"]
    assert script_overrides(script)[OPT + "lr_scheduler_type"] == "cosine"  # what verl runs instead, as said
    # an allowance for a setting that is mirrored is a typo, not a pass
    result = demo_export(tmp_path / "typo", synthetic_csv, "--allow-unmirrored", "trl.weight_decay")
    assert result.exit_code == 2 and "--allow-unmirrored trl.weight_decay: nothing to allow" in result.output


def test_every_path_in_the_scripts_is_absolute(tmp_path, monkeypatch, synthetic_csv, tiny_model):
    import shutil

    work = tmp_path / "work"
    (work / "models").mkdir(parents=True)
    shutil.copytree(tiny_model, work / "models" / "tiny")
    shutil.copy(synthetic_csv, work / "train.csv")
    monkeypatch.chdir(work)  # every path below is relative to here
    export(
        "--recipe",
        str(DEMO),
        "--data",
        "train.csv",
        "--model",
        "models/tiny",
        "--out",
        "exp",
        "--gpus",
        "1",
        "--set",
        "output_dir=runs/rl",
        "--prefill",
        "--set",
        "trl.lr_scheduler_type=constant",
    )
    monkeypatch.chdir(tmp_path)  # the scripts run from anywhere
    script = (work / "exp" / "run_verl.sh").read_text()
    o = script_overrides(script)
    paths = {
        k: o[k]
        for k in (
            "data.train_files",
            "data.val_files",
            "reward.custom_reward_function.path",
            "trainer.default_local_dir",
            "actor_rollout_ref.rollout.agent.agent_loop_config_path",
        )
    }
    assert all(Path(v).is_absolute() for v in paths.values()), paths
    assert paths["trainer.default_local_dir"] == str(work / "runs" / "rl")
    assert (
        f"EXPORTED_MODEL={work / 'models' / 'tiny'}\n" in script
        and 'MODEL="${MODEL:-$EXPORTED_MODEL}"' in script
    )
    merge = (work / "exp" / "merge_verl.sh").read_text()
    assert f"CHECKPOINTS={work / 'runs' / 'rl'}\n" in merge and f"EXPORT={work / 'exp'}\n" in merge
    record = json.loads((work / "exp" / "export.json").read_text())["run_record"]["recipe"]
    assert (record["data"], record["model"]) == (str(work / "train.csv"), str(work / "models" / "tiny"))
    assert record["task_options"]["prefill"] is True  # the command's --prefill, as the rows were rendered


def verl_python() -> Path:
    path = Path(os.environ.get("EHRMIND_VERL_PYTHON") or REPO / ".venv-verl" / "bin" / "python")
    if not path.exists():
        pytest.skip(f"verl venv not found at {path}: run `make verl-venv` (or set EHRMIND_VERL_PYTHON)")
    return path


VERL_ENV = {"HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0"}


def run_verl_python(python: Path, *args: str, home: Path) -> dict:
    """A helper script under the verl venv; its last stdout line is JSON."""
    env = {**os.environ, **VERL_ENV, "HOME": str(home)}
    proc = subprocess.run([str(python), *args], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}


@pytest.mark.slow  # verl itself, in its own venv (a subprocess, about 15 s)
def test_verl_own_dataset_and_reward_manager_accept_the_export(tmp_path, synthetic_60, tiny_model):
    python = verl_python()
    out = tmp_path / "verl"
    paper_export(out, synthetic_60, tiny_model)
    task = get_task("medcalc", prefill=True)
    train, val = rows(out / "train.parquet"), rows(out / "val.parquet")
    cases = []
    for row in train[:3]:
        ex = Example.from_dict(json.loads(row["extra_info"]["example"]))
        cases += [
            {"id": ex.id, "completion": c, "expected": task.verify(ex, c).reward}
            for c in completions(task, ex)
        ]
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0", "HOME": str(tmp_path)}
    proc = subprocess.run(
        [
            str(python),
            str(REPO / "tests" / "verl_check.py"),
            str(out),
            str(tiny_model),
            str(tmp_path / "cases.json"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["verl"] == "0.9.1" and got["reward_manager"] == "NaiveRewardManager"
    # every override is a key of verl's own config, and verl's own validation accepts the whole set
    assert got["unknown_keys"] == []
    assert got["rollout_is"] == "sequence" and got["rollout_is_threshold"] == [3.0, 1e-30]
    # verl's dataset (its own overlong-prompt filter at our max_prompt_length) keeps every row
    assert (got["n_train"], got["n_val"]) == (len(train), len(val))
    assert not set(got["train_ids"]) & set(got["val_ids"])
    # verl's reward manager, loaded from the script's config, gives Task.verify's reward
    assert got["scores"] == [c["expected"] for c in cases] and set(got["scores"]) == {1.1, 0.0, -2.0}
    assert got["rollout_n"] == 12
    # ehrmind's agent loop hands the rollout the prompt `ehrmind eval --prefill` renders
    from transformers import AutoTokenizer

    from ehrmind.generate.chat import render_prompt

    tok = AutoTokenizer.from_pretrained(tiny_model)
    ex = Example.from_dict(json.loads(train[0]["extra_info"]["example"]))
    assert got["prefill_prompt"]["agent_name"] == got["prefill_prompt"]["name"] == PREFILL_AGENT
    assert got["prefill_prompt"]["text"] == render_prompt(tok, task.render(ex))


def trl_learning_rates(trl: dict, steps: int, out: Path) -> tuple[list[float], dict]:
    """The rate of each optimizer step and the optimizer settings, built as the HF Trainer builds them for TRL
    (`Trainer.get_optimizer_cls_and_kwargs`, `create_scheduler`'s `get_scheduler` call)."""
    import torch
    from transformers import Trainer, get_scheduler
    from trl import GRPOConfig

    args = GRPOConfig(**{"use_cpu": True, "bf16": False, "report_to": "none", **trl, "output_dir": str(out)})
    cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(args)
    opt = cls([torch.nn.Parameter(torch.zeros(2))], weight_decay=args.weight_decay, **kwargs)
    sched = get_scheduler(
        args.lr_scheduler_type,
        optimizer=opt,
        num_warmup_steps=args.get_warmup_steps(steps),
        num_training_steps=steps,
        scheduler_specific_kwargs=args.lr_scheduler_kwargs,
    )
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    group = opt.param_groups[0]
    settings = {"betas": list(group["betas"]), "eps": group["eps"], "weight_decay": group["weight_decay"]}
    return lrs, settings


@pytest.mark.slow  # verl's config, validation, optimizer and scheduler, in its own venv (about 10 s)
@pytest.mark.parametrize(
    "schedule",
    [
        ("trl.lr_scheduler_type=cosine", "trl.warmup_steps=0.1"),
        ("trl.lr_scheduler_type=constant_with_warmup", "trl.warmup_steps=3"),
        ("trl.lr_scheduler_type=cosine_with_min_lr", "trl.lr_scheduler_kwargs={min_lr_rate: 0.1}"),
    ],
)
def test_verl_runs_the_recipes_schedule_and_settings(tmp_path, synthetic_csv, tiny_model, schedule):
    """The demo recipe with many settings changed: verl's own config takes every override, and verl's own
    optimizer and scheduler give TRL's learning rate at every step."""
    python = verl_python()
    out = tmp_path / "verl"
    changes = [
        *schedule,
        "trl.adam_beta2=0.99",
        "trl.adam_epsilon=1e-6",
        "trl.max_grad_norm=0.5",
        "trl.delta=2.0",
        "trl.top_k=20",
        "trl.use_vllm=true",
        "trl.vllm_importance_sampling_mode=token_mask",
        "trl.vllm_importance_sampling_clip_min=0.5",
        "trl.loss_type=dr_grpo",
        "trl.beta=0.01",
        "trl.save_total_limit=2",
        "trl.vllm_max_model_length=4096",
        "model_kwargs.dtype=bfloat16",
        "chat_template_kwargs.enable_thinking=false",
    ]
    sets = [a for c in changes for a in ("--set", c)]
    result = demo_export(out, synthetic_csv, "--model", str(tiny_model), "--prefill", *sets)
    assert result.exit_code == 0, result.output
    got = run_verl_python(
        python, str(REPO / "tests" / "verl_check.py"), "--config", str(out), str(tiny_model), home=tmp_path
    )
    assert got["unknown_keys"] == []
    recipe = load_recipe(DEMO, [c for c in changes if c.startswith("trl.")], stage="rl")
    want, settings = trl_learning_rates(recipe.trl, 20, tmp_path / "trl")
    assert got["lrs"] == pytest.approx(want, rel=1e-9, abs=1e-15) and len(want) == 20
    assert len(set(want)) > 2  # a schedule that moves
    assert {k: got["optimizer"][k] for k in settings} == settings  # betas, eps, weight decay
    assert got["optimizer"]["class"] == "AdamW" and got["optimizer"]["lr"] == recipe.trl["learning_rate"]
    assert got["rollout_is"] == "token" and got["rollout_is_threshold"] == [3.0, 0.5]  # TRL's mask bounds
    assert got["use_kl_loss"] is True


@pytest.mark.slow  # verl's checkpoint manager and model merger, in its own venv (about 30 s)
def test_the_way_back_from_a_verl_checkpoint(tmp_path, synthetic_csv, tiny_model):
    """run_verl.sh runs as bash (a stand-in python3 records the trainer's arguments); a checkpoint saved by
    verl's own FSDP checkpoint manager is merged by merge_verl.sh with verl's model merger into a folder that
    loads, holds the trained weights and an ehrmind_run.json with the resolved recipe, and `ehrmind eval`
    evaluates."""
    import torch
    from safetensors.torch import load_file

    from ehrmind.train.recipe import recipe_task, validate_recipe

    python = verl_python()
    out, ckpt = tmp_path / "verl", tmp_path / "ckpt"
    result = demo_export(out, synthetic_csv, "--model", str(tiny_model), "--output-dir", str(ckpt), *CONSTANT)
    assert result.exit_code == 0, result.output
    # the launch script, run: its trainer arguments are the overrides, MODEL given at launch is noted
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@" > "$ARGS_FILE"\n')
    (bin_dir / "python3").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "ARGS_FILE": str(tmp_path / "args"),
        "MODEL": str(tiny_model),
    }
    subprocess.run(["bash", str(out / "run_verl.sh"), "trainer.nnodes=1"], check=True, env=env, cwd=tmp_path)
    argv = (tmp_path / "args").read_text().splitlines()
    assert argv[:2] == ["-m", "verl.trainer.main_ppo"] and argv[-1] == "trainer.nnodes=1"
    launched = dict(a.split("=", 1) for a in argv[2:-1])
    o = script_overrides((out / "run_verl.sh").read_text())
    assert launched == {**o, "actor_rollout_ref.model.path": str(tiny_model)}
    assert (ckpt / "ehrmind_model.txt").read_text().strip() == str(tiny_model)
    # verl's trainer saves step 3; merge_verl.sh (no arguments: the last checkpoint) makes the folder
    run_verl_python(
        python,
        str(REPO / "tests" / "verl_checkpoint.py"),
        str(tiny_model),
        str(ckpt),
        "3",
        str(tmp_path / "ref.pt"),
        home=tmp_path,
    )
    merge_env = {**os.environ, **VERL_ENV, "PYTHON": str(python), "HOME": str(tmp_path)}
    proc = subprocess.run(
        ["bash", str(out / "merge_verl.sh")], capture_output=True, text=True, env=merge_env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    merged = ckpt / "global_step_3" / "huggingface_model"
    weights, reference = load_file(merged / "model.safetensors"), torch.load(tmp_path / "ref.pt")
    assert weights and all(
        torch.equal(v, reference[k].to(v.dtype)) for k, v in weights.items()
    )  # bf16 (verl's merger)
    assert not torch.equal(
        weights["model.norm.weight"].float(), torch.ones_like(weights["model.norm.weight"].float())
    )
    # the run record: the resolved recipe (task, options incl. the system prompt, template variables)
    record = json.loads((merged / "ehrmind_run.json").read_text())
    exported = json.loads((out / "export.json").read_text())["run_record"]
    assert record["exported_to"] == "verl" and record["global_step"] == 3
    assert record["recipe"] == exported["recipe"] and record["model"] == str(tiny_model)
    options = {
        k: v for k, v in record["recipe"]["task_options"].items() if k != "reward_weights"
    }  # dumped None
    recipe = validate_recipe({**record["recipe"], "task_options": options}, "ehrmind_run.json")
    demo = load_recipe(DEMO, stage="rl")
    assert (
        recipe.task_options == demo.task_options and recipe.chat_template_kwargs == demo.chat_template_kwargs
    )
    assert recipe_task(recipe).options.system_prompt == demo.task_options.system_prompt
    # a folder ehrmind eval loads and evaluates
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "--task",
            "medcalc",
            "--data",
            str(synthetic_csv),
            "--model",
            str(merged),
            "--out",
            str(tmp_path / "eval"),
            "--limit",
            "2",
            "--max-new-tokens",
            "8",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["n"] == 2


def test_the_launch_script_runs_hostile_names_as_data(tmp_path, synthetic_csv):
    """Issue #31: `run_verl.sh` executed shell text taken from `--model` or `--out` (a model named
    `$(touch X)` created X). Run the script with a stand-in `python3` that records its arguments: the hostile
    names arrive as plain text and nothing runs."""
    import os
    import stat
    import subprocess

    model = f"models/$(touch {tmp_path}/pwned1)`touch {tmp_path}/pwned2`"
    out = tmp_path / "exp $(touch pwned3)\ntouch pwned4 #"
    export("--task", "medcalc", "--data", str(synthetic_csv), "--model", model, "--out", str(out))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "python3"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/args.txt\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", str(out / "run_verl.sh")], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert not [p for p in tmp_path.rglob("pwned*")]  # nothing the names said was executed
    args = (tmp_path / "args.txt").read_text().splitlines()
    (path,) = [a for a in args if a.startswith("actor_rollout_ref.model.path=")]
    assert path.endswith("/" + model)  # the name, exactly, as data (made absolute at export)
    done = subprocess.run(["bash", "-n", str(out / "merge_verl.sh")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr  # the way back parses too (comments stay comments)
