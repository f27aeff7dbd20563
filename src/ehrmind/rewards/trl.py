"""TRL reward functions built from `Task.verify`.

Two named components, logged by TRL under their `__name__`, whose sum is exactly `Score.reward`:
`format_reward` (0, or the bad-format penalty) and `correctness_reward` (the correct/wrong weight when
the format is kept, 0 otherwise; None when the gold answer cannot be scored), the format judged by the
rules `RewardWeights.format` names. Each completion is verified
once; both components read the cached Score.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ehrmind.tasks.base import Task
from ehrmind.types import Example, Score

RewardFunc = Callable[..., list[float | None]]


class _Verdicts:
    """Score per (example id, completion), computed once per batch."""

    def __init__(self, task: Task, examples: Sequence[Example]):
        self.task = task
        self.by_id = {ex.id: ex for ex in examples}
        self._cache: dict[tuple[str, str], Score] = {}

    def scores(self, completions: Sequence[Any], example_id: Sequence[str]) -> list[Score]:
        out = []
        for completion, ex_id in zip(completions, example_id, strict=True):
            text = completion if isinstance(completion, str) else completion[-1]["content"]
            key = (ex_id, text)
            if key not in self._cache:
                if len(self._cache) > 100_000:  # bounded: one training step never needs more
                    self._cache.clear()
                self._cache[key] = self.task.verify(self.by_id[ex_id], text)
            out.append(self._cache[key])
        return out


def reward_functions(task: Task, examples: Sequence[Example]) -> list[RewardFunc]:
    verdicts = _Verdicts(task, examples)
    w = task.options.reward_weights

    def ok(s: Score) -> bool:
        return s.format_ok if s.reward_format_ok is None else s.reward_format_ok

    def format_reward(
        completions: Sequence[Any], example_id: Sequence[str], **kwargs: Any
    ) -> list[float | None]:
        return [0.0 if ok(s) else w.bad_format for s in verdicts.scores(completions, example_id)]

    def correctness_reward(
        completions: Sequence[Any], example_id: Sequence[str], **kwargs: Any
    ) -> list[float | None]:
        return [s.reward if ok(s) else 0.0 for s in verdicts.scores(completions, example_id)]

    return [format_reward, correctness_reward]
