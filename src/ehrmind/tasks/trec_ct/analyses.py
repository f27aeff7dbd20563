"""What only trial matching computes: 3-class classification over per-pair majority votes, per-patient ranking
(NDCG@10, P@10), the TREC run-file export, and the EHRMind paper's rule for this task."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ehrmind.errors import ConfigError, DataError
from ehrmind.tasks.analysis import Analysis, Exports, Headline, PaperRules, paper_answer_json
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
    (`evaluation.run_scores`: share of eligible votes, then excluded, then trial id); `trec-qrels`: the qrels
    (`topic 0 trial label`) of the same pairs. Both hold exactly the pairs and topics ehrmind's `ranking`
    averages over: every judged pair, SIGIR included, of the patients with at least one pair labelled >= 1
    (the others are left out of the means, so of the files too, and counted). With them,
    `trec_eval -l 2 -m ndcg_cut.10 -m P.10 qrels run` and ir-measures' `nDCG@10` / `P(rel=2)@10` give
    ehrmind's NDCG@10 and P@10 (docs/trec_ct.md, "Export for trec_eval")."""

    name = "trec_run"
    formats = ("trec", "trec-qrels")

    def export(
        self, task: Task, fmt: str, rows: Sequence[dict[str, Any]], path: Path, *, run_name: str
    ) -> dict[str, Any]:
        from ehrmind.io import atomic_write_text

        if fmt not in self.formats:
            raise ConfigError(f"trec_ct exports {', '.join(self.formats)}, not {fmt!r}")
        if not run_name or any(c.isspace() for c in run_name):
            raise ConfigError(f"--run-name must be one word, got {run_name!r}")
        judged = {k: p for k, p in evaluation.pair_votes(rows).items() if p["label"] is not None}
        if not judged:
            raise DataError("no pair with a gold label to export", file=path)
        averaged = {p["patient_id"] for p in judged.values() if p["label"] >= 1}
        pairs = {k: p for k, p in judged.items() if p["patient_id"] in averaged}
        left_out = len({p["patient_id"] for p in judged.values()}) - len(averaged)
        if not pairs:
            raise DataError("no patient has a pair labelled >= 1: NDCG@10 and P@10 are undefined", file=path)
        kind = "qrels" if fmt == "trec-qrels" else "run"
        for p in pairs.values():  # TREC files are whitespace-separated: an id is one word
            for name in (p["patient_id"], p["trial_id"]):
                if not name or any(c.isspace() for c in name):
                    raise DataError(
                        f"id {name[:60]!r} has whitespace: a TREC {kind} file cannot hold it", file=path
                    )
        if fmt == "trec-qrels":
            lines = [
                f"{p['patient_id']} 0 {p['trial_id']} {int(p['label'])}"
                for p in sorted(pairs.values(), key=lambda p: (p["patient_id"], p["trial_id"]))
            ]
        else:
            scores = evaluation.run_scores(pairs)
            lines = []
            for patient in sorted(scores, key=str):
                ranked = sorted(scores[patient].items(), key=lambda kv: -kv[1])
                lines += [
                    f"{patient} Q0 {trial} {rank} {score:g} {run_name}"
                    for rank, (trial, score) in enumerate(ranked, 1)
                ]
        atomic_write_text(path, "\n".join(lines) + "\n")
        cohorts = sorted({p["cohort"] for p in pairs.values()})
        return {
            "rows": len(lines),
            "topics": len(averaged),
            "topics_without_relevant_left_out": left_out,
            "cohorts": "+".join(cohorts),
        }


class Paper(PaperRules):
    """The EHRMind paper's trial-matching rules."""

    name = "paper_rules"

    def reliable_m(self, example: Example) -> int | None:
        """`src/eval/matching/analysis/cal_analysis.py:115-116` (linjc16/EHRMind@3bdde9f): every pair, three
        labels (k // 3 + 2 correct samples, entropy < 0.8 · ln 3 nats)."""
        return 3

    def reading(self, task: Task, example: Example, completion: str) -> tuple[str | None, bool] | None:
        """`src/eval/matching/analysis/cal_analysis.py:46-63` (linjc16/EHRMind@3bdde9f): the answer is the JSON
        value under the answer key (`extract_answer_json`, 10-24; the paper's key is `idx`, ehrmind's contract
        asks for `prediction`) as written, skipped when absent; correct when equal to the label (`answer ==
        item['target']`): no synonyms, no case folding ("Eligible" is wrong and its own answer)."""
        key = task.contract.answer_key
        try:
            answer = paper_answer_json(completion, key).get(key)
        except ValueError:
            return None, False
        if answer is None:
            return None, False
        text = answer if isinstance(answer, str) else json.dumps(answer, sort_keys=True)
        return text, isinstance(answer, str) and answer == example.target.get("label_name")
