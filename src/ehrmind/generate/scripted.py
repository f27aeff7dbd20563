"""A generator whose completions come from a function: for tests of everything around the model (the
evaluation runner, resume, reports, diagnosis) without loading one, and for replaying known completions.

Same interface as the other backends (`generate(prompts, n, seeds=…) -> Generated`, with finish reasons),
so code under test takes the path a real backend takes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ehrmind.generate.base import Capabilities, Generated
from ehrmind.generate.settings import GenerationSettings

Reply = Callable[[list[dict[str, str]], int, int], str]
"""(prompt messages, sample index, seed) → completion."""


class ScriptedGenerator:
    """Completions from `reply(messages, sample, seed)`; records every prompt it was asked for."""

    capabilities = Capabilities(samples_per_request=True, seeds_prompts=True)

    def __init__(
        self,
        reply: Reply,
        name: str = "scripted",
        *,
        finish_reason: str | None = "stop",
        settings: GenerationSettings | None = None,
    ):
        self.reply = reply
        self.name = name
        self.finish_reason = finish_reason
        self.settings = settings
        """None unless given: replies do not depend on settings (a run record then keeps none)."""
        self.calls: list[list[list[dict[str, str]]]] = []
        """The prompts of each `generate` call, in order."""

    def describe(self) -> dict[str, Any]:
        return {"backend": "scripted"}

    def generate(
        self, prompts: list[list[dict[str, str]]], n: int = 1, *, seeds: Sequence[int] | None = None
    ) -> Generated:
        seeds = list(seeds) if seeds is not None else [0] * len(prompts)
        self.calls.append(prompts)
        out = [[self.reply(m, k, seed) for k in range(n)] for m, seed in zip(prompts, seeds, strict=True)]
        return Generated.uniform(out, self.finish_reason)
