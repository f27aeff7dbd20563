"""Accuracy intervals against hand-computed values; grouping; unscorable rows are counted apart."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ehrmind.metrics import accuracy_block, bootstrap_ci, summarize, wilson_ci


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    # the textbook formula, written out independently of scipy
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@pytest.mark.parametrize(("k", "n"), [(0, 10), (7, 10), (10, 10), (523, 1047)])
def test_wilson_matches_formula(k, n):
    lo, hi = wilson_ci(k, n)
    exp_lo, exp_hi = _wilson(k, n)
    assert lo == pytest.approx(exp_lo, abs=1e-9) and hi == pytest.approx(exp_hi, abs=1e-9)


def test_wilson_empty_is_none():
    assert wilson_ci(0, 0) is None


def test_bootstrap_brackets_mean_and_is_seeded():
    values = [0.0, 0.25, 0.5, 1.0] * 25
    lo, hi = bootstrap_ci(values)
    assert lo < sum(values) / len(values) < hi
    assert bootstrap_ci(values) == [lo, hi]
    assert bootstrap_ci([1.0] * 10) == [1.0, 1.0]


def test_accuracy_block_one_sample():
    rows = [{"id": str(i), "sample": 0, "correct": i < 3, "format_ok": i != 0} for i in range(10)]
    b = accuracy_block(rows)
    assert (b["n"], b["accuracy"], b["strict_accuracy"], b["format_error_rate"]) == (10, 0.3, 0.2, 0.1)
    assert b["ci95"] == pytest.approx(list(_wilson(3, 10)))


def test_accuracy_block_several_samples_averages_per_item():
    # item a: 2 of 4 right, item b: 4 of 4 right -> mean of per-item accuracies = 0.75
    rows = [{"id": "a", "sample": s, "correct": s < 2, "format_ok": True} for s in range(4)]
    rows += [{"id": "b", "sample": s, "correct": True, "format_ok": True} for s in range(4)]
    b = accuracy_block(rows)
    assert b["n"] == 2 and b["n_samples"] == 8 and b["accuracy"] == 0.75
    assert b["ci95"][0] <= 0.75 <= b["ci95"][1]


def test_unscorable_rows_are_not_zero():
    rows = [
        {"id": "1", "sample": 0, "correct": True, "format_ok": True},
        {"id": "2", "sample": 0, "correct": None, "format_ok": True},
    ]
    b = accuracy_block(rows)
    assert b["n"] == 1 and b["accuracy"] == 1.0 and b["n_unscorable"] == 1


def test_summarize_groups():
    rows = [
        {"id": "1", "sample": 0, "correct": True, "format_ok": True, "category": "lab"},
        {"id": "2", "sample": 0, "correct": False, "format_ok": True, "category": "lab"},
        {"id": "3", "sample": 0, "correct": True, "format_ok": False, "category": "risk"},
    ]
    m = summarize(rows, ("category",))
    assert m["n"] == 3 and m["by_category"]["lab"]["accuracy"] == 0.5
    assert m["by_category"]["risk"]["format_error_rate"] == 1.0


def test_classification_metrics_hand_computed():
    from ehrmind.metrics import classification_metrics

    # true: 0 0 1 1 2 2 ; pred: 0 1 1 1 2 -1 (last one had no valid answer)
    m = classification_metrics([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, -1], [0, 1, 2], ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["balanced_accuracy"] == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3) and m["per_class"]["b"]["support"] == 2
    assert m["invalid_rate"] == pytest.approx(1 / 6)
    assert m["confusion_matrix"]["matrix"][2] == [0, 0, 1, 1]  # row "c": one right, one invalid
    lo, hi = m["balanced_accuracy_ci95"]
    assert 0 <= lo <= hi <= 1


def test_binary_score_metrics():
    from ehrmind.metrics import binary_score_metrics

    m = binary_score_metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert m["auroc"] == pytest.approx(0.75)  # 3 of 4 positive-negative pairs ordered right
    assert m["prevalence"] == 0.5
    assert binary_score_metrics([1, 1], [0.2, 0.3])["auroc"] is None  # one class: undefined, not 0.5


# ---------------------------------------------------------------- paired comparisons


def test_mcnemar_exact_matches_the_binomial_test():
    from scipy.stats import binomtest

    from ehrmind.metrics import mcnemar_exact

    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(12, 3) == pytest.approx(binomtest(12, 15, 0.5).pvalue)
    assert mcnemar_exact(10, 0) < 0.01


def test_paired_difference_one_run_counts_discordant_items():
    from ehrmind.metrics import paired_difference

    before = {str(i): float(i < 50) for i in range(200)}  # 50 / 200 right
    after = {str(i): float(i < 50 or 100 <= i < 140) for i in range(200)}  # 40 gained, none lost
    after["0"] = 0.0  # one lost
    c = paired_difference(after, before, resamples=2000)
    assert c["difference"] == pytest.approx((40 - 1) / 200)
    assert (c["gained"], c["lost"]) == (40, 1)
    assert c["ci95"][0] > 0 and c["ci95"][0] < c["difference"] < c["ci95"][1]
    assert c["mcnemar_p"] < 1e-6
    assert c["n"] == 200 and c["n_runs"] == 1 and c["per_run"] is None


def test_paired_difference_is_paired_not_marginal():
    """The same 20-point gain: tight when the stages disagree only where the gain is, wide when they disagree
    on many items in both directions (the marginal accuracies are the same in both cases)."""
    from ehrmind.metrics import paired_difference

    n = 200
    before = {str(i): float(i < 100) for i in range(n)}
    clean = {str(i): float(i < 140) for i in range(n)}  # +40 items, 0 lost
    noisy = {str(i): float(60 <= i < 200) for i in range(n)}  # +100 gained, −60 lost: same 140 right
    tight, wide = paired_difference(clean, before), paired_difference(noisy, before)
    assert tight["difference"] == wide["difference"] == pytest.approx(0.2)
    assert tight["ci95"][1] - tight["ci95"][0] < wide["ci95"][1] - wide["ci95"][0]
    assert tight["mcnemar_p"] < wide["mcnemar_p"]


def test_paired_difference_over_seeds_widens_with_seed_variation():
    from ehrmind.metrics import paired_difference

    ids = [str(i) for i in range(100)]
    base = {i: 0.0 for i in ids}
    steady = {s: {i: float(int(i) < 30) for i in ids} for s in ("0", "1", "2")}
    shaky = {"0": {i: 0.0 for i in ids}, "1": {i: float(int(i) < 30) for i in ids},
             "2": {i: float(int(i) < 60) for i in ids}}  # fmt: skip
    a, b = paired_difference(steady, base), paired_difference(shaky, base)
    assert a["difference"] == b["difference"] == pytest.approx(0.3)
    assert a["n_runs"] == 3 and b["per_run"] == {"0": 0.0, "1": 0.3, "2": 0.6}
    assert "mcnemar_p" not in a  # pooled over seeds it would treat correlated runs as independent
    assert b["ci95"][1] - b["ci95"][0] > a["ci95"][1] - a["ci95"][0]


def test_paired_difference_refuses_unpaired_items():
    from ehrmind.metrics import paired_difference

    with pytest.raises(ValueError, match="same items"):
        paired_difference({"a": 1.0, "b": 0.0}, {"a": 1.0, "c": 0.0})
    with pytest.raises(ValueError, match="runs differ"):
        paired_difference({"0": {"a": 1.0}, "1": {"a": 1.0}}, {"0": {"a": 0.0}, "2": {"a": 0.0}})
    with pytest.raises(ValueError, match="no items"):
        paired_difference({}, {})


def test_several_samples_interval_does_not_collapse():
    """Issue #16, cause 7: with several samples per item, 16 items all wrong gave the interval [0, 0]."""
    rows = [
        {"id": str(i), "sample": s, "correct": False, "format_ok": True} for i in range(16) for s in range(4)
    ]
    block = accuracy_block(rows)
    assert block["accuracy"] == 0.0
    lo, hi = block["ci95"]
    assert lo == 0.0 and hi == pytest.approx(wilson_ci(0, 16)[1]) and hi > 0.15
    one = accuracy_block([{"id": str(i), "correct": False, "format_ok": True} for i in range(16)])
    assert one["ci95"] == pytest.approx([lo, hi])  # the same as one sample per item
    mixed = [
        {"id": str(i), "sample": s, "correct": (i + s) % 2 == 0, "format_ok": True}
        for i in range(40)
        for s in range(2)
    ]
    lo, hi = accuracy_block(mixed)["ci95"]
    assert lo < 0.5 < hi  # not a point where items vary


# ---------------------------------------------------------------- vectorized bootstrap = scikit-learn per resample


def _looped(fn, *arrays, seed=0, resamples=200):
    """The interval as computed before: scikit-learn on each resample, one draw of indices at a time."""
    cols = [np.asarray(a) for a in arrays]
    rng, values = np.random.default_rng(seed), []
    for _ in range(resamples):
        idx = rng.integers(0, len(cols[0]), size=len(cols[0]))
        try:
            values.append(fn(*(c[idx] for c in cols)))
        except ValueError:
            continue
    return None if len(values) < resamples / 2 else list(np.percentile(values, [2.5, 97.5]))


@pytest.mark.parametrize("seed", range(4))
def test_vectorized_metrics_equal_scikit_learn_on_every_resample(seed):
    import warnings

    from sklearn.metrics import average_precision_score, balanced_accuracy_score, roc_auc_score

    from ehrmind.metrics import (
        auroc_rows,
        average_precision_rows,
        balanced_accuracy_rows,
        bootstrap_metric,
    )

    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 40))
    t = rng.integers(0, 2, size=n)
    s = np.round(rng.random(n), 1)  # ties between scores
    labels = rng.integers(-1, 3, size=n)  # -1: no valid answer, a class absent from the truth
    truth3 = rng.integers(0, 3, size=n)
    rows_t, rows_s = rng.integers(0, 2, size=(20, n)), np.round(rng.random((20, n)), 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(20):
            if 0 < rows_t[i].sum() < n:
                assert auroc_rows(rows_t[i : i + 1], rows_s[i : i + 1])[0] == pytest.approx(
                    roc_auc_score(rows_t[i], rows_s[i])
                )
            if rows_t[i].sum():
                assert average_precision_rows(rows_t[i : i + 1], rows_s[i : i + 1])[0] == pytest.approx(
                    average_precision_score(rows_t[i], rows_s[i])
                )
        assert balanced_accuracy_rows(truth3[None], labels[None])[0] == pytest.approx(
            balanced_accuracy_score(truth3, labels)
        )

        def no_positive(f):
            def g(a, b):
                if a.sum() == 0:
                    raise ValueError("no positives")
                return f(a, b)

            return g

        for rows_fn, sk in (
            (auroc_rows, roc_auc_score),
            (average_precision_rows, no_positive(average_precision_score)),
        ):
            got = bootstrap_metric(rows_fn, t, s, seed=seed, resamples=200)
            want = _looped(sk, t, s, seed=seed)
            assert (got is None) == (want is None) and (got is None or got == pytest.approx(want))
        got = bootstrap_metric(balanced_accuracy_rows, truth3, labels, seed=seed, resamples=200)
        assert got == pytest.approx(_looped(balanced_accuracy_score, truth3, labels, seed=seed))
