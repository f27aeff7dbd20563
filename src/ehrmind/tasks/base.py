"""The small Task core: load → Example, render → chat messages, verify → Score.

A family writes five methods (`records_to_examples`, `task_text`, `user_prompt`, `judge`, `gold_value`) and
declares its `Options`, `contract`, `groups` and `analyses`; `render` and `verify` are final. A Task instance
carries its options (mode, prefill, reward weights, the family's own), so the same object renders the prompt
and verifies the completion: it always knows whether the prompt ended with a prefill. Optional hooks (names
with one underscore, below the core) let a family refine loading and scoring; generic code never calls them.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal, final

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from ehrmind.contract import Contract
from ehrmind.errors import ConfigError, DataError, excerpt
from ehrmind.io import read_table
from ehrmind.tasks.analysis import Analysis, Groups
from ehrmind.types import Example, RewardWeights, Score

log = logging.getLogger(__name__)

PromptMode = Literal["reasoning", "direct", "one-shot"]
"""The prompt modes; the one declaration (recipes, the CLI and `TaskOptions` use it)."""


def _accepts(annotation: Any, kind: type) -> bool:
    """Whether a value of type `kind` (bool, int or float) is meant for `annotation`: a bool only where a bool
    is declared (pydantic's lax mode would also read `true` as 1 and `1` as true), an int where an int or
    a float is. Annotations it cannot read accept anything."""
    import types
    import typing

    origin = typing.get_origin(annotation)
    if annotation is Any or annotation is object or isinstance(annotation, (str, typing.TypeVar)):
        return True
    if origin is typing.Annotated:
        return _accepts(typing.get_args(annotation)[0], kind)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(a, kind) for a in typing.get_args(annotation))
    if origin is Literal:
        return any(type(a) is kind for a in typing.get_args(annotation))
    if annotation is float:
        return kind in (int, float)
    return annotation is kind or (
        isinstance(annotation, type) and annotation not in (int, bool, str) and issubclass(kind, annotation)
    )


def kind_problem(annotation: Any, value: Any) -> str | None:
    """Why `value` is the wrong kind of scalar for `annotation` (a flag given for a number, a number for a
    flag), looking into lists and mappings of values; None when it is not. One rule for every options model
    (task options, recipes, TRL fields)."""
    import typing

    if isinstance(value, bool):
        if not _accepts(annotation, bool):
            quote = (
                "; YAML reads yes, no, on, off unquoted as booleans: quote text"
                if _accepts(annotation, str)
                else ""
            )
            return f"expected {type_name(annotation)}, got a boolean ({str(value).lower()}){quote}"
        return None
    if isinstance(value, (int, float)):
        kind = type(value) if type(value) in (int, float) else float
        if _accepts(annotation, bool) and not _accepts(annotation, kind):
            return f"expected {type_name(annotation)}, got {value!r}"
        return None
    for option in _alternatives(annotation):
        origin, args = typing.get_origin(option), typing.get_args(option)
        if isinstance(value, dict) and origin is dict and len(args) == 2:
            return next(filter(None, (kind_problem(args[1], v) for v in value.values())), None)
        if isinstance(value, list) and origin is list and len(args) == 1:
            return next(filter(None, (kind_problem(args[0], v) for v in value)), None)
    return None


def _alternatives(annotation: Any) -> tuple[Any, ...]:
    """The types a union (or an Annotated type) allows; the annotation itself otherwise."""
    import types
    import typing

    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _alternatives(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return tuple(a for arg in typing.get_args(annotation) for a in _alternatives(arg))
    return (annotation,)


def type_name(annotation: Any) -> str:
    """An annotation as an error message says what it expects: `int | None` is "an integer"."""
    import types
    import typing

    if typing.get_origin(annotation) is typing.Annotated:  # Annotated[int, Strict(), Ge(1)]: "an integer"
        return type_name(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        names = [type_name(a) for a in typing.get_args(annotation) if a is not type(None)]
        return " or ".join(dict.fromkeys(names))
    if typing.get_origin(annotation) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    if isinstance(annotation, type):
        names = {"bool": "true or false", "int": "an integer", "float": "a number", "str": "text"}
        return names.get(annotation.__name__, annotation.__name__)
    return str(annotation).replace("typing.", "")


def check_kind(model: type[BaseModel], value: Any, name: str | None) -> Any:
    """`value` of `model`'s field `name`, refused (ValueError) when `kind_problem` finds it the wrong kind;
    the body of a `field_validator("*", mode="before")`."""
    field = model.model_fields.get(name) if name else None
    problem = kind_problem(field.annotation, value) if field is not None else None
    if problem:
        raise ValueError(problem)
    return value


class TaskOptions(BaseModel):
    """The options every task takes; a family subclasses it with its own (`Task.Options`). `get_task`, the
    CLI's `--task-option` and a recipe's `task_options:` are all checked against the task's model, so a
    wrong name or value fails with the field named before any data or model loads."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, allow_inf_nan=False)

    mode: PromptMode = Field(
        "reasoning", description="Output contract: think + answer, answer only, or one-shot."
    )
    prefill: bool | str = Field(
        False, description="Prefill the assistant turn (true = the paper's opening, or the text to prefill)."
    )
    system_prompt: str | None = Field(None, description="Replace the task's system prompt.")
    exemplars: str | None = Field(
        None,
        description="Mode one-shot only: the file of worked exemplars shown as an earlier turn (the formats a "
        "family reads are in its docs).",
    )
    reward_weights: RewardWeights = Field(
        default_factory=RewardWeights,
        description="Reward per verdict (a recipe sets its top-level reward_weights instead).",
    )

    @field_validator("*", mode="before")
    @classmethod
    def _kinds(cls, value: Any, info: ValidationInfo) -> Any:
        """A flag is not a number, nor a number a flag (`prefill=1`, `prompt_token_budget=true`)."""
        return check_kind(cls, value, info.field_name)

    @field_validator("reward_weights", mode="before")
    @classmethod
    def _weights(cls, v: Any) -> Any:
        if v is None:
            return RewardWeights()
        if isinstance(v, dict):
            try:
                return RewardWeights(**v)
            except TypeError as e:
                raise ValueError(str(e)) from None
        return v

    renamed: ClassVar[dict[str, str]] = {}
    """Old option names → the message that says what replaced them."""


class Task(ABC):
    """Base class of every task family; subclasses register with `@register_task(name)`.

    Its public names are the whole core (a test pins them): what a family declares (`name`, `version`,
    `Options`, `contract`, `groups`, `analyses`), the five methods it writes, and `load`, `build_data`,
    `render`, `verify`; an instance adds `options` (the validated `Options`) and its configured `contract`."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    Options: ClassVar[type[TaskOptions]] = TaskOptions
    """The task's options model: the constructor's keyword arguments, their one declaration."""
    contract: Contract
    """The output contract: the family declares it as a class attribute; an instance holds it configured for
    its prompt mode and prefill."""
    groups: ClassVar[Groups] = Groups()
    analyses: ClassVar[tuple[Analysis, ...]] = ()
    """What only this family computes and reports (`ehrmind.tasks.analysis`)."""
    options: TaskOptions
    """The options this instance was made with, validated (`options.model_fields_set`: the given ones)."""

    def __init__(self, **options: Any):
        from ehrmind.registry import validate_options

        self.options = validate_options(type(self), options)
        if self.options.mode not in self.contract.modes:
            raise ConfigError(
                f"prompt mode must be {' or '.join(repr(m) for m in self.contract.modes)} for task "
                f"{self.name!r}, got {self.options.mode!r}"
            )
        if self.options.mode == "one-shot" and not self.options.exemplars:
            raise ConfigError(
                "prompt mode 'one-shot' needs exemplars: give --one-shot-file PATH (or --task-option "
                f"exemplars=PATH), a file of worked exemplars task {self.name!r} reads"
            )
        if self.options.exemplars and self.options.mode != "one-shot":
            raise ConfigError(
                f"the exemplars option only applies to mode 'one-shot', not {self.options.mode!r}"
            )
        self.contract = self.contract.configured(self.options.mode, self.options.prefill)

    # ------------------------------------------------------------------ loading
    def load(self, source: str | Path, split: str | None = None) -> list[Example]:
        """Examples from a local file (CSV/Parquet/JSONL, or an `ehrmind data` snapshot) or a Hub id."""
        path = Path(source)
        if path.is_file() or (
            not path.exists() and path.suffix.lower() in (".csv", ".parquet", ".jsonl", ".json")
        ):
            return self._load_file(path)
        from ehrmind.snapshot import EXAMPLES

        if path.is_dir() and (path / EXAMPLES).is_file():  # an `ehrmind data` snapshot folder
            return self._load_file(path / EXAMPLES)
        # A Hub id, or a local folder in a Hub dataset layout (e.g. a downloaded snapshot).
        return self._load_hub(str(source), split)

    @abstractmethod
    def records_to_examples(
        self, rows: Iterable[tuple[int, dict[str, Any]]], source: str | Path
    ) -> Iterator[Example]:
        """Map raw source records to Examples; raise DataError naming source, row and field."""

    def build_data(self, source: str | Path, out_dir: str | Path, **options: Any) -> dict[str, Any]:
        """`ehrmind data`: write canonical Examples as JSONL plus a manifest; returns the manifest.

        Tasks with splits or labelers override this (options come from the command line); this one takes
        `split` (of a Hub dataset) and records `seed`, and refuses any other option rather than write it into
        the manifest as if it had been applied."""
        from ehrmind.snapshot import write_snapshot

        unknown = sorted(set(options) - {"split", "seed"})
        if unknown:
            raise ConfigError(
                f"task {self.name!r} builds its data with no options; not applied: {', '.join(unknown)} (`ehrmind "
                "data` takes --split for it)"
            )
        return write_snapshot(self, self.load(source, options.pop("split", None)), source, out_dir, **options)

    # ------------------------------------------------------------------ prompting
    @abstractmethod
    def task_text(self) -> str:
        """The system prompt's description of the task, before the contract's sentence (`contract.sentence`)
        for the configured mode."""

    @abstractmethod
    def user_prompt(self, example: Example) -> str:
        """The user turn for one example."""

    @final
    def render(self, example: Example) -> list[dict[str, str]]:
        """Chat messages for the model's own chat template: the system prompt (the task's text and the
        contract's sentence, or the `system_prompt` option), any earlier turns (`_turns_before`: one-shot
        exemplars), the user turn; the prefill, if any, is a final assistant message that generation continues
        (`continue_final_message=True`)."""
        system = self.options.system_prompt or self.task_text() + self.contract.sentence()
        messages = [
            {"role": "system", "content": system},
            *self._turns_before(example),
            {"role": "user", "content": self.user_prompt(example)},
        ]
        if self.contract.prefill:
            messages.append({"role": "assistant", "content": self.contract.prefill})
        return messages

    # ------------------------------------------------------------------ scoring
    @abstractmethod
    def judge(self, example: Example, value: Any) -> tuple[bool | None, Any, str]:
        """Apply the benchmark's correctness rule to an extracted answer value.

        Returns (correct, parsed, reason); correct is None when the *gold* answer cannot be scored.
        """

    @abstractmethod
    def gold_value(self, example: Example) -> Any:
        """The gold answer as it would appear in the answer JSON."""

    @final
    def verify(self, example: Example, completion: str) -> Score:
        """The one scoring path: evaluation, `ehrmind score` and RL rewards all call this. Final: families
        supply `judge` (and, where they need them, the `_describe_answer`, `_read_unscored` and
        `_reward_judge` hooks), never their own `verify` (a test checks every registered task)."""
        paper_rules = self.options.reward_weights.format == "paper"
        reading = self.contract.read(completion, paper=paper_rules)
        parts, obj = reading.strict, reading.strict.answer
        key = self.contract.answer_key
        if not self._can_score(example):
            correct = None
            parsed, reason = self._read_unscored(example, obj, parts.problem)
        elif obj is None:
            correct, parsed, reason = False, None, parts.problem or "no answer found"
        else:
            correct, parsed, reason = self.judge(example, obj[key])
            if not parts.format_ok:
                reason = f"format: {parts.problem}; {reason}"
        if parsed is not None and obj is not None:
            parsed = self._describe_answer(example, obj, parsed)
        reward_ok, reward_correct = parts.format_ok, correct
        if reading.paper is not None:
            reward_ok = reading.paper.format_ok
            if (
                reading.paper.answer is not None and correct is not None
            ):  # the paper's rule: no fallback object
                reward_correct = self._reward_judge(example, reading.paper.answer[key])
        return Score(
            format_ok=parts.format_ok,
            correct=correct,
            parsed=parsed,
            reward=self.options.reward_weights.reward(reward_ok, reward_correct),
            reason=reason,
            reward_format_ok=reward_ok if paper_rules else None,
            think=parts.think,
            answer=obj,
        )

    # ------------------------------------------------------------------ hooks a family may override
    def _load_file(self, path: Path) -> list[Example]:
        """Examples from a local table or an `ehrmind data` snapshot's examples.jsonl."""
        rows = read_table(path)
        first_no, first = next(rows)
        if {"task", "input", "target"} <= set(first):
            return list(self._snapshot_examples(path, [(first_no, first), *rows]))
        return list(self.records_to_examples([(first_no, first), *rows], source=path))

    def _snapshot_examples(self, path: Path, rows: Iterable[tuple[int, dict[str, Any]]]) -> Iterator[Example]:
        """A snapshot's Examples; a DataError naming file, row and field for a bad row or a repeated id (every
        command keys its rows by id, so a repeated one would be evaluated, scored or trained once)."""
        first_row: dict[str, int] = {}
        for row_no, row in rows:
            try:
                ex = Example.from_dict(row)
            except (KeyError, TypeError, ValueError) as e:
                raise DataError(str(e), file=path, row=row_no) from None
            if ex.task != self.name:
                raise DataError(f"snapshot is for task {ex.task!r}, not {self.name!r}", file=path, row=row_no)
            if first_row.setdefault(ex.id, row_no) != row_no:
                raise DataError(
                    f"id {excerpt(ex.id)} appears more than once (first in row {first_row[ex.id]}); ids must be "
                    "unique",
                    file=path,
                    row=row_no,
                    field="id",
                )
            problem = self._snapshot_problem(ex)
            if problem is not None:
                raise DataError(problem[1], file=path, row=row_no, field=problem[0])
            yield ex

    def _snapshot_problem(self, example: Example) -> tuple[str, str] | None:
        """(field, problem) when a snapshot row's input or target is not what this task writes (a NaN or text
        tolerance limit, a list where a note belongs), so a hand-edited snapshot fails at load instead of
        making every answer wrong; None when it is usable. The default checks nothing."""
        return None

    def _load_hub(self, dataset_id: str, split: str | None) -> list[Example]:
        """Load a Hugging Face Hub dataset (needs network access to the Hub)."""
        import datasets

        split = split or "test"
        try:
            ds = datasets.load_dataset(dataset_id, split=split)
        except Exception as e:  # the Hub client raises many types; say what was tried
            what = (
                "a folder that is neither an `ehrmind data` snapshot nor in a Hugging Face dataset layout; "
                "give a CSV, Parquet or JSONL file"
                if Path(dataset_id).is_dir()
                else "not a local file and could not be loaded from the Hugging Face Hub"
            )
            raise DataError(f"{what} ({type(e).__name__}: {e})", file=dataset_id) from None
        return list(self.records_to_examples(enumerate(ds, start=1), source=f"hf:{dataset_id}:{split}"))

    def _turns_before(self, example: Example) -> list[dict[str, str]]:
        """Chat turns between the system prompt and the user turn (one-shot exemplars); none by default."""
        return []

    def _can_score(self, example: Example) -> bool:
        """Whether the example's gold answer is usable; if not, its verdicts are None, never a silent 0."""
        return True

    def _describe_answer(self, example: Example, answer: dict[str, Any], parsed: Any) -> Any:
        """The `parsed` a Score keeps, from the judged value and the whole answer object (e.g. a stated
        probability beside the prediction); the judged value by default."""
        return parsed

    def _read_unscored(
        self, example: Example, answer: dict[str, Any] | None, problem: str
    ) -> tuple[Any, str]:
        """(parsed, reason) for an example whose gold answer cannot be scored (its verdict is None); a task
        may still read the answer (e.g. for ranking). Nothing by default."""
        return None, "gold answer cannot be scored"

    def _reward_judge(self, example: Example, value: Any) -> bool:
        """The answer rule of the paper's reward (`RewardWeights.format` "paper") for a scorable example; the
        benchmark's `judge` unless the paper's reward reads answers differently (MedCalc)."""
        return bool(self.judge(example, value)[0])


# ---------------------------------------------------------------------- what generic code asks of a task
def scorable(task: Task, example: Example) -> bool:
    """Whether the example's gold answer can be scored (else its verdicts are None)."""
    return task._can_score(example)


def gold_completion(task: Task, example: Example, reasoning: str = "") -> str:
    """A completion that states the example's gold answer in the task's output contract, without the part a
    prefill already supplied (SFT targets, tests)."""
    return task.contract.gold(task.gold_value(example), reasoning)


def given_options(task: Task) -> dict[str, Any]:
    """The options a task was made with, as given (validated), without the defaults it filled in."""
    return {k: getattr(task.options, k) for k in task.options.model_fields_set}
