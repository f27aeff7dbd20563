"""What only EHRSHOT-style prediction computes: balanced accuracy, AUROC and AUPRC with intervals (overall
and by labeler), the model's own P(yes) at the answer, and the MEDS-DEV / meds-evaluation prediction export."""

from __future__ import annotations

import re
import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ehrmind.errors import ConfigError, DataError
from ehrmind.tasks.analysis import Analysis, ChoicePoint, Exports, Headline
from ehrmind.types import Example

if TYPE_CHECKING:
    from ehrmind.tasks.base import Task

_VALUE_START = re.compile(r"\s*:\s*")


class Binary(Analysis):
    """Balanced accuracy (EHRSHOT's few-shot metric), AUROC and AUPRC with 95% intervals over all rows
    (`binary_block`; with one labeler, that labeler's block)."""

    name = "binary"
    main = Headline("balanced accuracy", "binary.balanced_accuracy", "binary.balanced_accuracy_ci95")
    headline = (main, Headline("AUROC", "binary.auroc", "binary.auroc_ci95"))

    def summarize(
        self, task: Task, examples: Mapping[str, Example], rows: Sequence[dict[str, Any]]
    ) -> dict[str, Any]:
        groups = _by_labeler(rows)
        return binary_block(next(iter(groups.values()))) if len(groups) == 1 else binary_block(list(rows))


class ByLabeler(Analysis):
    """The same block for each labeler, and the report's table of them."""

    name = "by_labeler"

    def summarize(
        self, task: Task, examples: Mapping[str, Example], rows: Sequence[dict[str, Any]]
    ) -> dict[str, Any]:
        return {g: binary_block(rs) for g, rs in sorted(_by_labeler(rows).items())}

    def report(self, metrics: Mapping[str, Any]) -> list[str]:
        blocks = metrics.get(self.name) or {}
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


def _by_labeler(rows: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[str(r.get("category") or "")].append(r)
    return groups


class YesProbability(ChoicePoint):
    """P("yes") / (P("yes") + P("no")) from the model at its answer: the example's score for AUROC when the
    generator can score choices."""

    name = "choice_point"

    def point(self, task: Task, example: Example, completion: str) -> tuple[str, dict[str, str]] | None:
        """The completion up to the value of its last `"prediction":` key, and the two JSON values the model
        could write there."""
        key = task.contract.answer_key
        text = completion or ""
        at = text.rfind(f'"{key}"')
        if at < 0:
            return None
        m = _VALUE_START.match(text, at + len(key) + 2)
        if m is None:
            return None
        return text[: m.end()], {"yes": '"yes"', "no": '"no"'}


class MedsExport(Exports):
    name = "meds_export"
    formats = ("meds",)

    def export(
        self, task: Task, fmt: str, rows: Sequence[dict[str, Any]], path: Path, *, run_name: str
    ) -> dict[str, Any]:
        """`meds`: one row per example in the MEDS-DEV / meds-evaluation prediction schema — `subject_id`
        (int64), `prediction_time` (timestamp[us]), `boolean_value` (the label), `predicted_boolean_value`
        (the majority of readable samples) and `predicted_boolean_probability` (float64: the score AUROC
        uses, `binary_block`). An example without a readable answer is written as `binary_block` counts it,
        wrong: the opposite of its label, with probability 0 when the label is true and 1 when false
        (issue #29: nulls there made meds-evaluation 0.0.6 fail); `no_readable_answer` counts them."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from ehrmind.io import atomic_path

        if fmt not in self.formats:
            raise ConfigError(f"ehrshot exports {', '.join(self.formats)}, not {fmt!r}")
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
            gold = bool(ex["gold"])
            unread = ex["pred"] is None
            cols["predicted_boolean_value"].append(not gold if unread else bool(ex["pred"]))
            cols["predicted_boolean_probability"].append(float(not gold) if unread else float(ex["score"]))
        schema = pa.schema([
            ("subject_id", pa.int64()), ("prediction_time", pa.timestamp("us")), ("boolean_value", pa.bool_()),
            ("predicted_boolean_value", pa.bool_()), ("predicted_boolean_probability", pa.float64()),
        ])  # fmt: skip
        with atomic_path(path) as tmp:
            pq.write_table(pa.table(cols, schema=schema), tmp)
        return {"rows": len(per), "no_readable_answer": sum(ex["pred"] is None for ex in per.values())}


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


def _probability(x: Any) -> float | None:
    """A probability a prediction row holds: a finite number in [0, 1], else None (a hand-edited or foreign
    row with NaN, inf or 2.63 must not reach AUROC or an exported file)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not 0.0 <= x <= 1.0:  # NaN fails the range
        return None
    return float(x)


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
        model, prob = _probability(r.get("yes_probability")), _probability(prob)
        if model is not None:
            ex["scores"].append(model)
            ex["sources"].append("model probability")
        elif prob is not None:
            ex["scores"].append(prob)
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
