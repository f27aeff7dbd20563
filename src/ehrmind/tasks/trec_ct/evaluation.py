"""Trial-matching metrics from prediction rows: 3-class classification and per-patient ranking.

- Classification (TREC pairs): one prediction per pair, the majority vote of its samples' valid answers
  (ties go to the lower label: not relevant < excluded < eligible; a pair with no valid answer is -1, wrong
  for every class). Accuracy, balanced accuracy, Cohen's kappa, macro P/R/F1, per-class scores and the
  confusion matrix come from `ehrmind.metrics.classification_metrics` (scikit-learn).
- Ranking (every pair, SIGIR included): per patient, trials are ordered by the share of samples answering
  "eligible", ties broken by the share answering "excluded" (the trial at least targets the patient's
  condition), then by trial id. NDCG@10 (gains = the graded labels 0/1/2) and P@10 (relevant = label 2)
  are computed per patient by ir-measures (pytrec_eval inside, trec_eval's definitions; P@10 divides by 10
  even when fewer than 10 pairs are judged). Both are averaged over the patients with at least one
  relevant pair (label >= 1): for the others NDCG is undefined (ideal DCG 0) and no ranking can change
  P@10, so they are counted (`n_patients_without_relevant`) but left out. On qrels where every topic has
  a relevant trial (the full TREC 2021/2022 qrels) this is exactly trec_eval's mean.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from ehrmind.tasks.trec_ct.labels import ELIGIBLE, EXCLUDED, LABEL_IDS, LABELS, SCALES

RANK_CUTOFF = 10


def _gold(row: dict[str, Any]) -> tuple[int | None, str]:
    scale = str(row.get("scale") or ("sigir" if str(row.get("cohort")) == "sigir" else "trec"))
    label = row.get("label")
    if isinstance(label, int) and not isinstance(label, bool) and label in SCALES.get(scale, {}):
        return label, scale
    names = {v: k for k, v in SCALES.get(scale, LABELS).items()}
    return names.get(str(row.get("category"))), scale


def pair_votes(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Prediction rows (one per sample) → one entry per pair: gold label, scale, ids and the votes."""
    pairs: dict[str, dict[str, Any]] = {}
    for r in records:
        key = str(r["id"])
        entry = pairs.get(key)
        if entry is None:
            label, scale = _gold(r)
            patient, trial = r.get("patient_id"), r.get("trial_id")
            if (patient is None or trial is None) and "::" in key:
                patient, trial = key.split("::", 1)
            entry = pairs[key] = {
                "label": label,
                "scale": scale,
                "cohort": str(r.get("cohort") or scale),
                "patient_id": str(patient if patient is not None else key),
                "trial_id": str(trial if trial is not None else key),
                "votes": Counter(),
                "n": 0,
            }
        entry["n"] += 1
        parsed = r.get("parsed")
        if isinstance(parsed, str) and parsed in LABEL_IDS:
            entry["votes"][parsed] += 1
    return pairs


def majority(votes: Counter[str]) -> int:
    """The label id most samples gave (ties to the lower id); -1 when no sample gave a valid label."""
    if not votes:
        return -1
    best = max(votes.values())
    return min(LABEL_IDS[name] for name, n in votes.items() if n == best)


def classification(pairs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    import warnings

    from ehrmind.metrics import classification_metrics

    rows = [p for p in pairs.values() if p["scale"] == "trec" and p["label"] is not None]
    names = [LABELS[i] for i in sorted(LABELS)]
    with warnings.catch_warnings():  # "y_pred contains classes not in y_true": -1, no valid answer
        warnings.filterwarnings("ignore", message="y_pred contains classes", category=UserWarning)
        out = classification_metrics(
            [p["label"] for p in rows], [majority(p["votes"]) for p in rows], sorted(LABELS), names
        )
    out["unit"] = "pair (majority vote over samples)"
    out["n_not_classified"] = len(pairs) - len(rows)
    return out


def run_scores(pairs: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """{patient: {trial: score}}: rank-derived, strictly decreasing, so no library tie-breaking applies."""
    by_patient: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in pairs.values():
        by_patient[p["patient_id"]].append(p)
    out: dict[str, dict[str, float]] = {}
    for pid, rows in by_patient.items():
        ordered = sorted(
            rows,
            key=lambda p: (-p["votes"][ELIGIBLE] / p["n"], -p["votes"][EXCLUDED] / p["n"], p["trial_id"]),
        )
        out[pid] = {p["trial_id"]: float(len(ordered) - i) for i, p in enumerate(ordered)}
    return out


def ranking(pairs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """NDCG@10 and P@10 over patients, overall and per cohort, with bootstrap 95% intervals over patients."""
    rows = [p for p in pairs.values() if p["label"] is not None]
    if not rows:
        return {"n_patients": 0}
    by_cohort: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in rows:
        by_cohort[p["cohort"]].append(p)
    out = {**_ranking_block(rows), "definitions": _DEFINITIONS}
    if len(by_cohort) > 1:
        out["by_cohort"] = {c: _ranking_block(r) for c, r in sorted(by_cohort.items())}
    return out


_DEFINITIONS = {
    "score": "share of samples answering eligible; ties: share answering excluded, then trial id",
    "ndcg@10": "gains 0/1/2 = the graded label (trec_eval ndcg_cut_10)",
    "p@10": "relevant = label 2 (eligible / highly likely to refer); divided by 10",
    "patients": "means over patients with at least one pair labelled >= 1; the others are only counted",
    "library": "ir-measures",
}


def _ranking_block(rows: list[dict[str, Any]]) -> dict[str, Any]:
    import ir_measures
    from ir_measures import P, Qrel, ScoredDoc, nDCG

    from ehrmind.metrics import bootstrap_ci

    pairs = {f"{p['patient_id']}::{p['trial_id']}": p for p in rows}
    scores = run_scores(pairs)
    qrels = [Qrel(p["patient_id"], p["trial_id"], int(p["label"])) for p in rows]
    run = [ScoredDoc(pid, tid, s) for pid, docs in scores.items() for tid, s in docs.items()]
    ndcg, prec = nDCG @ RANK_CUTOFF, P(rel=2) @ RANK_CUTOFF
    per: dict[Any, dict[str, float]] = {ndcg: {}, prec: {}}
    for m in ir_measures.iter_calc([ndcg, prec], qrels, run):
        per[m.measure][m.query_id] = float(m.value)
    relevant = sorted({p["patient_id"] for p in rows if p["label"] >= 1}, key=str)

    def stat(measure: Any) -> tuple[float | None, list[float] | None]:
        values = [per[measure].get(pid, 0.0) for pid in relevant]
        return (sum(values) / len(values) if values else None), bootstrap_ci(values)

    nd, nd_ci = stat(ndcg)
    pr, pr_ci = stat(prec)
    return {
        "n_patients": len(relevant),
        "n_pairs": sum(1 for p in rows if p["patient_id"] in set(relevant)),
        "n_patients_without_relevant": len(scores) - len(relevant),
        "ndcg@10": nd,
        "ndcg@10_ci95": nd_ci,
        "p@10": pr,
        "p@10_ci95": pr_ci,
    }


# ---------------------------------------------------------------- report


def _f(x: Any) -> str:
    return "—" if x is None else f"{x:.3f}"


def classification_lines(metrics: Mapping[str, Any]) -> list[str]:
    """The classification section of report.md."""
    lines: list[str] = []
    c = metrics.get("classification") or {}
    if c.get("n"):
        lines += [
            "## Classification (TREC pairs; majority vote over samples)",
            "",
            "| n | accuracy | balanced accuracy | Cohen's κ | macro precision | macro recall | macro F1 | no valid answer |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {c['n']} | {_f(c['accuracy'])} | {_f(c['balanced_accuracy'])} | {_f(c['cohen_kappa'])} | "
            f"{_f(c['macro_precision'])} | {_f(c['macro_recall'])} | {_f(c['macro_f1'])} | "
            f"{100 * c['invalid_rate']:.1f}% |",
            "",
            "| class | precision | recall | F1 | support |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, s in c["per_class"].items():
            lines.append(
                f"| {name} | {_f(s['precision'])} | {_f(s['recall'])} | {_f(s['f1'])} | {s['support']} |"
            )
        cm = c["confusion_matrix"]
        lines += ["", "Confusion matrix (rows: gold label; columns: prediction)", ""]
        lines += [
            "| gold \\ predicted | " + " | ".join(cm["labels"]) + " |",
            "|---" + "|---:" * len(cm["labels"]) + "|",
        ]
        for name, row in zip(cm["labels"], cm["matrix"], strict=False):
            lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
        if c.get("n_not_classified"):
            lines += [
                "",
                f"{c['n_not_classified']} pair(s) on the SIGIR referral scale are ranked, not classified.",
            ]
    return lines


def ranking_lines(metrics: Mapping[str, Any]) -> list[str]:
    """The ranking section of report.md."""
    lines: list[str] = []
    r = metrics.get("ranking") or {}
    if r.get("n_patients"):
        lines += [
            "## Ranking per patient (ir-measures)",
            "",
            "| cohort | patients ranked | their pairs | patients without a relevant pair (left out) | NDCG@10 | P@10 |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        blocks = {"all": r, **(r.get("by_cohort") or {})}
        for name, b in blocks.items():
            lines.append(
                f"| {name} | {b['n_patients']} | {b['n_pairs']} | {b['n_patients_without_relevant']} | "
                f"{_f(b['ndcg@10'])} | {_f(b['p@10'])} |"
            )
        lines += [
            "",
            "Score per pair: the share of samples answering *eligible* (ties: share answering *excluded*, then "
            "trial id). NDCG@10 uses the graded labels as gains; P@10 counts label 2 as relevant and divides "
            "by 10 (trec_eval), so it is low when fewer than 10 trials per patient are judged. Means are over "
            "patients with at least one relevant pair.",
        ]
    return lines
