"""The records that flow through ehrmind: Example (one item of a task) and Score (one verdict)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal


@dataclass(frozen=True)
class Example:
    """One task item, independent of any model or prompt format.

    Round-trips to a JSON row with `to_dict` / `from_dict`, so a JSONL snapshot written by
    `ehrmind data` is the same data that training and evaluation start from.
    """

    id: str
    """Stable identifier taken from the source (e.g. MedCalc-Bench's Row Number)."""
    task: str
    """Registered task name (`medcalc`, …): which Task renders and verifies it."""
    input: dict[str, Any]
    """What the prompt is built from (patient note, question, …)."""
    target: dict[str, Any]
    """The gold answer, typed by the task (value, tolerance limits, output type, …)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Category, calculator, note type, explanation, split, … — used for reports, never for scoring."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Example:
        missing = [k for k in ("id", "task", "input", "target") if k not in row]
        if missing:
            raise KeyError(f"not an ehrmind Example: missing field(s) {', '.join(missing)}")
        return cls(
            id=str(row["id"]),
            task=str(row["task"]),
            input=dict(row["input"]),
            target=dict(row["target"]),
            metadata=dict(row.get("metadata") or {}),
        )


@dataclass(frozen=True)
class Extraction:
    """What the task's contract (`Contract.read`) read from a completion, under one set of rules: what every
    other part of ehrmind (verification, reasoning checks, rationale filtering) starts from."""

    format_ok: bool
    """The contract's verdict under the rules asked for (`strict` unless said otherwise)."""
    think: str | None
    """The `<think>` block's text (None without one)."""
    answer: dict[str, Any] | None
    """The answer object holding the task's key: from the `<answer>` block, else the last such JSON object
    anywhere in the text (so a broken format can still be judged); None when there is none."""
    problem: str = ""
    """Why the format is not ok ("" when it is)."""


@dataclass(frozen=True)
class Score:
    """The verdict on one completion.

    `correct` and `reward` are None when the gold answer itself cannot be scored: such rows are
    counted apart, never silently as 0.
    """

    format_ok: bool
    """Exactly one <think> block then exactly one <answer> block holding a JSON object with the task's key."""
    correct: bool | None
    """Does the extracted answer meet the benchmark's own correctness rule? Judged whenever an answer
    can be extracted, even if the format is broken (see `strict_correct`)."""
    parsed: Any
    """What was extracted from the answer (a number, a date string, [weeks, days], a label), or None."""
    reward: float | None
    """The RL reward from the task's weights (paper defaults: 1.1 correct, 0 wrong, -2 bad format)."""
    reason: str = ""
    """Short human-readable explanation for reports."""
    reward_format_ok: bool | None = None
    """The format verdict `reward` used, when its rules differ from `format_ok`'s (`RewardWeights.format`
    "paper", the default); None: the reward used `format_ok`."""
    think: str | None = field(default=None, compare=False)
    """The `<think>` text the contract read (not in `to_dict`: prediction rows keep the completion)."""
    answer: dict[str, Any] | None = field(default=None, compare=False)
    """The answer object that was judged (not in `to_dict`)."""

    @property
    def strict_correct(self) -> bool | None:
        """Correct *and* well-formatted: the number RL optimises."""
        if self.correct is None:
            return None
        return bool(self.correct and self.format_ok)

    def to_dict(self) -> dict[str, Any]:
        """Its fields but `think` and `answer`, read shallowly: `asdict` would deep-copy the raw answer, and an
        answer nested a thousand levels deep must not crash scoring (issue #31)."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("think", "answer")}
        if isinstance(d["reward"], float) and math.isnan(d["reward"]):
            d["reward"] = None
        return d


@dataclass(frozen=True)
class Prediction:
    """One completion of one example and its verdict: a line of `predictions.jsonl` (`to_dict`), the row
    every metric, report and diagnosis reads."""

    id: str
    sample: int
    """Which of the example's K samples (0-based)."""
    completion: str
    score: Score
    extra: dict[str, Any] = field(default_factory=dict)
    """The task's extra verdicts (its analyses' row fields, e.g. the benchmark's own extraction) and the example's
    group and row fields (`task.groups.by`, `task.groups.rows`), in that order."""
    finish_reason: str | None = None
    """Why generation stopped when the generator says ("length": cut at max_new_tokens)."""
    yes_probability: float | None = None
    """P(yes) from the model's own log-probabilities at the binary answer (a `ChoicePoint` analysis)."""

    def to_dict(self) -> dict[str, Any]:
        row = {"id": self.id, "sample": self.sample, "completion": self.completion, **self.score.to_dict()}
        row.update(self.extra)
        if self.finish_reason is not None:
            row["finish_reason"] = self.finish_reason
        if self.yes_probability is not None:
            row["yes_probability"] = self.yes_probability
        return row


@dataclass(frozen=True)
class RewardWeights:
    """Reward for each verdict; defaults follow the EHRMind paper."""

    correct: float = 1.1
    wrong: float = 0.0
    bad_format: float = -2.0
    format: Literal["paper", "strict"] = "paper"
    """Which rules decide the reward's format and answer: `paper` (the EHRMind paper's
    `reward_score/medcalc.py`: any text around the tags, plain-JSON answer, the task's `reward_judge`) or
    `strict` (ehrmind's contract, `format_ok`, and `judge`: the verdict strict accuracy counts)."""

    def __post_init__(self) -> None:
        for name in ("correct", "wrong", "bad_format"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"reward weight {name} must be a finite number, got {value!r}")
        if self.format not in ("paper", "strict"):
            raise ValueError(f"reward format must be 'paper' or 'strict', got {self.format!r}")
        if not self.bad_format <= self.wrong < self.correct:  # the rule lives with its type: every caller
            raise ValueError(
                "reward weights must satisfy bad_format <= wrong < correct (a bad format is a penalty, a correct "
                f"answer pays most), got correct={self.correct}, wrong={self.wrong}, bad_format={self.bad_format}"
            )

    def reward(self, format_ok: bool, correct: bool | None) -> float | None:
        if not format_ok:
            return self.bad_format
        if correct is None:
            return None
        return self.correct if correct else self.wrong
