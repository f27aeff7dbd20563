"""Accuracy with 95% intervals, broken down by group — the numbers every report carries.

One sample per example: Wilson score interval (scipy). Several samples per example: the per-example
mean correctness, with a percentile bootstrap over examples (samples of one example are not independent).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

BOOTSTRAP_RESAMPLES = 2000


def wilson_ci(successes: int, n: int) -> list[float] | None:
    if n == 0:
        return None
    from scipy.stats import binomtest

    ci = binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
    return [float(ci.low), float(ci.high)]


def bootstrap_ci(
    values: Sequence[float], *, seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES
) -> list[float] | None:
    """Percentile bootstrap 95% interval of the mean."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return None
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, arr.size, size=(resamples, arr.size))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return [float(lo), float(hi)]


def item_mean_ci(means: Sequence[float]) -> list[float] | None:
    """Interval of the mean per-item accuracy with several samples per item: the percentile bootstrap over
    items, widened to the Wilson interval over items when that is wider — the bootstrap alone collapses to
    a point when every item scores the same (0 of 16 right gave [0, 0], one sample per item [0, 19.4])."""
    boot = bootstrap_ci(means)
    wilson = wilson_ci(round(sum(means)), len(means))
    if boot is None or wilson is None:
        return boot or wilson
    return [min(boot[0], wilson[0]), max(boot[1], wilson[1])]


def _mean_and_ci(per_example: Mapping[str, list[float]]) -> tuple[float | None, list[float] | None]:
    """Mean per-item accuracy and its 95% interval: Wilson with one sample per item, else the bootstrap."""
    means = [sum(v) / len(v) for v in per_example.values()]
    if not means:
        return None, None
    if all(len(v) == 1 for v in per_example.values()):
        return sum(means) / len(means), wilson_ci(int(sum(means)), len(means))
    return sum(means) / len(means), item_mean_ci(means)


def accuracy_block(records: Iterable[dict[str, Any]], verdicts: Sequence[str] = ()) -> dict[str, Any]:
    """n, accuracy, ci95, strict_accuracy, format_error_rate for one group of prediction rows.

    For each name in `verdicts` (a further verdict `<name>_correct` on each row, e.g. `official`):
    `<name>_accuracy`, `<name>_accuracy_ci95` (same method as `ci95`) and `n_<name>_disagree`, the rows whose
    two verdicts differ. Rows where that verdict is None (or absent) are left out of it."""
    per_example: dict[str, list[float]] = defaultdict(list)
    per_example_strict: dict[str, list[float]] = defaultdict(list)
    per_verdict: dict[str, dict[str, list[float]]] = {v: defaultdict(list) for v in verdicts}
    disagree = dict.fromkeys(verdicts, 0)
    n_rows = format_errors = unscorable = 0
    for r in records:
        n_rows += 1
        if not r.get("format_ok"):
            format_errors += 1
        for v in verdicts:
            other = r.get(f"{v}_correct")
            if other is not None:
                per_verdict[v][str(r["id"])].append(float(bool(other)))
                if r.get("correct") is not None and bool(other) != bool(r["correct"]):
                    disagree[v] += 1
        if r.get("correct") is None:
            unscorable += 1
            continue
        key = str(r["id"])
        per_example[key].append(float(bool(r["correct"])))
        per_example_strict[key].append(float(bool(r["correct"]) and bool(r.get("format_ok"))))
    accuracy, ci = _mean_and_ci(per_example)
    strict = [sum(v) / len(v) for v in per_example_strict.values()]
    n = len(per_example)
    out = {
        "n": n,
        "n_samples": n_rows,
        "accuracy": accuracy,
        "ci95": ci,
        "strict_accuracy": (sum(strict) / n) if n else None,
        "format_error_rate": (format_errors / n_rows) if n_rows else None,
        "n_unscorable": unscorable,
    }
    for v in verdicts:
        out[f"{v}_accuracy"], out[f"{v}_accuracy_ci95"] = _mean_and_ci(per_verdict[v])
        out[f"n_{v}_disagree"] = disagree[v]
    return out


def summarize(
    records: Sequence[dict[str, Any]],
    group_fields: Sequence[str] = ("category",),
    verdicts: Sequence[str] = (),
) -> dict[str, Any]:
    """Overall block plus `by_<field>` blocks (the first field is reported as `by_category`); `verdicts` as in
    `accuracy_block`."""
    out = accuracy_block(records, verdicts)
    for field in group_fields:
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in records:
            groups[str(r.get(field, ""))].append(r)
        out[f"by_{field}"] = {g: accuracy_block(rows, verdicts) for g, rows in sorted(groups.items())}
    return out


# ---------------------------------------------------------------- paired comparisons


def mcnemar_exact(gained: int, lost: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test of the discordant pairs against 1/2."""
    if gained + lost == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(binomtest(gained, gained + lost, 0.5).pvalue)


def paired_difference(
    after: Mapping[str, Mapping[str, float]] | Mapping[str, float],
    before: Mapping[str, Mapping[str, float]] | Mapping[str, float],
    *,
    resamples: int = 10_000,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean of `after − before` on the same items, with a paired 95% interval.

    Each side is {item id: score} (one run) or {run: {item id: score}} (several seeds). Both sides must cover
    the same items; runs are paired by key, and a side with a single run is paired with every run of the
    other (e.g. one untrained model against several trained seeds). The interval is a percentile bootstrap
    that resamples items and, with several runs, runs too (so seed-to-seed variation widens it). For 0/1
    scores of a single run, the exact McNemar test on the discordant pairs is reported beside it (pooled over
    seeds it would treat correlated runs as independent, so it is left out there)."""
    a_runs, b_runs = _runs(after), _runs(before)
    if len(a_runs) > 1 and len(b_runs) > 1 and set(a_runs) != set(b_runs):
        raise ValueError(f"runs differ: {sorted(a_runs)} vs {sorted(b_runs)}")
    keys = sorted(a_runs) if len(a_runs) >= len(b_runs) else sorted(b_runs)
    ids = sorted(next(iter(a_runs.values())))
    for name, runs in (("after", a_runs), ("before", b_runs)):
        for run, scores in runs.items():
            if sorted(scores) != ids:
                raise ValueError(f"{name} run {run!r} does not score the same items")
    pick = lambda runs, k: runs[k] if k in runs else next(iter(runs.values()))  # noqa: E731
    a = np.array([[float(pick(a_runs, k)[i]) for i in ids] for k in keys])
    b = np.array([[float(pick(b_runs, k)[i]) for i in ids] for k in keys])
    d = a - b  # runs × items
    n_runs, n_items = d.shape
    rng = np.random.default_rng(seed)
    # Bootstrap counts: how often each item (and run) is drawn in each resample.
    w_items = rng.multinomial(n_items, np.full(n_items, 1 / n_items), size=resamples)
    w_runs = rng.multinomial(n_runs, np.full(n_runs, 1 / n_runs), size=resamples)
    boots = np.einsum("mr,ri,mi->m", w_runs, d, w_items) / (n_runs * n_items)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    out: dict[str, Any] = {
        "difference": float(d.mean()),
        "ci95": [float(lo), float(hi)],
        "n": n_items,
        "n_runs": n_runs,
        "after": float(a.mean()),
        "before": float(b.mean()),
        "per_run": {str(k): float(d[i].mean()) for i, k in enumerate(keys)} if n_runs > 1 else None,
        "method": "paired bootstrap over items" + (" and runs" if n_runs > 1 else ""),
    }
    if n_runs == 1 and set(np.unique(np.concatenate([a.ravel(), b.ravel()]))) <= {0.0, 1.0}:
        gained, lost = int((d > 0).sum()), int((d < 0).sum())
        out.update(gained=gained, lost=lost, mcnemar_p=mcnemar_exact(gained, lost))
    return out


def _runs(side: Mapping[str, Any]) -> dict[str, Mapping[str, float]]:
    if not side:
        raise ValueError("no items to compare")
    first = next(iter(side.values()))
    if isinstance(first, Mapping):
        return {str(k): v for k, v in side.items()}
    return {"": side}


# ---------------------------------------------------------------- classification (scikit-learn inside)


def bootstrap_metric(fn, *arrays: Sequence[Any], seed: int = 0, resamples: int = 1000) -> list[float] | None:
    """Percentile bootstrap 95% interval of a metric over items.

    `fn` is vectorized: it takes the arrays resampled as (resamples, n) matrices and returns one value per
    row, NaN where the metric is undefined (e.g. one class only, for AUROC); such resamples are skipped, and
    the interval is None when fewer than half are usable. Resamples are drawn in blocks (bounded memory) from
    the same random stream as one draw per resample, so the interval does not depend on the block size."""
    cols = [np.asarray(a) for a in arrays]
    n = len(cols[0]) if cols else 0
    if n == 0:
        return None
    rng = np.random.default_rng(seed)
    block = max(1, min(resamples, _BOOTSTRAP_CELLS // n))
    values = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for start in range(0, resamples, block):
            idx = rng.integers(0, n, size=(min(block, resamples - start), n))
            v = np.asarray(fn(*(c[idx] for c in cols)), dtype=float)
            values.append(v[np.isfinite(v)])
    kept = np.concatenate(values)
    if kept.size < resamples / 2:
        return None
    lo, hi = np.percentile(kept, [2.5, 97.5])
    return [float(lo), float(hi)]


_BOOTSTRAP_CELLS = 2_000_000
"""Resampled items held at once by `bootstrap_metric` (resamples per block × items)."""


def balanced_accuracy_rows(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """scikit-learn's `balanced_accuracy_score` for each row of (B, n) label matrices: the mean recall over
    the classes present in that row's truth (a predicted class absent from it is ignored, as sklearn does)."""
    recalls = []
    for c in np.unique(t):
        member = t == c
        count = member.sum(axis=1)
        hit = (member & (p == c)).sum(axis=1)
        recalls.append(np.where(count > 0, hit / np.maximum(count, 1), np.nan))
    with np.errstate(invalid="ignore"):
        return np.nanmean(np.vstack(recalls), axis=0) if recalls else np.full(len(t), np.nan)


def auroc_rows(t: np.ndarray, s: np.ndarray) -> np.ndarray:
    """scikit-learn's binary `roc_auc_score` for each row (the Mann-Whitney statistic, ties counted half);
    NaN where a row holds one class only."""
    from scipy.stats import rankdata

    t = t.astype(float)
    ranks = rankdata(s, axis=1)
    pos = t.sum(axis=1)
    neg = t.shape[1] - pos
    return ((ranks * t).sum(axis=1) - pos * (pos + 1) / 2) / (pos * neg)


def average_precision_rows(t: np.ndarray, s: np.ndarray) -> np.ndarray:
    """scikit-learn's `average_precision_score` for each row: the sum over score thresholds of the recall
    gained times the precision at that threshold (tied scores form one threshold); NaN without a positive."""
    order = np.argsort(-s, axis=1, kind="stable")
    ss = np.take_along_axis(s, order, axis=1)
    ts = np.take_along_axis(t, order, axis=1).astype(float)
    b, n = ts.shape
    tp = np.cumsum(ts, axis=1)
    last = np.ones((b, n), dtype=bool)  # the last item of each run of tied scores ends a threshold
    last[:, :-1] = ss[:, :-1] != ss[:, 1:]
    pos_idx = np.where(last, np.arange(n), n)
    end = np.minimum.accumulate(pos_idx[:, ::-1], axis=1)[:, ::-1]  # each item's threshold end
    precision_at_end = np.take_along_axis(tp, end, axis=1) / (end + 1)
    return (ts * precision_at_end).sum(axis=1) / tp[:, -1]


def classification_metrics(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    labels: Sequence[int],
    names: Sequence[str],
    *,
    ci: bool = True,
) -> dict[str, Any]:
    """Accuracy, balanced accuracy, Cohen's kappa, macro P/R/F1, per-class scores and the confusion matrix.

    `y_pred` may hold -1 for "no valid answer": it counts as wrong for every class."""
    import warnings

    from sklearn.exceptions import UndefinedMetricWarning

    yt, yp = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    if yt.size == 0:
        return {"n": 0}
    with warnings.catch_warnings():  # -1 ("no valid answer") is a predicted class absent from y_true
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.filterwarnings("ignore", message=".*y_pred contains classes not in y_true.*")
        return _classification_metrics(yt, yp, list(labels), names, ci=ci)


def _classification_metrics(
    yt: np.ndarray, yp: np.ndarray, labels: list[int], names: Sequence[str], *, ci: bool
) -> dict[str, Any]:
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        cohen_kappa_score,
        confusion_matrix,
        precision_recall_fscore_support,
    )

    def bal(t: np.ndarray, p: np.ndarray) -> float:
        return float(balanced_accuracy_score(t, p))

    def kappa(t: np.ndarray, p: np.ndarray) -> float:
        return float(cohen_kappa_score(t, p, labels=labels + [-1] if (p == -1).any() else labels))

    p, r, f, support = precision_recall_fscore_support(yt, yp, labels=labels, zero_division=0)
    out: dict[str, Any] = {
        "n": int(yt.size),
        "accuracy": float(accuracy_score(yt, yp)),
        "balanced_accuracy": bal(yt, yp),
        "cohen_kappa": kappa(yt, yp),
        "macro_precision": float(np.mean(p)),
        "macro_recall": float(np.mean(r)),
        "macro_f1": float(np.mean(f)),
        "invalid_rate": float((yp == -1).mean()),
        "per_class": {
            name: {
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(names)
        },
        "confusion_matrix": {
            "labels": list(names) + (["(invalid)"] if (yp == -1).any() else []),
            "rows_are": "true label",
            "matrix": confusion_matrix(yt, yp, labels=labels + ([-1] if (yp == -1).any() else [])).tolist(),
        },
    }
    if ci:
        out["accuracy_ci95"] = wilson_ci(int((yt == yp).sum()), int(yt.size))
        out["balanced_accuracy_ci95"] = bootstrap_metric(balanced_accuracy_rows, yt, yp)
    return out


def binary_score_metrics(y_true: Sequence[int], y_score: Sequence[float]) -> dict[str, Any]:
    """AUROC and AUPRC (average precision) from a score, each with a bootstrap 95% interval; None when only
    one class is present."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    yt, ys = np.asarray(y_true, dtype=int), np.asarray(y_score, dtype=float)
    if len(set(yt.tolist())) < 2:
        return {"auroc": None, "auroc_ci95": None, "auprc": None, "auprc_ci95": None}

    return {
        "auroc": float(roc_auc_score(yt, ys)),
        "auroc_ci95": bootstrap_metric(auroc_rows, yt, ys),
        "auprc": float(average_precision_score(yt, ys)),
        "auprc_ci95": bootstrap_metric(average_precision_rows, yt, ys),
        "prevalence": float(yt.mean()),
    }


# ---------------------------------------------------------------- why rows fail

WRONG_VALUE = "wrong value"
"""A failure reason: an answer was read, and it is not the gold one."""
_QUOTED = re.compile(r"'[^']{0,200}'|\"[^\"]{0,200}\"")
_NUMBER = re.compile(r"-?\d\d+(?:[.,]\d+)*|-?\d[.,]\d+")


def mask(reason: str) -> str:
    """A reason with its values masked: quoted text → '…', numbers → N except single digits (the tag counts
    of "found 0 <answer> tag(s)" tell a missing block from a repeated one); at most 120 characters."""
    return _NUMBER.sub("N", _QUOTED.sub("'…'", reason))[:120]


def failure_reason(row: dict[str, Any]) -> str | None:
    """Why a row is wrong (None when it is correct): "wrong value", or the masked reason no answer was read."""
    if row.get("correct") is True:
        return None
    if row.get("correct") is None:
        return "gold answer cannot be scored"
    if row.get("parsed") is not None:
        return WRONG_VALUE
    reason = str(row.get("reason") or "no answer found")
    if reason.startswith("format: ") and "; " in reason:  # "format: <problem>; <why the value was unread>"
        reason = reason.split("; ", 1)[1]
    return mask(reason)


def error_summary(kind: str, errors: Sequence[float]) -> dict[str, Any]:
    """Summary of signed errors of one kind (relative error, off by, days off) for `numeric_error`."""
    import statistics

    absolute = sorted(abs(e) for e in errors)
    out: dict[str, Any] = {
        "n": len(errors),
        "median_abs": statistics.median(absolute),
        "p90_abs": absolute[min(len(absolute) - 1, int(0.9 * len(absolute)))],
    }
    if all(float(e).is_integer() for e in errors):
        out["most_common"] = [[e, k] for e, k in Counter(errors).most_common(5)]
    return out
