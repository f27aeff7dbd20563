"""Prompts for patient–trial matching, and fitting a trial's criteria into a token budget.

The patient note is never cut. When the prompt would exceed the budget, criteria are dropped from the end
of each section, the two sections sharing the room in proportion to their length (each with a floor);
every section that lost criteria ends with an explicit `[… N criteria omitted …]` line, and a criterion
too long to fit on its own is cut at a word boundary and marked `[… truncated …]`. A section is never
dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ehrmind.contract import Contract, Wording
from ehrmind.tasks.trec_ct.labels import ELIGIBLE, EXCLUDED, NOT_RELEVANT

TokenCounter = Callable[[str], int]

_DEFINITIONS = (
    f'- "{ELIGIBLE}": the patient has the condition the trial targets, meets its inclusion criteria and no '
    "exclusion criterion applies;\n"
    f'- "{EXCLUDED}": the patient has the condition the trial targets, but the eligibility criteria (usually an '
    "exclusion criterion) rule the patient out;\n"
    f'- "{NOT_RELEVANT}": the patient is not relevant for the trial in any way (for example, the trial '
    "targets a different condition)."
)
_ANSWER = (
    f'{{"prediction": "{ELIGIBLE}"}}, {{"prediction": "{EXCLUDED}"}} or {{"prediction": "{NOT_RELEVANT}"}}'
)

TASK_TEXT = (
    "You are a clinical research coordinator who screens patients for clinical trials. Read the patient note "
    "and the trial (title, target conditions, inclusion and exclusion criteria) and decide how the patient "
    "matches the trial:\n"
    f"{_DEFINITIONS}\n"
)
CONTRACT = Contract(
    answer_key="prediction",
    wording=Wording(
        steps="check whether the trial targets the patient's condition, then go through the inclusion and "
        "exclusion criteria against the note.",
        what="decision",
        shape=_ANSWER,
        evidence="the patient note against the trial: does the trial target the patient's condition, and which "
        "inclusion and exclusion criteria does the note meet or fail",
    ),
)
"""Trial matching's output contract: `{"prediction": label}` (the contract writes the instruction sentence)."""
REASONING_SYSTEM = TASK_TEXT + CONTRACT.sentence()
DIRECT_SYSTEM = TASK_TEXT + CONTRACT.configured("direct").sentence()

QUESTION = "Is this patient eligible for the trial, excluded by its criteria, or not relevant to it?"


def approx_tokens(text: str) -> int:
    """Tokenizer-free estimate: one token per 4 characters (BPE tokenizers give 3.5–4.5 on English
    clinical text). Pass a real counter (`TrecCtTask(token_counter=…)`) when the tokenizer is at hand."""
    return (len(text) + 3) // 4


def omitted_line(n: int) -> str:
    return f"[… {n} criteri{'on' if n == 1 else 'a'} omitted …]"


TRUNCATED = " [… truncated …]"
MIN_PARTIAL_TOKENS = 16
MIN_SECTION_SHARE = 0.15
"""Each non-empty section is first given this share of the room (or all it needs, if less), so a short
exclusion list is not squeezed out by a long inclusion list; the rest is shared in proportion to length."""
"""A criterion is cut to fit only when at least this many tokens of room are left for it."""


@dataclass(frozen=True)
class Fitted:
    """The criteria lines that fit, and what was left out."""

    inclusion: list[str]
    exclusion: list[str]
    inclusion_omitted: int
    exclusion_omitted: int
    truncated_criteria: int
    over_budget: bool
    """The prompt exceeds the budget even with every criterion omitted (the note alone is too long)."""

    @property
    def truncated(self) -> bool:
        return bool(self.inclusion_omitted or self.exclusion_omitted or self.truncated_criteria)

    def stats(self) -> dict[str, Any]:
        return {
            "inclusion_omitted": self.inclusion_omitted,
            "exclusion_omitted": self.exclusion_omitted,
            "truncated_criteria": self.truncated_criteria,
            "truncated": self.truncated,
            "over_budget": self.over_budget,
        }


def _cut_words(text: str, budget: int, count: TokenCounter) -> str | None:
    """The longest word prefix of `text` that, with the truncation mark, fits in `budget` tokens."""
    words = text.split()
    lo, hi, best = 1, len(words) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        candidate = " ".join(words[:mid]) + TRUNCATED
        if count(candidate) <= budget:
            best, lo = candidate, mid + 1
        else:
            hi = mid - 1
    return best


def _fit_section(items: list[str], budget: float, count: TokenCounter) -> tuple[list[str], int, int, float]:
    """Numbered lines for the criteria of one section within `budget` tokens: (lines, omitted, cut, used)."""
    lines: list[str] = []
    used = 0.0
    for i, item in enumerate(items):
        line = f"{i + 1}. {item}"
        cost = count(line) + 1
        if used + cost <= budget:
            lines.append(line)
            used += cost
            continue
        room = budget - used
        if room >= MIN_PARTIAL_TOKENS:
            cut = _cut_words(line, int(room) - 1, count)
            if cut is not None:
                lines.append(cut)
                used += count(cut) + 1
                return lines, len(items) - i - 1, 1, used
        return lines, len(items) - i, 0, used
    return lines, 0, 0, used


def fit_criteria(
    inclusion: list[str], exclusion: list[str], budget: int, count: TokenCounter = approx_tokens
) -> Fitted:
    """Choose the criteria that fit in `budget` tokens (already net of everything else in the prompt).

    All fit → all kept. Otherwise each section gets a share of the budget: a floor (`MIN_SECTION_SHARE`),
    then the rest in proportion to its length (room one section does not use passes to the other); it keeps
    its criteria in order while they fit and reports how many were omitted."""
    marker = count(omitted_line(999)) + 1
    costs = [sum(count(f"{i + 1}. {c}") + 1 for i, c in enumerate(sec)) for sec in (inclusion, exclusion)]
    if sum(costs) <= budget:
        return Fitted(
            [f"{i + 1}. {c}" for i, c in enumerate(inclusion)],
            [f"{i + 1}. {c}" for i, c in enumerate(exclusion)],
            0,
            0,
            0,
            False,
        )
    room = max(0.0, budget - marker * sum(1 for s in (inclusion, exclusion) if s))
    floors = [min(c, room * MIN_SECTION_SHARE) for c in costs]
    rest = [c - f for c, f in zip(costs, floors, strict=True)]
    shares = [f + (room - sum(floors)) * r / (sum(rest) or 1) for f, r in zip(floors, rest, strict=True)]
    inc = _fit_section(inclusion, shares[0], count)
    exc = _fit_section(exclusion, shares[1], count)
    spare = room - inc[3] - exc[3]
    # give what one section left unused to the other, if that lets it keep more
    if spare > 0 and inc[1] and not exc[1]:
        inc = _fit_section(inclusion, room - exc[3], count)
    elif spare > 0 and exc[1] and not inc[1]:
        exc = _fit_section(exclusion, room - inc[3], count)
    inc_lines = inc[0] + ([omitted_line(inc[1])] if inc[1] else [])
    exc_lines = exc[0] + ([omitted_line(exc[1])] if exc[1] else [])
    return Fitted(inc_lines, exc_lines, inc[1], exc[1], inc[2] + exc[2], budget < 0 or room <= 0)


def trial_header(inp: dict[str, Any]) -> str:
    lines = [f"Clinical trial: {inp.get('trial_title') or '(no title)'}"]
    if inp.get("conditions"):
        lines.append(f"Target conditions: {'; '.join(inp['conditions'])}")
    if inp.get("gender"):
        lines.append(f"Eligible sex: {inp['gender']}")
    lo, hi = inp.get("minimum_age"), inp.get("maximum_age")
    if lo or hi:
        ages = f"{lo} to {hi}" if lo and hi else (f"{lo} or older" if lo else f"up to {hi}")
        lines.append(f"Eligible ages: {ages}")
    return "\n".join(lines)


def user_prompt(inp: dict[str, Any], fitted: Fitted) -> str:
    unsplit = bool(inp.get("criteria_unsplit"))
    inc_title = (
        "Eligibility criteria (the registry does not separate inclusion from exclusion):"
        if unsplit
        else "Inclusion criteria:"
    )
    parts = [f"Patient note:\n{inp['patient']}", trial_header(inp)]
    parts.append(inc_title + "\n" + ("\n".join(fitted.inclusion) if fitted.inclusion else "(none listed)"))
    if not unsplit or fitted.exclusion:
        parts.append(
            "Exclusion criteria:\n" + ("\n".join(fitted.exclusion) if fitted.exclusion else "(none listed)")
        )
    parts.append(QUESTION)
    return "\n\n".join(parts)


def build_user_prompt(
    inp: dict[str, Any], system: str, max_tokens: int, count: TokenCounter = approx_tokens
) -> tuple[str, Fitted]:
    """The user turn within `max_tokens` (system + user, estimated by `count`), and what was left out."""
    empty = Fitted([], [], 0, 0, 0, False)
    fixed = count(system) + count(user_prompt(inp, empty)) + 8  # + chat template overhead, roughly
    fitted = fit_criteria(
        list(inp.get("inclusion") or []), list(inp.get("exclusion") or []), max_tokens - fixed, count
    )
    return user_prompt(inp, fitted), fitted
