"""Training data from Examples: SFT targets ("explanation as reasoning") and GRPO prompts.

Prompts are rendered with the model's own chat template by the same function evaluation uses, so a model is
trained on exactly the text it is evaluated on.
"""

from __future__ import annotations

import logging
import math
import random
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from ehrmind.errors import ConfigError
from ehrmind.generate.chat import render_prompt
from ehrmind.tasks.analysis import PaperRules, attached
from ehrmind.tasks.base import Task, gold_completion
from ehrmind.types import Example

log = logging.getLogger(__name__)


def _group_key(ex: Example) -> str:
    return str(ex.metadata.get("category", ""))


def select_examples(
    examples: Sequence[Example],
    *,
    fraction: float | None = None,
    per_category_cap: int | None = None,
    categories: Sequence[str] | None = None,
    subgroups: Sequence[str] | None = None,
    per_group: dict[str, int] | None = None,
    seed: int = 0,
    fraction_rule: str = "paper",
    task: Task | None = None,
) -> list[Example]:
    """Subset sampling by category: filter, then keep `fraction` of the rows — by the task's paper rule
    (`fraction_rule="paper"`, `PaperRules.sft_counts`) or as that share of each category (`"per_category"`,
    at least one row; also for tasks without a paper rule) — at most `per_category_cap`, or exactly
    `per_group[name]` rows for a category or a finer group (`subgroups` and `per_group` match
    `Groups.subgroup_names`). Deterministic for a seed; the original order is kept."""
    if fraction_rule not in ("paper", "per_category"):
        raise ConfigError(f"sft_data.fraction_rule must be 'paper' or 'per_category', got {fraction_rule!r}")
    if task is None and examples:  # the task the examples name knows their finer groups
        from ehrmind.registry import get_task

        task = get_task(examples[0].task)
    pool = _filtered(examples, task, categories, subgroups)
    rng = random.Random(seed)
    if per_group:
        return _exact_counts(pool, task, per_group, rng)
    paper = fraction is not None and fraction_rule == "paper" and task is not None
    return _by_fraction(pool, task if paper else None, fraction, per_category_cap, rng)


def _subgroups(task: Task | None, ex: Example) -> set[str]:
    """The finer groups the example's task puts it in (none without a task)."""
    return task.groups.subgroup_names(ex) if task is not None else set()


def _paper_counts(task: Task, groups: dict[str, list[Example]], fraction: float) -> dict[str, int] | None:
    """How many rows of each category the task's paper rule keeps of `fraction` (None: it has none)."""
    rules = attached(task, PaperRules)
    return rules[0].sft_counts({g: len(m) for g, m in groups.items()}, fraction) if rules else None


def _filtered(
    examples: Sequence[Example],
    task: Task | None,
    categories: Sequence[str] | None,
    subgroups: Sequence[str] | None,
) -> list[Example]:
    """The examples in one of `categories` and one of `subgroups` (each filter only when given)."""
    wanted_cats = set(categories) if categories else None
    wanted_subs = {str(c) for c in subgroups} if subgroups else None
    return [
        ex
        for ex in examples
        if (wanted_cats is None or _group_key(ex) in wanted_cats)
        and (wanted_subs is None or _subgroups(task, ex) & wanted_subs)
    ]


def _exact_counts(
    pool: list[Example], task: Task | None, per_group: dict[str, int], rng: random.Random
) -> list[Example]:
    """`per_group[name]` rows (all when fewer) of each category or finer group `name`."""
    keep_ids: set[str] = set()
    for name, count in per_group.items():
        members = [ex for ex in pool if name == _group_key(ex) or name in _subgroups(task, ex)]
        if not members:
            raise ConfigError(f"sft_data.per_group names {name!r}, which matches no training row")
        keep_ids.update(ex.id for ex in rng.sample(members, min(count, len(members))))
    return [ex for ex in pool if ex.id in keep_ids]


def _by_fraction(
    pool: list[Example],
    paper_task: Task | None,
    fraction: float | None,
    per_category_cap: int | None,
    rng: random.Random,
) -> list[Example]:
    """Per category: the paper rule's count (with `paper_task`), else `fraction` of it (at least one), else
    all; at most `per_category_cap`."""
    groups: dict[str, list[Example]] = defaultdict(list)
    for ex in pool:
        groups[_group_key(ex)].append(ex)
    paper = (
        _paper_counts(paper_task, groups, fraction)
        if paper_task is not None and fraction is not None
        else None
    )
    keep: set[str] = set()
    for group, members in sorted(groups.items()):
        n = paper[group] if paper is not None else _share(len(members), fraction)
        if per_category_cap is not None:
            n = min(n, per_category_cap)
        keep.update(ex.id for ex in rng.sample(members, n))
    return [ex for ex in pool if ex.id in keep]


def _share(n: int, fraction: float | None) -> int:
    """`fraction` of `n` rows, at least one; all of them without a fraction."""
    return n if fraction is None else max(1, math.ceil(fraction * n))


def prompt_text(tokenizer: Any, task: Task, example: Example, **template_kwargs: Any) -> str:
    """The prompt as text, without a BOS the tokenizer will add again when TRL encodes it; `template_kwargs`
    are the recipe's `chat_template_kwargs`."""
    text = render_prompt(tokenizer, task.render(example), **template_kwargs)
    bos = getattr(tokenizer, "bos_token", None)
    if bos and text.startswith(bos):
        ids = tokenizer("x")["input_ids"]
        if ids and ids[0] == tokenizer.bos_token_id:
            text = text[len(bos) :]
    return text


def _fits(tokenizer: Any, text: str, max_tokens: int | None) -> bool:
    return max_tokens is None or len(tokenizer(text)["input_ids"]) <= max_tokens


def sft_rows(
    task: Task,
    examples: Sequence[Example],
    tokenizer: Any,
    *,
    max_prompt_tokens: int | None = None,
    chat_template_kwargs: dict[str, Any] | None = None,
) -> tuple[list[dict[str, str]], dict[str, int]]:
    """Prompt–completion rows: the reference explanation inside <think>, the gold answer in the answer JSON.

    TRL computes the loss on the completion only and appends the EOS token."""
    rows, counts = [], {"kept": 0, "no_explanation": 0, "prompt_too_long": 0}
    for ex in examples:
        reasoning = str(ex.metadata.get("explanation") or "").strip()
        if task.contract.mode == "reasoning" and not reasoning:
            counts["no_explanation"] += 1
            continue
        prompt = prompt_text(tokenizer, task, ex, **(chat_template_kwargs or {}))
        if not _fits(tokenizer, prompt, max_prompt_tokens):
            counts["prompt_too_long"] += 1
            continue
        rows.append(
            {"prompt": prompt, "completion": gold_completion(task, ex, reasoning), "example_id": ex.id}
        )
        counts["kept"] += 1
    _report(counts, "SFT")
    return rows, counts


def rl_rows(
    task: Task,
    examples: Sequence[Example],
    tokenizer: Any,
    *,
    max_prompt_tokens: int | None = None,
    chat_template_kwargs: dict[str, Any] | None = None,
) -> tuple[list[dict[str, str]], dict[str, int]]:
    """GRPO rows: the rendered prompt and the example id the reward functions verify against."""
    rows, counts = [], {"kept": 0, "prompt_too_long": 0}
    for ex in examples:
        prompt = prompt_text(tokenizer, task, ex, **(chat_template_kwargs or {}))
        if not _fits(tokenizer, prompt, max_prompt_tokens):
            counts["prompt_too_long"] += 1
            continue
        rows.append({"prompt": prompt, "example_id": ex.id})
        counts["kept"] += 1
    _report(counts, "RL")
    return rows, counts


def _report(counts: dict[str, int], stage: str) -> None:
    dropped = {k: v for k, v in counts.items() if k != "kept" and v}
    if dropped:
        log.warning("%s data: kept %d rows, dropped %s", stage, counts["kept"], dropped)
    if not counts["kept"]:
        raise ConfigError(
            f"{stage} data is empty after filtering ({dropped}); check the data and sft_data options"
        )
