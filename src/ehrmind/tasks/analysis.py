"""What a task family attaches to the small `Task` core: its groups, and analyses.

An **analysis** is what only one family computes (MedCalc-Bench's own verdict, MedCalc's reasoning checks and
numeric errors, EHRSHOT's AUROC and P(yes), TREC's ranking, exports to other tools' files). It adds fields to
each prediction row, summarizes rows into `metrics[name]`, writes its own section of report.md, and declares
the headline the CLI prints and, at most one per task, the task's main metric (`ehrmind matrix`). Generic code
never names an analysis's keys: it calls these methods. A family lists its analyses in `Task.analyses`,
(inspect_ai's scorers carry their metrics the same way); kinds of analysis that the engine drives (a model's
P(yes) at a choice point, exports, label audits, the paper's rules) are the subclasses below, found with
`attached(task, Kind)`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

if TYPE_CHECKING:
    from ehrmind.tasks.base import Task
    from ehrmind.types import Example


@dataclass(frozen=True)
class Groups:
    """The metadata fields a family groups its examples by."""

    by: tuple[str, ...] = ("category",)
    """Copied into each prediction row; metrics break down by each (`by_<field>`), the first coarsest."""
    rows: tuple[str, ...] = ()
    """Further metadata copied into each prediction row (e.g. patient and trial ids for ranking)."""
    plan: tuple[str, ...] = ("category",)
    """Fields `ehrmind diagnose` can diagnose and plan SFT rows by, coarsest first (the finest unless told)."""
    split: tuple[str, ...] = ()
    """Fields that tie items together (one patient, one note), first choice first: a held-out split keeps each
    value on one side; none: each item is its own group."""
    aliases: tuple[str, ...] = ()
    """Further metadata a finer group also answers to (a MedCalc calculator's id beside its name)."""

    def subgroup_names(self, example: Example) -> set[str]:
        """Names of the example's groups finer than its category (the values of `by[1:]` and `aliases`): what
        `sft_data.subgroups` and `sft_data.per_group` match."""
        fields = (*self.by[1:], *self.aliases)
        return {str(example.metadata[f]) for f in fields if example.metadata.get(f) not in (None, "")}


@dataclass(frozen=True)
class Headline:
    """A number the CLI prints after a run: its label and where it is in metrics.json (dotted paths)."""

    label: str
    value: str
    interval: str | None = None
    percent: bool = False
    """Printed as a percentage (a rate) rather than a number with three decimals."""
    count: str | None = None
    """A count printed after it in parentheses, with `count_text`."""
    count_text: str = ""

    def read(self, metrics: Mapping[str, Any]) -> tuple[Any, Any]:
        """(value, interval) from a metrics dict; None where absent."""
        return dig(metrics, self.value), dig(metrics, self.interval) if self.interval else None

    def show(self, value: Any) -> str:
        """A value as this headline prints it ("—" for none)."""
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return "—"
        return f"{100 * value:.1f}%" if self.percent else f"{value:.3f}"

    def line(self, metrics: Mapping[str, Any]) -> str | None:
        """`label value (95% CI lo–hi)`, None when the run has no such value."""
        value, ci = self.read(metrics)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return None
        text = f"{self.label} {self.show(value)}"
        if isinstance(ci, (list, tuple)) and len(ci) == 2 and None not in ci:
            text += f" (95% CI {self.show(ci[0]).rstrip('%')}–{self.show(ci[1])})"
        if self.count:
            text += f" ({dig(metrics, self.count) or 0} {self.count_text})"
        return text


def dig(metrics: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path of a metrics dict (None where absent)."""
    node: Any = metrics
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


ACCURACY = Headline("accuracy", "accuracy", "ci95", percent=True)
"""The main metric of a family whose analyses declare none."""


class Analysis:
    """Base of every analysis; each method is optional (the defaults add nothing)."""

    name: ClassVar[str] = ""
    """Its block in metrics.json (`metrics[name]`) and, for a verdict, its row fields' prefix."""
    verdict: ClassVar[bool] = False
    """A further correctness verdict reported beside `correct` (as lm-evaluation-harness reports "strict" and
    "flexible" extraction side by side): `row` returns `<name>_correct` (and `<name>_parsed`), and the
    accuracy blocks gain `<name>_accuracy` with its 95% interval, overall and by group. Rewards never see it."""
    headline: ClassVar[tuple[Headline, ...]] = ()
    """What `ehrmind eval` / `score` print after the accuracy."""
    main: ClassVar[Headline | None] = None
    """The task's main metric, if this analysis has it (at most one analysis of a task declares one)."""
    leads: ClassVar[bool] = False
    """Its headline replaces the generic accuracy line: its first headline is the benchmark's own number (printed
    first, with n and format errors) and it names `accuracy` (`Task.verify`'s) itself (MedCalc: MedCalc-Bench's
    official accuracy, then "ehrmind-extraction accuracy")."""

    def row(self, task: Task, example: Example, completion: str) -> dict[str, Any]:
        """Fields this analysis adds to one prediction row (also filled in for rows of a resumed run)."""
        return {}

    def summarize(
        self, task: Task, examples: Mapping[str, Example], rows: Sequence[dict[str, Any]]
    ) -> dict[str, Any] | None:
        """`metrics[name]` from the prediction rows (`examples` by id; empty when scoring without data at
        hand); None: nothing to report."""
        return None

    def report(self, metrics: Mapping[str, Any]) -> list[str]:
        """Its Markdown section of report.md (none by default)."""
        return []


class ChoicePoint(Analysis):
    """A binary answer the model itself can put a probability on: the engine asks a generator that can score
    choices (`capabilities.choice_logprobs`) for P(yes) / (P(yes) + P(no)) at `point` (the row's
    `yes_probability`)."""

    def point(self, task: Task, example: Example, completion: str) -> tuple[str, dict[str, str]] | None:
        """(the completion up to the answer's value, {"yes": continuation, "no": continuation}); None when the
        completion states no binary answer."""
        return None


class Exports(Analysis):
    """Scored prediction rows written in other tools' formats (`ehrmind export-predictions`)."""

    formats: ClassVar[tuple[str, ...]] = ()

    def export(
        self, task: Task, fmt: str, rows: Sequence[dict[str, Any]], path: Path, *, run_name: str
    ) -> dict[str, Any]:
        """Write `rows` as `fmt` (one of `formats`) to `path`; returns counts."""
        raise NotImplementedError


class LabelAudit(Analysis):
    """`ehrmind audit`: a family with a knowledge base recomputes its data's labels and reports where they
    disagree."""

    def audit(self, data: str | Path, out_dir: str | Path, corrected: str | Path | None = None) -> list[Path]:
        """Returns the files written."""
        raise NotImplementedError


class PaperRules(Analysis):
    """The EHRMind paper's per-family rules that `ehrmind diagnose` and the SFT data builder follow."""

    def reliable_m(self, example: Example) -> int | None:
        """The number m of possible answers the paper assumes for an item in its reliable pass@k (thresholds
        k // m + 2 correct samples and entropy < 0.8 · ln m nats); None: plain pass@k."""
        return None

    def sft_counts(self, category_sizes: dict[str, int], fraction: float) -> dict[str, int] | None:
        """Rows per category for an SFT warm-up of `fraction` of the training rows (`sft_data.fraction_rule:
        paper`); None: the share of each category."""
        return None

    def reading(self, task: Task, example: Example, completion: str) -> tuple[str | None, bool] | None:
        """The paper's own reading of one sample in its reliable pass@k (`reliable_rule: paper`): (the answer
        string its entropy counts, None where its code skips the sample; whether its code counts the sample
        correct). None: the task's verdict (`Task.verify`) and normalised answer."""
        return None


_PAPER_OPEN = re.compile(r"<answer>\s*\{")
_PAPER_CLOSE = re.compile(r"\}\s*</answer>")


def paper_answer_json(text: str, key: str) -> dict[str, Any]:
    """The EHRMind paper's `extract_answer_json` (`src/eval/medcalc/analysis/cal_analysis.py:12-27`, and
    `src/eval/matching/analysis/cal_analysis.py:10-24` with key `idx`; linjc16/EHRMind@3bdde9f): the JSON object
    of `<answer>\\s*(\\{.*?\\})\\s*</answer>` (DOTALL) in the text with `</answer>` appended, else
    `{key: int(…)}` from the first `"key"\\s*:\\s*"?([\\d\\s.]+)"?`, else {}. Raises ValueError where the
    paper's code raises (`int("4.5")`; its callers catch it). In linear time: only the first `<answer>{` can
    start the match (a `}</answer>` after a later one is after it too), and it ends at the first `}</answer>`."""
    import json

    text += "</answer>"
    start = _PAPER_OPEN.search(text)
    end = _PAPER_CLOSE.search(text, start.end() - 1) if start else None
    if start is not None and end is not None:
        try:
            found = json.loads(text[start.end() - 1 : end.start() + 1])
            return found if isinstance(found, dict) else {}  # a dict in the paper's data; `.get` needs one
        except (json.JSONDecodeError, RecursionError):
            pass  # the paper prints "JSON decode failed" and falls back
    fallback = re.search(rf'"{re.escape(key)}"\s*:\s*"?([\d\s.]+)"?', text)
    if fallback:
        return {key: int(fallback.group(1))}
    return {}


A = TypeVar("A", bound=Analysis)


def attached(task: Task, kind: type[A]) -> list[A]:
    """The task's analyses of one kind."""
    return [a for a in task.analyses if isinstance(a, kind)]


def main_metric(task: Task) -> Headline:
    """The task's main metric: the one an analysis declares, else accuracy."""
    return next((a.main for a in task.analyses if a.main is not None), ACCURACY)


def headlines(task: Task) -> list[Headline]:
    """What the CLI prints after a run, the first with n and format errors: accuracy, then each analysis's
    headline; a leading analysis's (`Analysis.leads`) come first instead of accuracy."""
    lead = [a for a in task.analyses if a.leads]
    first = [h for a in lead for h in a.headline] or [ACCURACY]
    return [*first, *(h for a in task.analyses if not a.leads for h in a.headline)]


def extra_headlines(task: Task) -> list[Headline]:
    """The headlines other than `accuracy` itself (what a summary that already shows accuracy adds)."""
    return [h for h in headlines(task) if h.value != ACCURACY.value]


def verdict_names(task: Task) -> tuple[str, ...]:
    """Names of the task's further verdicts (`Analysis.verdict`)."""
    return tuple(a.name for a in task.analyses if a.verdict)


def row_fields(task: Task, example: Example, completion: str) -> dict[str, Any]:
    """Every analysis's fields for one prediction row."""
    out: dict[str, Any] = {}
    for a in task.analyses:
        out.update(a.row(task, example, completion))
    return out


def task_metrics(
    task: Task, rows: Sequence[dict[str, Any]], examples: Iterable[Example] = ()
) -> dict[str, Any]:
    """A run's metrics: accuracy with its 95% interval and format errors, by each of `task.groups.by`, with
    each further verdict beside it; then `metrics[name]` of each analysis."""
    from ehrmind.metrics import summarize

    out = summarize(rows, task.groups.by, verdicts=verdict_names(task))
    by_id = {ex.id: ex for ex in examples}
    for a in task.analyses:
        block = a.summarize(task, by_id, rows)
        if block is not None:
            out[a.name] = block
    return out


def report_sections(task: Task, metrics: Mapping[str, Any]) -> list[str]:
    """Every analysis's report.md section, a blank line between them."""
    lines: list[str] = []
    for a in task.analyses:
        section = a.report(metrics)
        if section:
            lines += [*([""] if lines else []), *section]
    return lines
