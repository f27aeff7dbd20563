"""What a model folder trained by ehrmind says about the prompts it was trained on, and the prompt options a
command uses for it: what you train is what you run.

`ehrmind sft` and `ehrmind rl` (and `export-verl`'s way back) write `ehrmind_run.json` beside the weights,
holding the resolved recipe: its task, its task options (prompt mode, prefill, system prompt, the task's own
such as trec_ct's prompt_token_budget) and its chat-template variables. `eval`, `diagnose`, `matrix`,
`rationales --self` and `serve` render prompts for such a folder with those values unless told otherwise;
what a command changes is returned as `overridden`, logged as a warning and shown in the run's report, so a
number measured with another prompt than training's never passes unnoticed.

Another task than the one trained (cross-task evaluation) keeps only the output contract's shape (mode,
prefill) and the template variables: the trained system prompt and the task's own options belong to the
trained task.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ehrmind.errors import DataError
from ehrmind.revisions import RUN_RECORD

if TYPE_CHECKING:
    from ehrmind.tasks.base import Task

log = logging.getLogger(__name__)

CONTRACT_OPTIONS = ("mode", "prefill")
"""The options that carry over to another task than the trained one: the shape of the output contract."""
NOT_PROMPT = ("reward_weights",)
"""Recipe task options that shape rewards, not prompts (a report scores with the task's default rule)."""
SERVED_KEY = "ehrmind_trained_prompt"
"""Where `ehrmind serve` publishes a served folder's trained prompt in its `/v1/models` entry."""


@dataclass(frozen=True)
class TrainedPrompt:
    """The prompt a model folder was trained with (from its `ehrmind_run.json`)."""

    record: str
    """Where it was read: the training record's path, or the endpoint's model list."""
    task: str
    options: dict[str, Any]
    """The recipe's task options that shape the prompt (reward weights left out)."""
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, model: str | Path | None, backend: Any = None) -> TrainedPrompt | None:
        """The trained prompt of `model` when it is a local folder with an ehrmind training record, or (`backend`
        an endpoint) when the endpoint is `ehrmind serve` serving such a folder; None for a Hub id, another
        endpoint or a folder ehrmind did not train. A record that cannot be read is a DataError naming it:
        silently using another prompt is what this module exists to prevent."""
        if model is None:
            return None
        path = Path(model).expanduser() / RUN_RECORD
        if not path.is_file():
            if backend is not None and backend.endpoint and backend.url:
                return cls.served(backend.url, str(model), backend.api_key())
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise DataError(f"cannot read the training record ({e})", file=path) from None
        return cls.from_recipe(data.get("recipe") if isinstance(data, dict) else None, path)

    @classmethod
    def from_recipe(cls, recipe: Any, where: Path | str) -> TrainedPrompt:
        """From a training record's `recipe` (as `Recipe.model_dump(mode="json")` writes it)."""
        if not isinstance(recipe, dict) or not isinstance(recipe.get("task"), str):
            raise DataError("no recipe with a task in the training record", file=where, field="recipe")
        options = recipe.get("task_options") or {}
        kwargs = recipe.get("chat_template_kwargs") or {}
        if not isinstance(options, dict) or not isinstance(kwargs, dict):
            raise DataError("task_options and chat_template_kwargs must be mappings", file=where)
        kept = {k: v for k, v in options.items() if k not in NOT_PROMPT and v is not None}
        return cls(record=str(where), task=recipe["task"], options=kept, chat_template_kwargs=dict(kwargs))

    @classmethod
    def served(cls, url: str, model: str, api_key: str | None = None) -> TrainedPrompt | None:
        """What an endpoint says `model` was trained with: `ehrmind serve` publishes it in `/v1/models`
        (`SERVED_KEY`); None from any other server or when it cannot be asked."""
        from ehrmind.generate.openai_compat import model_entry, public_url

        entry = model_entry(url, model, api_key)
        recipe = (entry or {}).get(SERVED_KEY)
        if recipe is None:
            return None
        return cls.from_recipe(recipe, f"{public_url(url)}/models ({model})")

    def recipe(self) -> dict[str, Any]:
        """What `ehrmind serve` publishes of it (`from_recipe` reads it back)."""
        return {
            "task": self.task,
            "task_options": self.options,
            "chat_template_kwargs": self.chat_template_kwargs,
        }

    def options_for(self, task: str) -> dict[str, Any]:
        """The trained options that apply to `task`: all of them for the trained task, the contract's shape
        for another."""
        if task == self.task:
            return dict(self.options)
        return {k: v for k, v in self.options.items() if k in CONTRACT_OPTIONS}


@dataclass(frozen=True)
class PromptChoice:
    """The task options a command runs with, and how they relate to the model's training."""

    options: dict[str, Any]
    trained: TrainedPrompt | None = None
    applied: dict[str, Any] = field(default_factory=dict)
    """Trained values used because the command did not set them."""
    overridden: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Options the command set to another value than training's: {name: {"trained": …, "used": …}}."""

    def record(self) -> dict[str, Any]:
        """What a run record keeps (nothing when the model was not trained by ehrmind)."""
        if self.trained is None:
            return {}
        return {
            "trained_prompt": {
                "record": self.trained.record,
                "task": self.trained.task,
                "applied": self.applied,
                "overridden": self.overridden,
            }
        }


def choose_options(
    task: str, trained: TrainedPrompt | None, given: dict[str, Any] | None = None, model: Any = None
) -> PromptChoice:
    """The options for running `task` with a model trained as `trained` says (`TrainedPrompt.of`, read once
    per command; None: not trained by ehrmind): the command's `given` options over the trained ones. Options a
    command did not set must be absent from `given` (not its default value). `model` names it in the log."""
    given = dict(given or {})
    if trained is None:
        return PromptChoice(options=given)
    base = trained.options_for(task)
    applied = {k: v for k, v in base.items() if k not in given}
    overridden = {
        k: {"trained": base.get(k), "used": v} for k, v in given.items() if k in base and base[k] != v
    }
    overridden.update(
        {
            k: {"trained": None, "used": v}
            for k, v in given.items()
            if k not in base and k not in NOT_PROMPT and trained.task == task and v is not None
        }
    )
    if applied:
        log.info("%s was trained with %s; using it", model, _describe(applied))
    if overridden:
        log.warning(
            "prompt differs from training (%s): %s",
            trained.record,
            "; ".join(f"{k} {_short(d['trained'])} -> {_short(d['used'])}" for k, d in overridden.items()),
        )
    if trained.task != task:
        log.info(
            "%s was trained on task %s; evaluating %s with its own prompt (trained mode/prefill kept)",
            model,
            trained.task,
            task,
        )
    return PromptChoice(options={**applied, **given}, trained=trained, applied=applied, overridden=overridden)


def report_lines(record: dict[str, Any] | None) -> list[str]:
    """A report's paragraph on the trained prompt (from a run record's `trained_prompt`)."""
    if not record:
        return []
    lines = [f"Prompt: as trained ({record.get('record')}, task {record.get('task')})"]
    overridden = record.get("overridden") or {}
    if overridden:
        lines[0] = (
            f"**Prompt differs from training** ({record.get('record')}, task {record.get('task')}): "
            + "; ".join(
                f"`{k}` trained {_short(d.get('trained'))}, used {_short(d.get('used'))}"
                for k, d in overridden.items()
            )
        )
    return lines


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + '…"'


def _describe(options: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_short(v, 40)}" for k, v in options.items())


def prompt_options(task: Task) -> dict[str, Any]:
    """The task's options beyond mode and prefill (a system prompt, trec_ct's prompt_token_budget, …) as a
    run record keeps them: `{"task_options": …}`, nothing when there are none (so older records resume)."""
    from ehrmind.tasks.base import given_options

    skip = ("mode", "prefill", *NOT_PROMPT)
    kept = {k: v for k, v in given_options(task).items() if k not in skip and v is not None}
    return {"task_options": json.loads(json.dumps(kept, default=str))} if kept else {}
