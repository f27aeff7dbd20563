"""ehrmind tasks in inspect_ai (`pip install inspect-ai`): one inspect `@task` for every registered task.

    inspect eval src/ehrmind/integrations/inspect_tasks.py@ehrmind -T task=medcalc -T data=test.csv \\
        --model openai/NAME --model-base-url http://127.0.0.1:8000/v1     # e.g. `ehrmind serve`, or vLLM

The dataset is the task's Examples, each prompt `Task.render` (system and user turns, as `ehrmind eval`
sends them), and the scorer `Task.verify`: inspect's accuracy is ehrmind's lenient accuracy, and each score
carries the format verdict, the parsed answer and the reward as metadata (strict accuracy =
`format_ok and correct`). A prefill (a final assistant turn to continue) is not supported: inspect's
`generate` does not continue an assistant message. Examples carry no patient text in their metadata
beyond what the prompt already shows.
"""

from __future__ import annotations

from typing import Any

from inspect_ai import Task as InspectTask
from inspect_ai import task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, ChatMessageUser
from inspect_ai.scorer import CORRECT, INCORRECT, NOANSWER, Score, Target, accuracy, scorer, stderr
from inspect_ai.solver import TaskState, generate

from ehrmind.errors import ConfigError
from ehrmind.registry import get_task
from ehrmind.tasks.base import Task
from ehrmind.types import Example

_ROLES = {"system": ChatMessageSystem, "user": ChatMessageUser, "assistant": ChatMessageAssistant}


def samples(t: Task, examples: list[Example]) -> list[Sample]:
    """One inspect Sample per Example: the rendered chat, the gold answer as target, the Example itself."""
    out = []
    for ex in examples:
        messages = t.render(ex)
        if messages and messages[-1]["role"] == "assistant":
            raise ConfigError("inspect_ai cannot continue a prefilled assistant turn: run without prefill")
        out.append(
            Sample(
                id=ex.id,
                input=[_ROLES[m["role"]](content=m["content"]) for m in messages],
                target=str(t.gold_value(ex)),
                metadata={"ehrmind_example": ex.to_dict()},
            )
        )
    return out


@scorer(metrics=[accuracy(), stderr()])
def ehrmind_verify(task_name: str, **options: Any):
    """inspect scorer calling `Task.verify` on the completion: CORRECT / INCORRECT, NOANSWER when the gold
    answer cannot be scored."""
    t = get_task(task_name, **options)

    async def score(state: TaskState, target: Target) -> Score:
        ex = Example.from_dict(state.metadata["ehrmind_example"])
        verdict = t.verify(ex, state.output.completion)
        value = NOANSWER if verdict.correct is None else CORRECT if verdict.correct else INCORRECT
        return Score(
            value=value,
            answer=None if verdict.parsed is None else str(verdict.parsed),
            explanation=verdict.reason,
            metadata={"format_ok": verdict.format_ok, "reward": verdict.reward, "parsed": verdict.parsed},
        )

    return score


@task
def ehrmind(
    task: str, data: str, mode: str = "reasoning", split: str | None = None, limit: int | None = None
) -> InspectTask:
    """Any registered ehrmind task (`task`: medcalc, trec_ct, ehrshot, …) on `data`, scored by its verifier."""
    options = {"mode": mode}
    t = get_task(task, **options)
    examples = t.load(data, split)[: int(limit) if limit else None]
    return InspectTask(
        dataset=MemoryDataset(samples(t, examples), name=f"ehrmind-{task}"),
        solver=generate(),
        scorer=ehrmind_verify(task, **options),
        name=f"ehrmind_{task}",
    )
