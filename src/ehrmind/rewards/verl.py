"""verl integration: export Examples as verl RL parquet rows, and the matching `compute_score`.

Rows follow verl's layout (`data_source`, `prompt` as chat messages, `ability`, `reward_model`,
`extra_info`); each row carries its whole Example and the task options in `extra_info`, so
`compute_score` rebuilds it and calls `Task.verify` — the same scoring path as `ehrmind eval` and TRL.
Point verl's `reward.custom_reward_function.path` at this file and `name` at `compute_score`
(`ehrmind export-verl` writes a launch script that does; docs/verl.md).

A prefill: verl always renders the prompt with the generation prompt, so a row's `prompt` holds the system and
user turns only, its `agent_name` names ehrmind's agent loop (`ehrmind.rewards.verl_agent`, which appends the
prefill's tokens after the generation prompt) and `extra_info.prefill` the text. The response verl decodes
then lacks the prefill, and `compute_score` rebuilds the task with it, so `Task.verify` prepends the part of the
output contract the prefill supplied — the same verdict `ehrmind eval --prefill` gives.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from ehrmind.tasks.base import Task
from ehrmind.types import Example

PREFILL_AGENT = "ehrmind_prefill"
"""The verl agent loop name of `ehrmind.rewards.verl_agent.PrefillAgentLoop`, carried by prefilled rows."""


def verl_rows(task: Task, examples: Sequence[Example], split: str = "train") -> list[dict[str, Any]]:
    options = {
        "mode": task.contract.mode,
        "prefill": task.contract.prefill or False,
        "system_prompt": task.options.system_prompt,
        "reward_weights": vars(task.options.reward_weights),
    }
    rows = []
    for i, ex in enumerate(examples):
        messages = task.render(ex)
        row: dict[str, Any] = {
            "data_source": f"ehrmind/{task.name}",
            "prompt": messages[:-1] if task.contract.prefill else messages,
            "ability": str(ex.metadata.get("category") or task.name),
            "reward_model": {"style": "rule", "ground_truth": json.dumps(ex.target, ensure_ascii=False)},
            "extra_info": {
                "index": i,
                "split": split,
                "id": ex.id,
                "example": json.dumps(ex.to_dict(), ensure_ascii=False),
                "task_options": json.dumps(options),
            },
        }
        if task.contract.prefill:
            row["agent_name"] = PREFILL_AGENT
            row["extra_info"]["prefill"] = task.contract.prefill
        rows.append(row)
    return rows


def write_verl_parquet(
    task: Task, examples: Sequence[Example], path: str | Path, split: str = "train"
) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ehrmind.io import atomic_path

    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pylist(verl_rows(task, examples, split)), tmp)
    return Path(path)


@lru_cache(maxsize=16)
def _task(name: str, options_json: str) -> Task:
    from ehrmind.registry import get_task

    return get_task(name, **json.loads(options_json))


def compute_score(
    data_source: str, solution_str: str, ground_truth: str, extra_info: dict[str, Any] | None = None
) -> dict[str, Any]:
    """verl's reward hook: a dict with `score` (the reward) and the verdict's parts for logging.

    verl needs a number, so a row whose gold answer cannot be scored gets score 0.0 with `scorable`
    False — filter on it rather than reading that 0.0 as a wrong answer."""
    if not extra_info or "example" not in extra_info:
        raise ValueError("extra_info.example is missing: export the data with ehrmind export-verl")
    example = Example.from_dict(json.loads(extra_info["example"]))
    task = _task(example.task, extra_info.get("task_options") or "{}")
    score = task.verify(example, solution_str)
    return {
        "score": 0.0 if score.reward is None else float(score.reward),
        "scorable": score.reward is not None,
        "format_ok": float(score.format_ok),
        "acc": float(bool(score.correct)),
    }
