"""verl export: train/val parquet, a launch script mirroring the recipe, and compute_score = Task.verify.

The last test runs verl's own config, dataset class, reward manager and ehrmind's prefill agent loop on an
export, in the separate verl venv (`make verl-venv`); it skips when that venv is absent."""

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
from ehrmind.train.recipe import load_recipe
from ehrmind.train.verl_launch import script_overrides, split_train_val
from ehrmind.types import Example

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "medcalc" / "qwen2.5-3b-instruct.yaml"


def export(*args: str) -> str:
    result = CliRunner().invoke(app, ["export-verl", *args])
    assert result.exit_code == 0, result.output
    return result.output


def rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def completions(task, ex) -> list[str]:
    return [
        task.gold_completion(ex, "r"),  # gold answer in the contract
        'x</think><answer>{"answer": -1}</answer>',  # wrong answer
        "no",  # bad format
    ]


def test_train_and_val_are_written_and_disjoint(tmp_path, synthetic_csv):
    out = tmp_path / "verl"
    export("--task", "medcalc", "--data", str(synthetic_csv), "--out", str(out), "--val-fraction", "0.25")
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
    export("--task", "medcalc", "--data", str(synthetic_csv), "--out", str(again), "--val-fraction", "0.25")
    assert [r["extra_info"]["id"] for r in rows(again / "val.parquet")] == [
        r["extra_info"]["id"] for r in val
    ]


def test_a_non_empty_folder_needs_overwrite(tmp_path, synthetic_csv):
    out = tmp_path / "verl"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    args = ["export-verl", "--task", "medcalc", "--data", str(synthetic_csv), "--out", str(out)]
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
    fields = get_task("medcalc").split_fields
    train, val, field = split_train_val(examples, 0.2, seed=3, fields=fields)
    assert field == "note_id" and len(train) + len(val) == 30
    assert not {e.metadata["note_id"] for e in train} & {e.metadata["note_id"] for e in val}
    assert split_train_val(examples, 0.2, seed=3, fields=fields)[1] == val


def test_launch_script_holds_the_recipe_settings(tmp_path, synthetic_csv, tiny_model):
    out = tmp_path / "verl"
    printed = export(
        "--recipe", str(RECIPE), "--data", str(synthetic_csv), "--model", str(tiny_model), "--out", str(out)
    )
    script = (out / "run_verl.sh").read_text()
    o = script_overrides(script)
    trl = load_recipe(RECIPE, stage="rl").trl
    assert int(o["actor_rollout_ref.rollout.n"]) == trl["num_generations"] == 12
    assert float(o["actor_rollout_ref.actor.optim.lr"]) == trl["learning_rate"]
    assert o["actor_rollout_ref.actor.use_kl_loss"] == "true"
    assert float(o["actor_rollout_ref.actor.kl_loss_coef"]) == trl["beta"]
    assert float(o["actor_rollout_ref.actor.clip_ratio_low"]) == trl["epsilon"]
    assert float(o["actor_rollout_ref.actor.clip_ratio_high"]) == trl["epsilon"]
    assert float(o["actor_rollout_ref.rollout.temperature"]) == trl["temperature"]
    assert float(o["actor_rollout_ref.rollout.top_p"]) == trl["top_p"]
    assert int(o["data.max_response_length"]) == trl["max_completion_length"]
    assert int(o["data.train_batch_size"]) == 32  # 12 per device × 8 GPUs × 4 steps / 12 samples
    assert o["algorithm.adv_estimator"] == "grpo"
    assert o["actor_rollout_ref.model.path"] == "$MODEL" and f'MODEL="${{MODEL:-{tiny_model}}}"' in script
    # the real longest prompt, counted with the model's tokenizer as `ehrmind rl` counts it
    from transformers import AutoTokenizer

    from ehrmind.train.data import prompt_text

    tok = AutoTokenizer.from_pretrained(tiny_model)
    task = get_task("medcalc", prefill=True)
    lengths = [len(tok(prompt_text(tok, task, ex))["input_ids"]) for ex in task.load(synthetic_csv)]
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
    export("--recipe", str(RECIPE), "--set", "trl.beta=0", "--data", str(synthetic_csv), "--out", str(out))
    o = script_overrides((out / "run_verl.sh").read_text())
    assert o["actor_rollout_ref.actor.use_kl_loss"] == "false"


def test_prompt_length_without_a_tokenizer_is_flagged_as_an_estimate(tmp_path, synthetic_csv):
    out = tmp_path / "verl"
    printed = export("--task", "medcalc", "--data", str(synthetic_csv), "--out", str(out))
    assert "ESTIMATED" in printed and "ESTIMATED" in (out / "run_verl.sh").read_text()
    assert json.loads((out / "export.json").read_text())["prompt_lengths"]["measured"] is False
    assert "set MODEL" in (out / "run_verl.sh").read_text()  # no model known: the script asks for one


def test_export_and_score_round_trip(tmp_path, synthetic_csv):
    out = tmp_path / "verl"
    export("--task", "medcalc", "--data", str(synthetic_csv), "--out", str(out))
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
    export("--task", "medcalc", "--data", str(synthetic_csv), "--prefill", "--out", str(out))
    task = get_task("medcalc", prefill=True)
    examples = {ex.id: ex for ex in task.load(synthetic_csv)}
    for row in rows(out / "train.parquet")[:5]:
        # verl renders the prompt itself: system and user turns; ehrmind's agent loop appends the prefill
        assert [m["role"] for m in row["prompt"]] == ["system", "user"]
        assert row["agent_name"] == PREFILL_AGENT and row["extra_info"]["prefill"] == task.prefill_text
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
    assert compute_score(row["data_source"], task.gold_completion(ex), "", row["extra_info"])["score"] == 1.1
    assert json.loads(row["extra_info"]["task_options"])["mode"] == "direct"
    assert "agent_name" not in row


def verl_python() -> Path:
    path = Path(os.environ.get("EHRMIND_VERL_PYTHON") or REPO / ".venv-verl" / "bin" / "python")
    if not path.exists():
        pytest.skip(f"verl venv not found at {path}: run `make verl-venv` (or set EHRMIND_VERL_PYTHON)")
    return path


@pytest.mark.slow  # verl itself, in its own venv (a subprocess, about 15 s)
def test_verl_own_dataset_and_reward_manager_accept_the_export(tmp_path, synthetic_csv, tiny_model):
    python = verl_python()
    out = tmp_path / "verl"
    export(
        "--recipe", str(RECIPE), "--data", str(synthetic_csv), "--model", str(tiny_model), "--out", str(out)
    )
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
