"""The `ehrshot` task: EHRSHOT-style yes/no predictions from a structured timeline up to a prediction time.

Answer: `{"prediction": "yes" | "no"}` (the labeler's own names and booleans are accepted too, see
`ANSWER_ALIASES`), optionally with `"probability"` in [0, 1] (or a percent string), used as the score for
AUROC/AUPRC. Metrics: accuracy (every task's), balanced accuracy (EHRSHOT's few-shot metric), AUROC and
AUPRC, each with a bootstrap 95% interval, per labeler.
"""

from __future__ import annotations

import math
import re
import warnings
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, model_validator

from ehrmind.errors import ConfigError, DataError, excerpt
from ehrmind.parsing import normalize_text
from ehrmind.registry import register_task
from ehrmind.tasks.base import PromptMode, Task, TaskOptions
from ehrmind.tasks.ehrshot.build import EXAMPLES, LABEL_NAMES, build_examples, build_snapshot
from ehrmind.tasks.ehrshot.prompts import DIRECT_SYSTEM, REASONING_SYSTEM, USER_TEMPLATE
from ehrmind.types import Example, RewardWeights

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
    if isinstance(value, list) and len(value) == 1:
        return parse_prediction(value[0], labeler)
    if not isinstance(value, str):
        return None, "prediction is not a yes/no string"
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


class EhrshotOptions(TaskOptions):
    """Further keywords are the example builder's options (window, rules, …; `ehrmind data --task ehrshot`
    takes the same): their names are checked here, when the options are given (a typo such as `windw_days`
    fails at once, not when raw events are read, or never), their values by the builder when it runs."""

    model_config = ConfigDict(extra="allow")

    labeler: str | None = Field(
        None, description="Build examples from raw events (MEDS / EHRSHOT) with this labeler when loading."
    )

    @model_validator(mode="after")
    def _known_build_options(self) -> EhrshotOptions:
        from ehrmind.tasks.ehrshot.build import BUILD_OPTIONS, _labeler_fields

        unknown = sorted(set(self.model_extra or {}) - set(BUILD_OPTIONS) - _labeler_fields())
        if unknown:
            raise ValueError(
                f"unknown option(s) {', '.join(unknown)}; build options: {', '.join(sorted(BUILD_OPTIONS))}; "
                f"labeler options: {', '.join(sorted(_labeler_fields()))}"
            )
        return self


@register_task("ehrshot")
class EhrshotTask(Task):
    """EHRSHOT (Wornow et al., NeurIPS 2023) tasks over MEDS / EHRSHOT timelines, answered as yes/no."""

    version = "2"
    """2: the benchmark's label rules by default (window from 1 day, censored kept, dates at 23:59)."""
    answer_key = "prediction"
    group_fields = ("category",)
    row_fields = ("subject_id", "prediction_time", "label")
    split_fields = ("subject_id",)
    main_metric = ("balanced accuracy", "balanced_accuracy", "balanced_accuracy_ci95")
    rationale_evidence = "the events in the patient's record that bear on the question"
    Options = EhrshotOptions

    def __init__(
        self,
        mode: PromptMode = "reasoning",
        prefill: bool | str = False,
        system_prompt: str | None = None,
        reward_weights: RewardWeights | dict[str, float] | None = None,
        *,
        labeler: str | None = None,
        **build_options: Any,
    ):
        """`labeler` and build options let `load` build Examples from raw event data directly (the CLI uses
        `ehrmind data` for that and loads the snapshot)."""
        super().__init__(mode, prefill, system_prompt, reward_weights)
        self.labeler = labeler
        self.build_options = build_options

    # ------------------------------------------------------------------ data
    def load(self, source: str | Path, split: str | None = None) -> list[Example]:
        """An `ehrmind data` folder or its examples.jsonl; raw events (MEDS/EHRSHOT) when the task was made
        with a labeler; else a Hub dataset of flat rows (timeline, question, label)."""
        path = Path(source)
        if path.is_dir() and (path / EXAMPLES).is_file():
            examples = self.load_file(path / EXAMPLES)
        elif path.is_file() and path.suffix.lower() in (".jsonl", ".json"):
            examples = self.load_file(path)
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

    export_formats = ("meds",)

    def export_predictions(
        self, fmt: str, rows: Sequence[dict[str, Any]], path: Path, *, run_name: str
    ) -> dict[str, Any]:
        """`meds`: one row per example in the MEDS-DEV / meds-evaluation prediction schema — `subject_id`
        (int64), `prediction_time` (timestamp[us]), `boolean_value` (the label), `predicted_boolean_value`
        (the majority of readable samples) and `predicted_boolean_probability` (float64: the score AUROC
        uses, `binary_block`); both predictions are null for an example without a readable answer."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from ehrmind.io import atomic_path

        if fmt not in self.export_formats:
            raise ConfigError(f"ehrshot exports {', '.join(self.export_formats)}, not {fmt!r}")
        per = _per_example(rows)
        if not per:
            raise DataError("no scored row with a boolean label to export", file=path)
        cols: dict[str, list[Any]] = {k: [] for k in ("subject_id", "prediction_time", "boolean_value",
                                                      "predicted_boolean_value", "predicted_boolean_probability")}  # fmt: skip
        for ex_id, ex in per.items():
            r = ex["row"]
            try:
                subject = int(r["subject_id"])
                when = datetime.fromisoformat(str(r["prediction_time"]))
            except (KeyError, TypeError, ValueError):
                raise DataError(
                    "a MEDS prediction needs an integer subject_id and an ISO prediction_time", row=ex_id
                ) from None
            cols["subject_id"].append(subject)
            cols["prediction_time"].append(when)
            cols["boolean_value"].append(bool(ex["gold"]))
            cols["predicted_boolean_value"].append(None if ex["pred"] is None else bool(ex["pred"]))
            cols["predicted_boolean_probability"].append(ex["score"])
        schema = pa.schema([
            ("subject_id", pa.int64()), ("prediction_time", pa.timestamp("us")), ("boolean_value", pa.bool_()),
            ("predicted_boolean_value", pa.bool_()), ("predicted_boolean_probability", pa.float64()),
        ])  # fmt: skip
        with atomic_path(path) as tmp:
            pq.write_table(pa.table(cols, schema=schema), tmp)
        return {"rows": len(per), "no_readable_answer": sum(ex["pred"] is None for ex in per.values())}

    def snapshot_problem(self, example: Example) -> tuple[str, str] | None:
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
    def instructions(self) -> str:
        return REASONING_SYSTEM if self.mode == "reasoning" else DIRECT_SYSTEM

    def user_prompt(self, example: Example) -> str:
        return USER_TEMPLATE.format(timeline=example.input["timeline"], question=example.input["question"])

    # ------------------------------------------------------------------ scoring
    def gold_value(self, example: Example) -> Any:
        return LABEL_NAMES[bool(example.target["label"])]

    def can_score(self, example: Example) -> bool:
        return isinstance(example.target.get("label"), bool)

    def choice_point(self, example: Example, completion: str) -> tuple[str, dict[str, str]] | None:
        """The completion up to the value of its last `"prediction":` key, and the two JSON values the model
        could write there: P("yes") / (P("yes") + P("no")) is the example's score for AUROC."""
        text = completion or ""
        at = text.rfind(f'"{self.answer_key}"')
        if at < 0:
            return None
        m = _VALUE_START.match(text, at + len(self.answer_key) + 2)
        if m is None:
            return None
        return text[: m.end()], {"yes": '"yes"', "no": '"no"'}

    def judge(self, example: Example, value: Any) -> tuple[bool | None, Any, str]:
        label, problem = parse_prediction(value, str(example.metadata.get("labeler", "")))
        if label is None:
            return False, None, problem
        gold = bool(example.target["label"])
        ok = label == gold
        return ok, LABEL_NAMES[label], "correct" if ok else f"expected {LABEL_NAMES[gold]}"

    def describe_answer(self, example: Example, answer: dict[str, Any], parsed: Any) -> Any:
        """`parsed` becomes {"prediction": "yes"|"no", "probability": p or None} (the stated probability)."""
        return {"prediction": parsed, "probability": parse_probability(answer.get("probability"))}

    # ------------------------------------------------------------------ metrics
    def metrics(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Accuracy blocks (`summarize`) plus balanced accuracy, AUROC and AUPRC with 95% intervals, overall
        and `by_labeler`."""
        from ehrmind.metrics import summarize

        out = summarize(records, self.group_fields)
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in records:
            groups[str(r.get("category") or "")].append(r)
        out["by_labeler"] = {g: binary_block(rows) for g, rows in sorted(groups.items())}
        # one labeler (the usual case): the overall block is that labeler's; the bootstrap runs once
        overall = next(iter(out["by_labeler"].values())) if len(groups) == 1 else binary_block(records)
        out["binary"] = overall
        for key in (
            "balanced_accuracy",
            "balanced_accuracy_ci95",
            "auroc",
            "auroc_ci95",
            "auprc",
            "auprc_ci95",
        ):
            out[key] = overall.get(key)
        return out

    def report_sections(self, metrics: dict[str, Any]) -> list[str]:
        blocks = metrics.get("by_labeler") or {}
        if not blocks:
            return []
        lines = [
            "## EHRSHOT metrics by labeler",
            "",
            "| labeler | n | positives | balanced accuracy | 95% CI | AUROC | 95% CI | AUPRC | 95% CI | "
            "no valid answer | score |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for name, b in blocks.items():
            if not b.get("n"):
                continue
            lines.append(
                f"| {name or '(none)'} | {b['n']} | {b['n_positive']} | {_num(b.get('balanced_accuracy'))} | "
                f"{_ci(b.get('balanced_accuracy_ci95'))} | {_num(b.get('auroc'))} | {_ci(b.get('auroc_ci95'))} | "
                f"{_num(b.get('auprc'))} | {_ci(b.get('auprc_ci95'))} | {_pct(b.get('invalid_rate'))} | "
                f"{b.get('score_source', '')} |"
            )
        lines += [
            "",
            "*balanced accuracy*: mean of sensitivity and specificity (EHRSHOT's few-shot metric); a missing or "
            "unreadable answer counts as wrong. *AUROC / AUPRC*: from a per-example score, the stated "
            "probability when the answer gives one, else the share of 'yes' over samples. Intervals: "
            "percentile bootstrap over examples (1000 resamples). AUROC and AUPRC are undefined (—) when "
            "only one class is present.",
        ]
        return lines


def binary_block(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Balanced accuracy, AUROC, AUPRC (with intervals) for prediction rows of one group.

    Per example: the predicted label is the majority of its samples' readable answers (a tie goes to the
    mean score >= 0.5), -1 when none is readable. The score for AUROC/AUPRC is, in this order, the mean over
    readable samples of the model's own P(yes) at its answer (`yes_probability`, from the HF backend), of the
    probability the answer states, or of the yes/no vote (the share of "yes"; with one sample this AUROC is
    the balanced accuracy). An example without a readable answer is counted wrong — score 0 when the gold is
    yes, 1 when it is no — never a neutral 0.5. `score_source` says which score was used."""
    from ehrmind.metrics import binary_score_metrics, classification_metrics

    per = _per_example(records)
    if not per:
        return {"n": 0}
    y_true, y_pred, y_score = [], [], []
    sources: set[str] = set()
    unreadable = 0
    for ex in per.values():
        y_true.append(int(ex["gold"]))
        if ex["pred"] is None:
            pred, score = -1, 1.0 - float(ex["gold"])  # no readable answer: wrong, whatever the gold
            unreadable += 1
        else:
            pred, score = ex["pred"], ex["score"]
            sources.update(ex["sources"])
        y_pred.append(pred)
        y_score.append(score)
    with warnings.catch_warnings():  # one class only, or invalid answers: expected, reported as such
        warnings.simplefilter("ignore")
        cls = classification_metrics(y_true, y_pred, labels=[0, 1], names=["no", "yes"])
        sc = binary_score_metrics(y_true, y_score)
    source = (
        next(iter(sources))
        if len(sources) == 1
        else "mixed: " + ", ".join(sorted(sources))
        if sources
        else "none"
    )
    return {
        "n": len(y_true),
        "n_positive": sum(y_true),
        "prevalence": sum(y_true) / len(y_true),
        "accuracy": cls["accuracy"],
        "balanced_accuracy": cls["balanced_accuracy"],
        "balanced_accuracy_ci95": cls.get("balanced_accuracy_ci95"),
        "sensitivity": cls["per_class"]["yes"]["recall"],
        "specificity": cls["per_class"]["no"]["recall"],
        "invalid_rate": cls["invalid_rate"],
        "auroc": sc["auroc"],
        "auroc_ci95": sc["auroc_ci95"],
        "auprc": sc["auprc"],
        "auprc_ci95": sc["auprc_ci95"],
        "score_source": source,
        "n_unreadable": unreadable,
        "confusion_matrix": cls["confusion_matrix"],
    }


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def _ci(ci: list[float] | None) -> str:
    return "—" if not ci else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _per_example(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per example: gold label, predicted label (majority of readable samples, a tie to the mean score
    >= 0.5; None when no sample is readable), score (mean of the samples' scores, see `binary_block`) and
    the score sources."""
    per: dict[str, dict[str, Any]] = {}
    for r in records:
        if r.get("correct") is None or not isinstance(r.get("label"), bool):
            continue
        ex = per.setdefault(
            str(r["id"]), {"gold": r["label"], "votes": [], "scores": [], "sources": [], "row": r}
        )
        parsed = r.get("parsed")
        pred, prob = (
            (parsed.get("prediction"), parsed.get("probability"))
            if isinstance(parsed, dict)
            else (parsed, None)
        )
        vote = 1 if pred == "yes" else 0 if pred == "no" else None
        if vote is None:
            continue
        ex["votes"].append(vote)
        model = r.get("yes_probability")
        if isinstance(model, (int, float)) and not isinstance(model, bool) and 0 <= model <= 1:
            ex["scores"].append(float(model))
            ex["sources"].append("model probability")
        elif prob is not None:
            ex["scores"].append(float(prob))
            ex["sources"].append("stated probability")
        else:
            ex["scores"].append(float(vote))
            ex["sources"].append("share of yes")
    for ex in per.values():
        votes, scores = ex["votes"], ex["scores"]
        if not votes:
            ex["pred"], ex["score"] = None, None
            continue
        ex["score"] = sum(scores) / len(scores)
        share = sum(votes) / len(votes)
        ex["pred"] = 1 if share > 0.5 else 0 if share < 0.5 else int(ex["score"] >= 0.5)
    return per
