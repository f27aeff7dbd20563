"""The Task contract: load → Example, render → chat messages, verify → Score, metrics → dict.

A Task instance carries the prompt options (mode, prefill, reward weights), so the same object renders
the prompt and verifies the completion: it always knows whether the prompt ended with a prefill.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Literal, final

from pydantic import BaseModel, ConfigDict, Field

from ehrmind.errors import ConfigError, DataError
from ehrmind.io import read_table
from ehrmind.parsing import THINK_OPEN, check_contract, find_json_with_key
from ehrmind.types import Example, Extraction, RewardWeights, Score

log = logging.getLogger(__name__)

PromptMode = Literal["reasoning", "direct", "one-shot"]
"""The prompt modes; the one declaration (recipes, the CLI and `TaskOptions` use it)."""
PAPER_PREFILL = "Let me solve this step by step.\n<think>"


class TaskOptions(BaseModel):
    """The options every task takes; a family subclasses it with its own (`Task.Options`). `get_task`, the
    CLI's `--task-option` and a recipe's `task_options:` are all checked against the task's model, so a
    wrong name or value fails with the field named before any data or model loads."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    mode: PromptMode = Field(
        "reasoning", description="Output contract: think + answer, answer only, or one-shot."
    )
    prefill: bool | str = Field(
        False, description="Prefill the assistant turn (true = the paper's opening, or the text to prefill)."
    )
    system_prompt: str | None = Field(None, description="Replace the task's system prompt.")
    reward_weights: RewardWeights | dict[str, Any] | None = Field(
        None, description="Reward per verdict (a recipe sets its top-level reward_weights instead)."
    )

    renamed: ClassVar[dict[str, str]] = {}
    """Old option names → the message that says what replaced them."""


class Task(ABC):
    """Base class of every task family; subclasses register with `@register_task(name)`."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    answer_key: ClassVar[str] = "answer"
    group_fields: ClassVar[tuple[str, ...]] = ("category",)
    """Metadata fields copied into each prediction row and used to break metrics down."""
    row_fields: ClassVar[tuple[str, ...]] = ()
    """Further metadata fields copied into each prediction row (e.g. patient and trial ids for ranking)."""
    extra_verdicts: ClassVar[tuple[str, ...]] = ()
    """Names of further correctness verdicts reported beside `correct`, e.g. `official` (the benchmark's own
    answer extraction), as lm-evaluation-harness reports "strict" and "flexible" side by side. Each name adds
    `<name>_correct` (and `<name>_parsed`) to prediction rows, from `verify_extra`, and `<name>_accuracy` with
    its 95% interval to the metrics. Rewards never see them: `verify` stays the one scoring path."""
    modes: ClassVar[tuple[str, ...]] = ("reasoning", "direct")
    """Prompt modes the task supports. `one-shot` (a worked exemplar as a previous turn, then the reasoning
    contract) needs exemplars, so only tasks that have them list it."""
    plan_fields: ClassVar[tuple[str, ...]] = ("category",)
    """Group fields `ehrmind diagnose` can diagnose and plan SFT rows by, coarsest first; it uses the finest
    unless told (`--plan-by`)."""
    main_metric: ClassVar[tuple[str, str, str] | None] = None
    """(name, value path, interval path) of the task's main metric in its metrics.json, for `ehrmind matrix`;
    None: accuracy is the main metric."""
    split_fields: ClassVar[tuple[str, ...]] = ()
    """Metadata fields that tie items together (one patient, one note), first choice first: a held-out split
    (`ehrmind export-verl`) keeps each value on one side; none: each item is its own group."""
    rationale_evidence: ClassVar[str] = "the facts given above"
    """What a teacher's rationale must reason from (`ehrmind rationales`, teacher mode)."""
    Options: ClassVar[type[TaskOptions]] = TaskOptions
    """The task's options model: its constructor's keyword arguments, typed (defaults equal; a test checks)."""
    options: Mapping[str, Any] = MappingProxyType({})
    """The options `get_task` made this instance with, as checked (what a run record keeps of them)."""

    def __init__(
        self,
        mode: PromptMode = "reasoning",
        prefill: bool | str = False,
        system_prompt: str | None = None,
        reward_weights: RewardWeights | dict[str, float] | None = None,
    ):
        if mode not in self.modes:
            raise ConfigError(
                f"prompt mode must be {' or '.join(repr(m) for m in self.modes)} for task {self.name!r}, "
                f"got {mode!r}"
            )
        if prefill and mode == "direct":
            raise ConfigError("prefill opens a <think> block; it only applies to mode='reasoning'")
        self.mode: PromptMode = mode
        self.prefill_text: str = PAPER_PREFILL if prefill is True else (prefill or "")
        self.system_prompt = system_prompt
        if isinstance(reward_weights, dict):
            try:
                reward_weights = RewardWeights(**reward_weights)
            except (TypeError, ValueError) as e:
                raise ConfigError(f"reward_weights: {e}") from None
        self.weights = reward_weights or RewardWeights()

    # ------------------------------------------------------------------ loading
    def load(self, source: str | Path, split: str | None = None) -> list[Example]:
        """Examples from a local file (CSV/Parquet/JSONL, or an `ehrmind data` snapshot) or a Hub id."""
        path = Path(source)
        if path.is_file() or (
            not path.exists() and path.suffix.lower() in (".csv", ".parquet", ".jsonl", ".json")
        ):
            return self.load_file(path)
        from ehrmind.snapshot import EXAMPLES

        if path.is_dir() and (path / EXAMPLES).is_file():  # an `ehrmind data` snapshot folder
            return self.load_file(path / EXAMPLES)
        # A Hub id, or a local folder in a Hub dataset layout (e.g. a downloaded snapshot).
        return self.load_hub(str(source), split)

    def load_file(self, path: Path) -> list[Example]:
        rows = read_table(path)
        first_no, first = next(rows)
        if {"task", "input", "target"} <= set(first):
            return list(self._snapshot_examples(path, [(first_no, first), *rows]))
        return list(self.records_to_examples([(first_no, first), *rows], source=path))

    def _snapshot_examples(self, path: Path, rows: Iterable[tuple[int, dict[str, Any]]]) -> Iterator[Example]:
        for row_no, row in rows:
            try:
                ex = Example.from_dict(row)
            except (KeyError, TypeError, ValueError) as e:
                raise DataError(str(e), file=path, row=row_no) from None
            if ex.task != self.name:
                raise DataError(f"snapshot is for task {ex.task!r}, not {self.name!r}", file=path, row=row_no)
            problem = self.snapshot_problem(ex)
            if problem is not None:
                raise DataError(problem[1], file=path, row=row_no, field=problem[0])
            yield ex

    def snapshot_problem(self, example: Example) -> tuple[str, str] | None:
        """(field, problem) when a snapshot row's input or target is not what this task writes (a NaN or text
        tolerance limit, a list where a note belongs), so a hand-edited snapshot fails at load instead of
        making every answer wrong; None when it is usable. Tasks override this; the default checks nothing."""
        return None

    def load_hub(self, dataset_id: str, split: str | None) -> list[Example]:
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
    def instructions(self) -> str:
        """The system prompt for the current mode."""

    @abstractmethod
    def user_prompt(self, example: Example) -> str:
        """The user turn for one example."""

    def render(self, example: Example) -> list[dict[str, str]]:
        """Chat messages for the model's own chat template; the prefill, if any, is a final assistant
        message that generation continues (`continue_final_message=True`)."""
        messages = [
            {"role": "system", "content": self.system_prompt or self.instructions()},
            {"role": "user", "content": self.user_prompt(example)},
        ]
        if self.prefill_text:
            messages.append({"role": "assistant", "content": self.prefill_text})
        return messages

    # ------------------------------------------------------------------ scoring
    @property
    def contract_prefix(self) -> str:
        """The part of the output contract the prompt already supplied (`<think>` after a prefill)."""
        i = self.prefill_text.rfind(THINK_OPEN)
        return self.prefill_text[i:] if i >= 0 else ""

    @abstractmethod
    def judge(self, example: Example, value: Any) -> tuple[bool | None, Any, str]:
        """Apply the benchmark's correctness rule to an extracted answer value.

        Returns (correct, parsed, reason); correct is None when the *gold* answer cannot be scored.
        """

    @final
    def extract(self, completion: str, *, prefixed: bool = False) -> Extraction:
        """Read a completion under the output contract (ehrmind's strict rules): with `verify`'s reward
        check, the only caller of the contract parser (a test checks that no other module parses it). The
        part of the contract a prefill supplied is prepended, unless the text already holds it (`prefixed`:
        e.g. a benchmark explanation written whole)."""
        text = (completion or "") if prefixed else self.contract_prefix + (completion or "")
        parts = check_contract(text, self.answer_key, require_think=self.mode != "direct")
        obj = parts.answer_obj if parts.answer_obj is not None else find_json_with_key(text, self.answer_key)
        return Extraction(format_ok=parts.format_ok, think=parts.think, answer=obj, problem=parts.problem)

    @final
    def verify(self, example: Example, completion: str) -> Score:
        """The one scoring path: evaluation, `ehrmind score` and RL rewards all call this. Final: tasks
        supply `judge` (and, where they need them, `describe_answer` and `read_unscored`), never their own
        `verify` (a test checks every registered task)."""
        parts = self.extract(completion)
        obj = parts.answer
        if not self.can_score(example):
            correct = None
            parsed, reason = self.read_unscored(example, obj, parts.problem)
        elif obj is None:
            correct, parsed, reason = False, None, parts.problem or "no answer found"
        else:
            correct, parsed, reason = self.judge(example, obj[self.answer_key])
            if not parts.format_ok:
                reason = f"format: {parts.problem}; {reason}"
        if parsed is not None and obj is not None:
            parsed = self.describe_answer(example, obj, parsed)
        reward_ok, reward_correct = parts.format_ok, correct
        if self.weights.format == "paper":
            paper = check_contract(
                self.contract_prefix + (completion or ""),
                self.answer_key,
                require_think=self.mode != "direct",
                rules="paper",
            )
            reward_ok = paper.format_ok
            if paper.answer_obj is not None and correct is not None:  # the paper's rule: no fallback object
                reward_correct = self.reward_judge(example, paper.answer_obj[self.answer_key])
        return Score(
            format_ok=parts.format_ok,
            correct=correct,
            parsed=parsed,
            reward=self.weights.reward(reward_ok, reward_correct),
            reason=reason,
            reward_format_ok=None if self.weights.format == "strict" else reward_ok,
            think=parts.think,
            answer=obj,
        )

    def describe_answer(self, example: Example, answer: dict[str, Any], parsed: Any) -> Any:
        """The `parsed` a Score keeps, from the judged value and the whole answer object (e.g. a stated
        probability beside the prediction); the judged value by default."""
        return parsed

    def read_unscored(self, example: Example, answer: dict[str, Any] | None, problem: str) -> tuple[Any, str]:
        """(parsed, reason) for an example whose gold answer cannot be scored (its verdict is None); a task
        may still read the answer (e.g. for ranking). Nothing by default."""
        return None, "gold answer cannot be scored"

    def reward_judge(self, example: Example, value: Any) -> bool:
        """The answer rule of the paper's reward (`RewardWeights.format` "paper") for a scorable example; the
        benchmark's `judge` unless the paper's reward reads answers differently (MedCalc)."""
        return bool(self.judge(example, value)[0])

    def verify_extra(self, example: Example, completion: str) -> dict[str, Any]:
        """The fields of `extra_verdicts` for one prediction row: `{"<name>_correct": bool | None,
        "<name>_parsed": …}` per name (None where the gold cannot be scored); none by default."""
        return {}

    def gold_completion(self, example: Example, reasoning: str = "") -> str:
        """A completion that states the gold answer in the output contract (for tests and SFT targets),
        without the part a prefill already supplied."""
        import json

        answer = (
            f"<answer>{json.dumps({self.answer_key: self.gold_value(example)}, ensure_ascii=False)}</answer>"
        )
        text = answer if self.mode == "direct" else f"<think>{reasoning}</think>\n{answer}"
        prefix = self.contract_prefix
        return text[len(prefix) :] if prefix and text.startswith(prefix) else text

    def choice_point(self, example: Example, completion: str) -> tuple[str, dict[str, str]] | None:
        """Where a completion states a binary answer, for a probability from the model itself: (the completion
        up to the answer's value, {"yes": continuation, "no": continuation}); None when the task has no
        binary answer or the completion states none (the default)."""
        return None

    def paper_reliable_m(self, example: Example) -> int | None:
        """For the EHRMind paper's reliable pass@k (`ehrmind diagnose`): the number m of possible answers the
        paper assumes for this item, whose thresholds are k // m + 2 correct samples and entropy < 0.8 · ln m
        nats; None: the paper scores the item by plain pass@k (the default)."""
        return None

    def paper_sft_counts(self, category_sizes: dict[str, int], fraction: float) -> dict[str, int] | None:
        """Rows per category for an SFT warm-up of `fraction` of the training rows, by the EHRMind paper's
        rule for this task (`sft_data.fraction_rule: paper`); None: the paper has none for this task, so the
        share of each category is used."""
        return None

    def subgroup_names(self, example: Example) -> set[str]:
        """Names of the example's groups finer than its category (the values of the other `group_fields`,
        plus any id a task accepts for them): what `sft_data.calculators` and `sft_data.per_group` match."""
        return {
            str(example.metadata[f]) for f in self.group_fields[1:] if example.metadata.get(f) is not None
        }

    def check_reasoning(self, example: Example, extraction: Extraction) -> dict[str, Any] | None:
        """Checks of one completion's reasoning for the eval report (`eval.reasoning_checks` turns them into
        rates): has_reasoning, n_values, n_in_note, numbers_in_note_rate, final_value_matches_answer. None:
        the task has no reasoning checks (the default)."""
        return None

    def audit(self, data: str | Path, out_dir: str | Path, corrected: str | Path | None = None) -> list[Path]:
        """`ehrmind audit`: recompute the data's labels with the task's own knowledge base and report where
        they disagree; returns the files written. Only a task with such a base has it (MedCalc)."""
        raise ConfigError(
            f"task {self.name!r} has no knowledge base to recompute its labels with (try medcalc)"
        )

    def can_score(self, example: Example) -> bool:
        """Whether the example's gold answer is usable; if not, its verdicts are None, never a silent 0."""
        return True

    @abstractmethod
    def gold_value(self, example: Example) -> Any:
        """The gold answer as it would appear in the answer JSON."""

    # ------------------------------------------------------------------ metrics
    def metrics(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Accuracy with a 95% interval, format errors, broken down by `group_fields`; the same for each of
        `extra_verdicts`."""
        from ehrmind.metrics import summarize

        return summarize(records, self.group_fields, verdicts=self.extra_verdicts)

    def error_analysis(
        self, examples: Mapping[str, Example], rows: Sequence[dict[str, Any]]
    ) -> dict[str, Any]:
        """What only the task can add to the error analysis (`eval.analysis`): `numeric_error` ({kind: signed
        errors summarised by `eval.analysis.error_summary`}) and `by_output_type` ({type: {n, accuracy,
        wrong_value, unread}}); nothing by default."""
        return {}

    export_formats: ClassVar[tuple[str, ...]] = ()
    """Formats `ehrmind export-predictions` writes for this task (other tools' files)."""

    def export_predictions(
        self, fmt: str, rows: Sequence[dict[str, Any]], path: Path, *, run_name: str
    ) -> dict[str, Any]:
        """Write scored prediction rows in another tool's format (one of `export_formats`); returns counts."""
        raise ConfigError(f"task {self.name!r} exports no format (it has none of another tool to write)")

    def report_sections(self, metrics: dict[str, Any]) -> list[str]:
        """Extra Markdown lines for report.md (task-specific metrics); none by default."""
        return []
