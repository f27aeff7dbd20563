"""The SFT warm-up mix (#12 item 5): the EHRMind paper's category-capped selection is the default meaning of
`sft_data.fraction`; the share of each category is the named option `per_category`."""

from __future__ import annotations

from collections import Counter

import pytest

from conftest import SHARED_DATA, shared_file
from ehrmind import Example, get_task
from ehrmind.errors import ConfigError
from ehrmind.tasks.medcalc.sft_mix import paper_sft_counts
from ehrmind.train.data import select_examples

TRAIN_SAMPLE = SHARED_DATA / "medcalc_bench" / "medcalc_bench_v1.0_train_sample_1006.csv"


SIZES = {"lab": 400, "physical": 300, "risk": 200, "severity": 20, "diagnosis": 10, "date": 50, "dosage": 20}


def test_paper_counts_by_hand():
    sizes = SIZES
    counts = paper_sft_counts(sizes, 0.2)
    # total int(1000 * 0.2) = 200, cap 200 // 7 = 28; small categories first (10, 20, 28, 20 = 78), then risk
    # gets 200 - 78 - 2 * 28 = 66, then lab and physical their cap
    assert counts == {
        "diagnosis": 10,
        "severity": 20,
        "date": 28,
        "dosage": 20,
        "risk": 66,
        "physical": 28,
        "lab": 28,
    }
    assert sum(counts.values()) == 200


def test_paper_counts_small_groups_and_unknown_categories():
    # int(36 · 0.2) = 7 rows, cap 1: risk gets 7 - 1 - 2 (room kept for lab and physical, even if absent)
    assert paper_sft_counts({"diagnosis": 3, "risk": 30, "lab": 3}, 0.2) == {
        "diagnosis": 1,
        "risk": 4,
        "lab": 1,
    }
    # a category the paper does not name keeps its share
    assert paper_sft_counts({"risk": 50, "x": 10}, 0.1)["x"] == 1


def _examples(sizes: dict[str, int]) -> list[Example]:
    return [
        Example(
            id=f"{c}{i}",
            task="medcalc",
            input={"note": "n", "question": "q"},
            target={},
            metadata={"category": c},
        )
        for c, n in sizes.items()
        for i in range(n)
    ]


def test_select_examples_default_is_the_paper_rule_per_category_is_named():
    task = get_task("medcalc")
    sizes = SIZES
    exs = _examples(sizes)
    paper = Counter(ex.metadata["category"] for ex in select_examples(exs, fraction=0.2, task=task))
    assert paper == Counter(paper_sft_counts(sizes, 0.2))
    share = Counter(
        ex.metadata["category"]
        for ex in select_examples(exs, fraction=0.2, task=task, fraction_rule="per_category")
    )
    assert share == {
        "lab": 80,
        "physical": 60,
        "risk": 40,
        "severity": 4,
        "diagnosis": 2,
        "date": 10,
        "dosage": 4,
    }
    with pytest.raises(ConfigError, match="fraction_rule"):
        select_examples(exs, fraction=0.2, task=task, fraction_rule="balanced")
    # a task without a paper rule keeps the share of each category
    trec = Counter(
        ex.metadata["category"] for ex in select_examples(exs, fraction=0.2, task=get_task("trec_ct"))
    )
    assert trec == share


def test_paper_mix_on_the_shared_train_sample():
    task = get_task("medcalc")
    examples = task.load(shared_file(TRAIN_SAMPLE))
    assert len(examples) == 1006
    paper = Counter(ex.metadata["category"] for ex in select_examples(examples, fraction=0.2, task=task))
    share = Counter(
        ex.metadata["category"]
        for ex in select_examples(examples, fraction=0.2, task=task, fraction_rule="per_category")
    )
    # int(1006 · 0.2) = 201 rows, cap 28: the figures (diagnosis 7 → 28, physical 99 → 28)
    assert (share["diagnosis"], share["physical"]) == (7, 99)
    assert (paper["diagnosis"], paper["physical"], paper["lab"]) == (28, 28, 28)
    assert sum(paper.values()) == 201
