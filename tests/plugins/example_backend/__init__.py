"""`bmi_oracle`: a backend written outside ehrmind (issue #27) — registered by the `ehrmind.backends` entry
point of the `ehrmind-example-plugins` distribution, it answers `toy_bmi` prompts by reading the weight and
height from the note, so a command-line run has known results (every answer right, every value grounded)."""

from __future__ import annotations

import re
from typing import Any

from ehrmind.generate.backends import register_backend
from ehrmind.generate.base import Capabilities, Generated

_NOTE = re.compile(r"Weight ([\d.]+) kg, height ([\d.]+) m\.")


class BmiOracle:
    """A generator: the protocol's name, settings, declared capabilities, describe() and generate()."""

    capabilities = Capabilities()

    def __init__(self, model: str, settings: Any = None):
        self.name, self.settings = model, settings

    def describe(self) -> dict[str, Any]:
        return {"oracle": "bmi"}

    def generate(self, prompts: list[list[dict[str, str]]], n: int = 1, **seeding: Any) -> Generated:
        return Generated.uniform([[self._answer(p)] * n for p in prompts], "stop")

    @staticmethod
    def _answer(messages: list[dict[str, str]]) -> str:
        m = _NOTE.search(messages[-1]["content"])
        if m is None:
            return "<think>no note</think>\n<answer>{}</answer>"
        weight, height = float(m.group(1)), float(m.group(2))
        bmi = round(weight / height**2, 1)
        return f'<think>BMI = {weight:g} / {height:g}^2 = {bmi}</think>\n<answer>{{"answer": {bmi}}}</answer>'


@register_backend("bmi_oracle")
def build(model: str, settings: Any, backend: Any) -> BmiOracle:
    return BmiOracle(model, settings)
