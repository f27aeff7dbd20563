"""verl export: rows in verl's layout, and compute_score giving the same reward as Task.verify."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from ehrmind import get_task
from ehrmind.cli import app
from ehrmind.errors import ConfigError
from ehrmind.rewards.verl import compute_score, verl_rows


def test_export_and_score_round_trip(tmp_path, synthetic_csv):
    out = tmp_path / "train.parquet"
    result = CliRunner().invoke(
        app, ["export-verl", "--task", "medcalc", "--data", str(synthetic_csv), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    rows = pq.read_table(out).to_pylist()
    assert len(rows) == 20 and rows[0]["data_source"] == "ehrmind/medcalc"
    assert [m["role"] for m in rows[0]["prompt"]] == ["system", "user"]
    task = get_task("medcalc")
    examples = {ex.id: ex for ex in task.load(synthetic_csv)}
    for row in rows[:5]:
        ex = examples[row["extra_info"]["id"]]
        for completion in (
            task.gold_completion(ex, "r"),
            '<think>r</think><answer>{"answer": -1}</answer>',
            "no",
        ):
            got = compute_score(
                row["data_source"], completion, row["reward_model"]["ground_truth"], row["extra_info"]
            )
            assert got["score"] == task.verify(ex, completion).reward


def test_direct_mode_is_kept_and_prefill_refused(synthetic_csv):
    task = get_task("medcalc", mode="direct")
    ex = task.load(synthetic_csv)[0]
    row = verl_rows(task, [ex])[0]
    assert compute_score(row["data_source"], task.gold_completion(ex), "", row["extra_info"])["score"] == 1.1
    assert json.loads(row["extra_info"]["task_options"])["mode"] == "direct"
    with pytest.raises(ConfigError, match="prefill"):
        verl_rows(get_task("medcalc", prefill=True), [ex])
