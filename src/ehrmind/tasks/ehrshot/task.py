"""The `ehrshot` task: EHRSHOT-style yes/no predictions from a structured timeline up to a prediction time.

Answer: `{"prediction": "yes" | "no"}` (the labeler's own names and booleans are accepted too, see
`ANSWER_ALIASES`), optionally with `"probability"` in [0, 1] (or a percent string), used as the score for
AUROC/AUPRC. Metrics: accuracy (every task's), balanced accuracy (EHRSHOT's few-shot metric), AUROC and
AUPRC, each with a bootstrap 95% interval, per labeler.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, create_model

from ehrmind.errors import ConfigError, DataError, excerpt
from ehrmind.parsing import MAX_ANSWER_CHARS, normalize_text
from ehrmind.registry import register_task
from ehrmind.tasks.analysis import Groups
from ehrmind.tasks.base import Task, TaskOptions
from ehrmind.tasks.ehrshot.analyses import Binary, ByLabeler, MedsExport, YesProbability
from ehrmind.tasks.ehrshot.build import EXAMPLES, LABEL_NAMES, build_examples, build_snapshot
from ehrmind.tasks.ehrshot.prompts import CONTRACT, TASK_TEXT, USER_TEMPLATE
from ehrmind.types import Example

POSITIVE = frozenset({"yes", "y", "true", "positive", "1"})
NEGATIVE = frozenset({"no", "n", "false", "negative", "0"})
ANSWER_ALIASES = {"positive": POSITIVE, "negative": NEGATIVE}
"""Answers accepted for every labeler; each labeler adds its own names (e.g. readmitted / not readmitted)."""


@lru_cache(maxsize=64)
def labeler_answer_names(labeler: str) -> tuple[frozenset[str], frozenset[str]]:
    """(positive names, negative names) a model may answer with for this labeler."""
    from ehrmind.tasks.ehrshot.labelers import default_config, make_labeler

    pos, neg = set(POSITIVE), set(NEGATIVE)
    try:
        lab = make_labeler(default_config(labeler))
    except ConfigError:
        return frozenset(pos), frozenset(neg)
    pos |= set(lab.positive_names)
    neg |= set(lab.negative_names)
    title = lab.config.title.lower()
    if title:
        pos.add(title)
        neg |= {f"no {title}", f"not {title}"}
    return frozenset(pos), frozenset(neg)


_VALUE_START = re.compile(r"\s*:\s*")
"""After the answer key: the colon and spaces before its value."""


def parse_prediction(value: Any, labeler: str = "") -> tuple[bool | None, str]:
    """Read a yes/no answer: "yes"/"no" (any case, trailing punctuation), true/false, 1/0, or the labeler's
    own names. Never guesses: anything else is (None, reason)."""
    if isinstance(value, bool):
        return value, ""
    if isinstance(value, int) and value in (0, 1):
        return bool(value), ""
    if (
        isinstance(value, list) and len(value) == 1 and not isinstance(value[0], list)
    ):  # ["yes"]: one level only
        return parse_prediction(value[0], labeler)
    if not isinstance(value, str):
        return None, "prediction is not a yes/no string"
    if len(value) > MAX_ANSWER_CHARS:  # never normalised: bounded work on model text
        return None, "prediction too long for yes or no"
    s = normalize_text(value).strip().lower().strip(" .!\"'`")
    s = " ".join(s.replace("_", " ").replace("-", " ").split())
    pos, neg = labeler_answer_names(labeler)
    if s in pos:
        return True, ""
    if s in neg:
        return False, ""
    return None, f"prediction {value[:40]!r} is not yes or no"


def parse_probability(value: Any) -> float | None:
    """A probability in [0, 1]: a JSON number, or a string '0.7' / '70%'; None otherwise."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        if len(value) > MAX_ANSWER_CHARS:
            return None
        s = normalize_text(value).strip()
        pct = s.endswith("%")
        try:
            v = float(s.rstrip("%").strip())
        except ValueError:
            return None
        v = v / 100 if pct else v
    elif isinstance(value, (int, float)):
        try:
            v = float(value)
        except OverflowError:  # a huge JSON integer: not a probability, and a reward must not raise
            return None
    else:
        return None
    return v if math.isfinite(v) and 0.0 <= v <= 1.0 else None


class _Options(TaskOptions):
    labeler: str | None = Field(
        None, description="Build examples from raw events (MEDS / EHRSHOT) with this labeler when loading."
    )


def _build_fields() -> dict[str, Any]:
    from ehrmind.tasks.ehrshot.build import BUILD_OPTIONS, _labeler_fields, _option_types

    types = _option_types()
    fields = {
        n: (types.get(n, Any) | None, Field(None, description=d))
        for n, d in BUILD_OPTIONS.items()
        if n != "labeler"
    }
    for n in sorted(_labeler_fields() - set(fields)):
        fields[n] = (Any, Field(None, description="labeler setting (docs/ehrshot.md)"))
    return fields


EhrshotOptions = create_model("EhrshotOptions", __base__=_Options, **_build_fields())
EhrshotOptions.__doc__ = """The prompt options, and the example builder's options (window, rules, …; `ehrmind data
--task ehrshot` takes the same) as fields: a typo such as `windw_days` fails at once, not when raw events are
read, or never; their values are checked by the builder when it runs."""


@register_task("ehrshot")
class EhrshotTask(Task):
    """EHRSHOT (Wornow et al., NeurIPS 2023) tasks over MEDS / EHRSHOT timelines, answered as yes/no."""

    version = "4"
    """2: the benchmark's label rules by default (window from 1 day, censored kept, dates at 23:59). 3: the
    direct-mode instruction written by the output contract ("Give only the final answer …, with no
    reasoning."). 4 (issue #29): prediction times at 23:59:59, MIMIC's real midnight times kept
    (`timed_codes`), the benchmark code's same-day readmission rule, float32 values read as their decimals."""
    contract = CONTRACT
    groups = Groups(by=("category",), rows=("subject_id", "prediction_time", "label"), split=("subject_id",))
    analyses = (Binary(), ByLabeler(), YesProbability(), MedsExport())
    Options = EhrshotOptions

    def __init__(self, **options: Any):
        """`labeler` and build options let `load` build Examples from raw event data directly (the CLI uses
        `ehrmind data` for that and loads the snapshot)."""
        super().__init__(**options)
        self.labeler = self.options.labeler
        self.build_options = {  # those given a value (a recipe passes every option, None when unset)
            k: getattr(self.options, k)
            for k in self.options.model_fields_set
            if k not in TaskOptions.model_fields and k != "labeler" and getattr(self.options, k) is not None
        }

    # ------------------------------------------------------------------ data
    def load(self, source: str | Path, split: str | None = None) -> list[Example]:
        """An `ehrmind data` folder or its examples.jsonl; raw events (MEDS/EHRSHOT) when the task was made
        with a labeler; else a Hub dataset of flat rows (timeline, question, label)."""
        path = Path(source)
        if path.is_dir() and (path / EXAMPLES).is_file():
            examples = self._load_file(path / EXAMPLES)
        elif path.is_file() and path.suffix.lower() in (".jsonl", ".json"):
            examples = self._load_file(path)
        elif path.exists():
            if not self.labeler:
                raise ConfigError(
                    f"{path} holds raw events: build examples first with `ehrmind data --task ehrshot --source "
                    f"{path} --labeler NAME --out DIR` and pass DIR as --data (or, in Python, "
                    "get_task('ehrshot', labeler=NAME))"
                )
            options = {**self.build_options, "labeler": self.labeler}
            if split:
                options["split"] = split
            return build_examples(self.name, path, **options)
        else:
            return super().load(source, split)
        if split:
            if not any("split" in ex.metadata for ex in examples):
                raise ConfigError(f"split={split!r} given but these examples carry no split")
            examples = [ex for ex in examples if ex.metadata.get("split") == split]
        return examples

    def build_data(self, source: str | Path, out_dir: str | Path, **options: Any) -> dict[str, Any]:
        """`ehrmind data --task ehrshot --source PATH --labeler NAME --out DIR [--set key=value …]`."""
        return build_snapshot(self, source, out_dir, **options)

    def records_to_examples(
        self, rows: Iterable[tuple[int, dict[str, Any]]], source: str | Path
    ) -> Iterator[Example]:
        """Flat rows (a Hub dataset or a plain table): timeline, question, label[, id, subject_id,
        prediction_time, labeler]."""
        seen: set[str] = set()
        for row_no, row in rows:
            for col in ("timeline", "question", "label"):
                if col not in row or row[col] in (None, ""):
                    raise DataError("missing or empty", file=source, row=row_no, field=col)
                if col != "label" and not isinstance(row[col], str):
                    raise DataError(
                        f"expected text, got a {type(row[col]).__name__}", file=source, row=row_no, field=col
                    )
            label, problem = parse_prediction(row["label"])
            if label is None:
                raise DataError(f"label: {problem}", file=source, row=row_no, field="label")
            subject, pt = row.get("subject_id"), row.get("prediction_time")
            ex_id = str(row.get("id") or (f"{subject}@{pt}" if subject is not None and pt else row_no))
            if ex_id in seen:
                raise DataError(f"duplicate id {ex_id}", file=source, row=row_no, field="id")
            seen.add(ex_id)
            labeler = str(row.get("labeler") or row.get("category") or "")
            yield Example(
                id=ex_id,
                task=self.name,
                input={"timeline": str(row["timeline"]), "question": str(row["question"])},
                target={"label": label, "label_name": LABEL_NAMES[label]},
                metadata={
                    "subject_id": subject,
                    "prediction_time": str(pt) if pt else None,
                    "label": label,
                    "labeler": labeler,
                    "category": labeler,
                },
            )

    def _snapshot_problem(self, example: Example) -> tuple[str, str] | None:
        for key in ("timeline", "question"):
            if not isinstance(example.input.get(key), str):
                return f"input.{key}", "expected text"
        label = example.target.get("label")
        if not isinstance(label, bool):
            return "target.label", "expected true or false"
        if example.target.get("label_name") != LABEL_NAMES[label]:
            return (
                "target.label_name",
                f"label {label} is named {LABEL_NAMES[label]!r}, not {excerpt(example.target.get('label_name'))}",
            )
        return None

    # ------------------------------------------------------------------ prompting
    def task_text(self) -> str:
        return TASK_TEXT

    def user_prompt(self, example: Example) -> str:
        return USER_TEMPLATE.format(timeline=example.input["timeline"], question=example.input["question"])

    # ------------------------------------------------------------------ scoring
    def gold_value(self, example: Example) -> Any:
        return LABEL_NAMES[bool(example.target["label"])]

    def _can_score(self, example: Example) -> bool:
        return isinstance(example.target.get("label"), bool)

    def judge(self, example: Example, value: Any) -> tuple[bool | None, Any, str]:
        label, problem = parse_prediction(value, str(example.metadata.get("labeler", "")))
        if label is None:
            return False, None, problem
        gold = bool(example.target["label"])
        ok = label == gold
        return ok, LABEL_NAMES[label], "correct" if ok else f"expected {LABEL_NAMES[gold]}"

    def _describe_answer(self, example: Example, answer: dict[str, Any], parsed: Any) -> Any:
        """`parsed` becomes {"prediction": "yes"|"no", "probability": p or None} (the stated probability)."""
        return {"prediction": parsed, "probability": parse_probability(answer.get("probability"))}
