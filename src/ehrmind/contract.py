"""The output contract: `<think>…</think>` once, then `<answer>{JSON}</answer>` once.

One object per task does everything the contract asks for (as verifiers' XML parser gives its own format
sentence and format reward): it writes the instruction sentence for each prompt mode, reads a completion once
into every reading a task needs (ehrmind's strict rules and the EHRMind paper's), and writes gold completions.
Nothing else writes or reads the contract: a test checks that no other module calls the parser or spells the
tags into a prompt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from ehrmind.errors import ConfigError
from ehrmind.parsing import THINK_OPEN, check_contract, find_json_with_key
from ehrmind.types import Extraction

PAPER_PREFILL = "Let me solve this step by step.\n<think>"
"""The EHRMind paper's assistant prefill (`prefill: true`)."""


@dataclass(frozen=True)
class Wording:
    """A family's words in the contract's sentences (the contract writes the rest).

    Reasoning mode: "Think step by step inside <think> </think> tags: {steps} Then give the final {what} inside
    <answer> </answer> tags as a JSON object: {shape}. {notes} Write nothing after </answer>."
    Direct mode: "Give only the final {what} inside <answer> </answer> tags as a JSON object: {shape}, with no
    reasoning. {notes}"
    """

    steps: str
    """How to reason, one or more sentences."""
    what: str
    """What the answer is: "result", "decision", "answer"."""
    shape: str
    """The JSON object(s) a model may write, e.g. `{"answer": VALUE}`."""
    notes: str = ""
    """What the values mean (units, formats, optional keys)."""
    evidence: str = "the facts given above"
    """What a teacher's rationale must reason from (`ehrmind rationales`)."""


@dataclass(frozen=True)
class Reading:
    """A completion read once: every reading a task's verdicts, rewards and analyses start from."""

    strict: Extraction
    """ehrmind's strict rules (exactly one think block, then one answer block); the answer object falls back
    to the last JSON object with the key anywhere, so a broken format can still be judged."""
    paper: Extraction | None = None
    """The EHRMind paper's reward rules (no fallback object); None when not asked for."""


@dataclass(frozen=True)
class Contract:
    """The output contract of one task family, configured for one prompt (mode, prefill).

    A family declares it once (`Contract(answer_key, wording, modes)`) as its class attribute; a task instance
    holds `contract.configured(mode, prefill)`."""

    answer_key: str
    wording: Wording
    modes: tuple[str, ...] = ("reasoning", "direct")
    """Prompt modes the family supports; `one-shot` (worked exemplars as previous turns, then the reasoning
    contract) needs exemplars, so only a family that has them lists it."""
    mode: str = "reasoning"
    prefill: str = ""
    """The assistant prefill the prompt ends with ("" for none)."""

    def configured(self, mode: str = "reasoning", prefill: bool | str = False) -> Contract:
        """This contract for one prompt: `mode`, and `prefill` (True: the paper's opening, or the text)."""
        if mode not in self.modes:
            raise ConfigError(f"prompt mode must be {' or '.join(repr(m) for m in self.modes)}, got {mode!r}")
        if prefill and mode == "direct":
            raise ConfigError("prefill opens a <think> block; it only applies to mode='reasoning'")
        return replace(self, mode=mode, prefill=PAPER_PREFILL if prefill is True else (prefill or ""))

    # ------------------------------------------------------------------ writing
    def sentence(self) -> str:
        """The instruction sentence for the configured mode (the end of the system prompt)."""
        w = self.wording
        notes = f" {w.notes}" if w.notes else ""
        if self.mode == "direct":
            return (
                f"Give only the final {w.what} inside <answer> </answer> tags as a JSON object: {w.shape}, "
                f"with no reasoning.{notes}"
            )
        return (
            f"Think step by step inside <think> </think> tags: {w.steps} Then give the final {w.what} inside "
            f"<answer> </answer> tags as a JSON object: {w.shape}.{notes} Write nothing after </answer>."
        )

    def teacher_format(self, answer_value: Any) -> str:
        """How a teacher writes a rationale for a known answer (`ehrmind rationales`)."""
        return f"this format: <think>your reasoning</think><answer>{self._answer_json(answer_value)}</answer>"

    def whole(self, value: Any, reasoning: str = "") -> str:
        """A complete completion stating `value` (reasoning mode unless the contract is direct), including the
        part a prefill would supply: e.g. a worked exemplar's turn or a benchmark's explanation."""
        answer = f"<answer>{self._answer_json(value)}</answer>"
        return answer if self.mode == "direct" else f"<think>{reasoning}</think>\n{answer}"

    def gold(self, value: Any, reasoning: str = "") -> str:
        """A completion stating `value` as the model would write it after the prompt: without the part a
        prefill already supplied (SFT targets, tests)."""
        text, prefix = self.whole(value, reasoning), self.prefix
        return text[len(prefix) :] if prefix and text.startswith(prefix) else text

    def _answer_json(self, value: Any) -> str:
        return json.dumps({self.answer_key: value}, ensure_ascii=False)

    # ------------------------------------------------------------------ reading
    @property
    def prefix(self) -> str:
        """The part of the contract the prompt already supplied (`<think>` after a prefill)."""
        i = self.prefill.rfind(THINK_OPEN)
        return self.prefill[i:] if i >= 0 else ""

    def read(self, completion: str, *, prefixed: bool = False, paper: bool = False) -> Reading:
        """Read a completion once. The part of the contract a prefill supplied is prepended unless the text
        already holds it (`prefixed`: a text written whole). `paper`: also read it under the paper's rules."""
        text = (completion or "") if prefixed else self.prefix + (completion or "")
        think = self.mode != "direct"
        parts = check_contract(text, self.answer_key, require_think=think)
        obj = parts.answer_obj if parts.answer_obj is not None else find_json_with_key(text, self.answer_key)
        strict = Extraction(format_ok=parts.format_ok, think=parts.think, answer=obj, problem=parts.problem)
        if not paper:
            return Reading(strict)
        p = check_contract(text, self.answer_key, require_think=think, rules="paper")
        return Reading(strict, Extraction(p.format_ok, p.think, p.answer_obj, p.problem))
