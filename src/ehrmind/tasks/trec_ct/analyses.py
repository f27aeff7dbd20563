"""What only trial matching computes: 3-class classification over per-pair majority votes, per-patient ranking
(NDCG@10, P@10), the TREC run-file export, and the EHRMind paper's rule for this task."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ehrmind.errors import ConfigError, DataError
from ehrmind.tasks.analysis import Analysis, Exports, Headline, PaperRules
from ehrmind.tasks.trec_ct import evaluation
from ehrmind.types import Example

if TYPE_CHECKING:
    from ehrmind.tasks.base import Task


class _OverPairs(Analysis):
    """An analysis of the per-pair majority votes (`evaluation.pair_votes`): its block and its report section
    are `evaluation`'s functions of them."""

    block: ClassVar[Callable[[dict[Any, dict[str, Any]]], dict[str, Any]]]
    lines: ClassVar[Callable[[Mapping[str, Any]], list[str]]]

    def summarize(
        self, task: Task, examples: Mapping[str, Example], rows: Sequence[dict[str, Any]]
    ) -> dict[str, Any]:
        return type(self).block(evaluation.pair_votes(rows))

    def report(self, metrics: Mapping[str, Any]) -> list[str]:
        return type(self).lines(metrics)


class Classification(_OverPairs):
    """Balanced accuracy, Cohen's κ, macro P/R/F1, per class and a confusion matrix over TREC-scale pairs, one
    majority vote per pair."""

    name = "classification"
    main = Headline(
        "balanced accuracy", "classification.balanced_accuracy", "classification.balanced_accuracy_ci95"
    )
    headline = (main,)
    block = staticmethod(evaluation.classification)
    lines = staticmethod(evaluation.classification_lines)


class Ranking(_OverPairs):
    """Per-patient ranking by the share of eligible votes: NDCG@10 and P@10 via ir-measures, by cohort."""

    name = "ranking"
    headline = (Headline("NDCG@10", "ranking.ndcg@10", "ranking.ndcg@10_ci95"),)
    block = staticmethod(evaluation.ranking)
    lines = staticmethod(evaluation.ranking_lines)


class TrecRun(Exports):
    """`trec`: a TREC run file (`topic Q0 trial rank score run`) with the ranking the metrics use
    (`evaluation.run_scores`: share of eligible votes, then excluded, then trial id), so `trec_eval` or
    ir-measures on the same qrels give ehrmind's NDCG@10 and P@10."""

    name = "trec_run"
    formats = ("trec",)

    def export(
        self, task: Task, fmt: str, rows: Sequence[dict[str, Any]], path: Path, *, run_name: str
    ) -> dict[str, Any]:
        from ehrmind.io import atomic_write_text

        if fmt not in self.formats:
            raise ConfigError(f"trec_ct exports {', '.join(self.formats)}, not {fmt!r}")
        if not run_name or any(c.isspace() for c in run_name):
            raise ConfigError(f"--run-name must be one word, got {run_name!r}")
        scores = evaluation.run_scores(
            evaluation.pair_votes([r for r in rows if r.get("correct") is not None])
        )
        if not scores:
            raise DataError("no scored pair to export", file=path)
        for patient, trials in scores.items():  # a run file is whitespace-separated: an id is one word
            for name in (patient, *trials):
                if not str(name) or any(c.isspace() for c in str(name)):
                    raise DataError(
                        f"id {str(name)[:60]!r} has whitespace: a TREC run file cannot hold it", file=path
                    )
        lines = []
        for patient in sorted(scores, key=str):
            ranked = sorted(scores[patient].items(), key=lambda kv: -kv[1])
            lines += [
                f"{patient} Q0 {trial} {rank} {score:g} {run_name}"
                for rank, (trial, score) in enumerate(ranked, 1)
            ]
        atomic_write_text(path, "\n".join(lines) + "\n")
        return {"rows": len(lines), "topics": len(scores)}


class Paper(PaperRules):
    """The EHRMind paper's trial-matching rules."""

    name = "paper_rules"

    def reliable_m(self, example: Example) -> int | None:
        """`src/eval/matching/analysis/cal_analysis.py:115-116` (linjc16/EHRMind@3bdde9f): every pair, three
        labels (k // 3 + 2 correct samples, entropy < 0.8 · ln 3 nats)."""
        return 3
