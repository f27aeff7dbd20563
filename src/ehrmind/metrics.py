"""Accuracy with 95% intervals, broken down by group — the numbers every report carries.

One sample per example: Wilson score interval (scipy). Several samples per example: the per-example
mean correctness, with a percentile bootstrap over examples (samples of one example are not independent).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
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


def accuracy_block(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """n, accuracy, ci95, strict_accuracy, format_error_rate for one group of prediction rows."""
    per_example: dict[str, list[float]] = defaultdict(list)
    per_example_strict: dict[str, list[float]] = defaultdict(list)
    n_rows = format_errors = unscorable = 0
    for r in records:
        n_rows += 1
        if not r.get("format_ok"):
            format_errors += 1
        if r.get("correct") is None:
            unscorable += 1
            continue
        key = str(r["id"])
        per_example[key].append(float(bool(r["correct"])))
        per_example_strict[key].append(float(bool(r["correct"]) and bool(r.get("format_ok"))))
    means = [sum(v) / len(v) for v in per_example.values()]
    strict = [sum(v) / len(v) for v in per_example_strict.values()]
    one_sample = all(len(v) == 1 for v in per_example.values())
    n = len(means)
    if one_sample:
        ci = wilson_ci(int(sum(means)), n)
    else:
        ci = bootstrap_ci(means)
    return {
        "n": n,
        "n_samples": n_rows,
        "accuracy": (sum(means) / n) if n else None,
        "ci95": ci,
        "strict_accuracy": (sum(strict) / n) if n else None,
        "format_error_rate": (format_errors / n_rows) if n_rows else None,
        "n_unscorable": unscorable,
    }


def summarize(
    records: Sequence[dict[str, Any]], group_fields: Sequence[str] = ("category",)
) -> dict[str, Any]:
    """Overall block plus `by_<field>` blocks (the first field is reported as `by_category`)."""
    out = accuracy_block(records)
    for field in group_fields:
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in records:
            groups[str(r.get(field, ""))].append(r)
        out[f"by_{field}"] = {g: accuracy_block(rows) for g, rows in sorted(groups.items())}
    return out
