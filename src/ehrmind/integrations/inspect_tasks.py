"""ehrmind tasks in inspect_ai (`pip install inspect-ai`): one inspect `@task` for every registered task.

    inspect eval src/ehrmind/integrations/inspect_tasks.py@ehrmind -T task=medcalc -T data=test.csv \\
        --model openai/NAME --model-base-url http://127.0.0.1:8000/v1     # e.g. `ehrmind serve`, or vLLM

The dataset is the task's scorable Examples (trec_ct's SIGIR pairs, ranked only, are left out), each prompt
`Task.render` (system and user turns, as `ehrmind eval` sends them), and the scorer `Task.verify`: inspect's
accuracy is ehrmind's lenient accuracy, and each score carries the format verdict, the parsed answer and the
reward as metadata (strict accuracy = `format_ok and correct`). A prefill (a final assistant turn to continue)
is not supported: inspect's `generate` does not continue an assistant message. Examples carry no patient text
in their metadata beyond what the prompt already shows. A bad `-T` is a `TaskArgumentError` (a ConfigError
that inspect's command line prints as one line naming the key).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from inspect_ai import Task as InspectTask
from inspect_ai import task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, ChatMessageUser
from inspect_ai.scorer import CORRECT, INCORRECT, NOANSWER, Score, Target, accuracy, scorer, stderr
from inspect_ai.solver import TaskState, generate
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ehrmind.errors import ConfigError, UserError
from ehrmind.registry import UnknownTask, get_task
from ehrmind.tasks.base import Task, scorable
from ehrmind.types import Example

try:  # inspect's command line prints this error's message alone, without a traceback
    from inspect_ai._util.error import PrerequisiteError
except ImportError:  # pragma: no cover - an inspect without it prints the traceback
    PrerequisiteError = Exception  # type: ignore[assignment,misc]

log = logging.getLogger(__name__)

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


class TaskArgumentError(ConfigError, PrerequisiteError):
    """A bad `-T` argument (or data the task cannot evaluate): a ConfigError naming the `-T` key, which
    `inspect eval` prints as one line (inspect shows a PrerequisiteError's message without a traceback)."""

    def __init__(self, key: str, message: object):
        super().__init__(f"ehrmind -T {key}: {message}")
        self.message = str(self)  # what inspect's command line prints


class _Arguments(BaseModel):
    """The `-T` arguments, as inspect passes them (each value read as YAML: `-T limit=abc` is a string)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    task: str = Field(min_length=1)
    data: str = Field(min_length=1)
    mode: str = "reasoning"
    split: str | None = None
    limit: int | None = Field(None, ge=1)


def _arguments(**given: Any) -> _Arguments:
    """The arguments checked; a TaskArgumentError naming the first bad `-T` key."""
    try:
        return _Arguments(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as e:
        first = e.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "?"
        if first["type"] == "missing":
            raise TaskArgumentError(key, f"required (give -T {key}=…)") from None
        if first["type"] == "extra_forbidden":
            known = ", ".join(_Arguments.model_fields)
            raise TaskArgumentError(key, f"not an argument of ehrmind (known: {known})") from None
        raise TaskArgumentError(key, f"{first['msg']} (got {first.get('input')!r:.60})") from None


@task
def ehrmind(
    task: str | None = None,
    data: str | None = None,
    mode: str = "reasoning",
    split: str | None = None,
    limit: int | None = None,
    **others: Any,
) -> InspectTask:
    """Any registered ehrmind task (`task`: medcalc, trec_ct, ehrshot, …) on `data`, scored by its verifier.
    Examples whose gold answer cannot be scored (SIGIR pairs of trec_ct, ranked only) are left out: inspect
    would count their "no answer" verdicts as wrong. `limit`: the first `limit` scorable examples. Any other
    `-T` key is refused (inspect would only log that it is unused)."""
    args = _arguments(task=task, data=data, mode=mode, split=split, limit=limit, **others)
    options = {"mode": args.mode}
    try:
        t = get_task(args.task, **options)
    except UnknownTask as e:
        raise TaskArgumentError("task", e) from None
    except ConfigError as e:
        raise TaskArgumentError("mode", e) from None
    try:
        examples = t.load(args.data, args.split)
    except UserError as e:
        hint = (
            ""
            if Path(args.data).is_absolute()
            else " (inspect reads it from the task file's folder: give an absolute path)"
        )
        raise TaskArgumentError("data", f"{e}{hint}") from None
    kept = [ex for ex in examples if scorable(t, ex)]
    if not kept:
        raise TaskArgumentError(
            "data",
            f"{args.data}: none of its {len(examples)} examples can be scored (e.g. SIGIR pairs: ranking "
            "only)",
        )
    if len(kept) < len(examples):
        log.warning(
            "ehrmind: left out %d of %d examples whose gold answer cannot be scored (e.g. SIGIR pairs: "
            "ranking only; `ehrmind eval` reports them)",
            len(examples) - len(kept),
            len(examples),
        )
    return InspectTask(
        dataset=MemoryDataset(samples(t, kept[: args.limit]), name=f"ehrmind-{args.task}"),
        solver=generate(),
        scorer=ehrmind_verify(args.task, **options),
        name=f"ehrmind_{args.task}",
    )
