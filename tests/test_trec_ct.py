"""trec_ct: the label map (pinned against the official qrels), the verifier, the prompt budget, the metrics."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from conftest import SHARED_DATA, shared_file
from ehrmind import get_task
from ehrmind.tasks.analysis import report_sections, task_metrics
from ehrmind.tasks.base import gold_completion, scorable
from ehrmind.tasks.trec_ct import LABELS, SIGIR_LABELS, SYNONYMS, parse_prediction
from ehrmind.tasks.trec_ct.evaluation import majority, pair_votes, run_scores
from ehrmind.tasks.trec_ct.prompts import approx_tokens
from ehrmind.tasks.trec_ct.topics import read_qrels
from ehrmind.types import Example

TREC_CT = SHARED_DATA / "trec_ct"
TREC_PAIRS = TREC_CT / "samples" / "trec2021_pairs_with_trial_text_sample.jsonl"
SIGIR_PAIRS = TREC_CT / "samples" / "sigir_pairs_sample.tsv"


@pytest.fixture(scope="module")
def task():
    return get_task("trec_ct")


@pytest.fixture(scope="module")
def trec_examples(task) -> list[Example]:
    return task.load(shared_file(TREC_PAIRS))


def _ex(label: int = 2, scale: str = "trec", **inp) -> Example:
    names = LABELS if scale == "trec" else SIGIR_LABELS
    return Example(
        id="p::t",
        task="trec_ct",
        input={
            "patient": "A 60-year-old man.",
            "trial_title": "T",
            "conditions": [],
            "inclusion": [],
            "exclusion": [],
            **inp,
        },
        target={"label": label, "label_name": names[label], "scale": scale},
        metadata={
            "patient_id": "p",
            "trial_id": "t",
            "label": label,
            "category": names[label],
            "scale": scale,
        },
    )


# ---------------------------------------------------------------- the label map


def test_label_map_is_pinned():
    # the one place the names live; the research code we replace swapped 0 and 1
    assert LABELS == {0: "not relevant", 1: "excluded", 2: "eligible"}
    assert SIGIR_LABELS == {0: "would not refer", 1: "would consider referring", 2: "highly likely to refer"}


def test_label_map_against_official_qrels(task):
    """Topic 70 / NCT03586427 is 1 = excluded in the official 2021 qrels, in both file formats."""
    official = read_qrels(shared_file(TREC_CT / "official" / "qrels2021.txt"), ["qrels2021.txt"])
    j = {(x.patient_id, x.trial_id): x for x in official}[("trec-202170", "NCT03586427")]
    assert (j.label, j.line) == (1, 33241) and LABELS[j.label] == "excluded"
    tsv = read_qrels(shared_file(TREC_CT / "trialgpt" / "trec_2021" / "qrels" / "test.tsv"), ["test.tsv"])
    assert {(x.patient_id, x.trial_id): x.label for x in tsv}[("trec-202170", "NCT03586427")] == 1
    # and the Example built from the shared sample carries the same name end to end
    ex = {e.id: e for e in task.load(shared_file(TREC_PAIRS))}["trec-202170::NCT03586427"]
    assert ex.target == {"label": 1, "label_name": "excluded", "scale": "trec"}
    assert ex.metadata["category"] == "excluded"


# ---------------------------------------------------------------- the verifier

ANSWERS = [
    # (answer JSON value, parsed label or None) — one row per rule in docs/trec_ct.md
    ("eligible", "eligible"),
    ("Eligible", "eligible"),  # case
    ("  ELIGIBLE. ", "eligible"),  # spacing, trailing punctuation
    ("not relevant", "not relevant"),
    ("Not_Relevant", "not relevant"),  # underscores as spaces
    ("not-relevant", "not relevant"),  # hyphens as spaces
    ("not   relevant", "not relevant"),  # runs of spaces
    ("irrelevant", "not relevant"),  # synonym
    ("non-relevant", "not relevant"),
    ("nonrelevant", "not relevant"),
    ("unrelated", "not relevant"),
    ("Excluded", "excluded"),
    ("exclude", "excluded"),
    ("exclusion", "excluded"),
    ("included", "eligible"),
    (["eligible"], "eligible"),  # a one-element list
    ('"eligible"', "eligible"),  # quoted inside the string
    # refused
    ("not eligible", None),  # ambiguous: excluded or not relevant?
    ("ineligible", None),
    ("relevant", None),  # ambiguous: excluded or eligible?
    ("yes", None),
    (2, None),  # numeric labels: the index confusion this task guards against
    ("1", None),
    (None, None),
    (True, None),
    ("eligible or excluded", None),
    (["eligible", "excluded"], None),
    ({"label": "eligible"}, None),
]


@pytest.mark.parametrize(("value", "expected"), ANSWERS)
def test_parse_prediction(value, expected):
    got, problem = parse_prediction(value)
    assert got == expected
    assert (problem == "") == (expected is not None)


def test_every_synonym_maps_to_a_label():
    assert set(SYNONYMS.values()) == set(LABELS.values())
    for text, label in SYNONYMS.items():
        assert parse_prediction(text.upper())[0] == label


@pytest.mark.parametrize(
    ("completion", "format_ok", "correct", "reward"),
    [
        ('<think>criteria met</think>\n<answer>{"prediction": "eligible"}</answer>', True, True, 1.1),
        ('<think>x</think><answer>{"prediction": "Not Relevant"}</answer>', True, False, 0.0),
        # the contract is broken but the answer is readable: accuracy counts it, the reward does not
        ('The answer is {"prediction": "eligible"}', False, True, -2.0),
        ('<think>x</think><answer>{"prediction": 2}</answer>', True, False, 0.0),  # numeric refused
        ("<think>x</think><answer>eligible</answer>", False, False, -2.0),  # not JSON
        ("", False, False, -2.0),
    ],
)
def test_verify(task, completion, format_ok, correct, reward):
    s = task.verify(_ex(2), completion)
    assert (s.format_ok, s.correct, s.reward) == (format_ok, correct, reward)


def test_gold_completions_score_100_percent(trec_examples):
    for mode, prefill in (("reasoning", False), ("reasoning", True), ("direct", False)):
        t = get_task("trec_ct", mode=mode, prefill=prefill)
        for ex in trec_examples:
            s = t.verify(ex, gold_completion(t, ex, reasoning="Checked each criterion."))
            assert s.correct and s.format_ok and s.reward == 1.1, (mode, prefill, ex.id, s)
            assert s.parsed == ex.target["label_name"]


def test_sigir_pairs_are_ranked_not_classified(task):
    """SIGIR grades referral (no "excluded" class): verdicts are None, never a silent 0, but the stated
    label is kept so the pair can be ranked."""
    examples = task.load(shared_file(SIGIR_PAIRS))
    assert len(examples) == 103
    assert {e.metadata["cohort"] for e in examples} == {"sigir"}
    assert {e.target["label_name"] for e in examples} == {
        "would consider referring",
        "highly likely to refer",
    }
    ex = examples[0]
    assert not scorable(task, ex)
    s = task.verify(ex, '<think>x</think><answer>{"prediction": "eligible"}</answer>')
    assert (s.correct, s.reward, s.parsed, s.format_ok) == (None, None, "eligible", True)
    assert task.verify(ex, "garbage").reward == -2.0  # a broken format is still penalised
    with pytest.raises(ValueError, match="ranking"):
        gold_completion(task, ex)


# ---------------------------------------------------------------- prompt and token budget


def test_prompt_holds_everything_when_it_fits(task, trec_examples):
    ex = next(e for e in trec_examples if e.id == "trec-202170::NCT03586427")
    messages = task.render(ex)
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    assert ex.input["patient"] in user and ex.input["trial_title"] in user
    assert all(c in user for c in ex.input["inclusion"] + ex.input["exclusion"])
    assert "omitted" not in user
    assert '{"prediction": "eligible"}' in messages[0]["content"]


@pytest.mark.parametrize("budget", [300, 600, 900, 1500])
def test_budget_never_cuts_the_note_nor_drops_a_section_silently(trec_examples, budget):
    t = get_task("trec_ct", prompt_token_budget=budget)
    for ex in trec_examples:
        text, stats = t.fit_prompt(ex)
        assert ex.input["patient"] in text  # never cut
        for section, key in (("inclusion", "Inclusion criteria:"), ("exclusion", "Exclusion criteria:")):
            assert key in text
            omitted = stats[f"{section}_omitted"]
            if omitted:
                assert f"[… {omitted} criteri" in text
            if not ex.input[section]:
                assert f"{key}\n(none listed)" in text
        if not stats["over_budget"]:
            assert approx_tokens(text) + approx_tokens(t.task_text() + t.contract.sentence()) <= budget


def test_budget_truncates_criteria_proportionally():
    inclusion = [f"inclusion criterion number {i} " + "word " * 20 for i in range(40)]
    exclusion = [f"exclusion criterion number {i} " + "word " * 20 for i in range(20)]
    t = get_task("trec_ct", prompt_token_budget=1200)
    text, stats = t.fit_prompt(_ex(2, inclusion=inclusion, exclusion=exclusion))
    kept_inc = sum(f"inclusion criterion number {i} " in text for i in range(40))
    kept_exc = sum(f"exclusion criterion number {i} " in text for i in range(20))
    assert kept_inc + stats["inclusion_omitted"] == 40 and kept_exc + stats["exclusion_omitted"] == 20
    assert stats["inclusion_omitted"] and stats["exclusion_omitted"]
    assert abs(kept_inc / 40 - kept_exc / 20) < 0.15  # each keeps about the same share of itself
    assert kept_inc == max(i + 1 for i in range(40) if f"inclusion criterion number {i} " in text)  # in order


def test_budget_with_a_real_token_counter_and_one_huge_criterion():
    count_words = lambda s: len(s.split())  # noqa: E731 - a stand-in tokenizer
    t = get_task("trec_ct", prompt_token_budget=400, token_counter=count_words)
    blob = " ".join(f"w{i}" for i in range(2000))  # one criterion, as some sources store a whole section
    text, stats = t.fit_prompt(_ex(2, inclusion=[blob], exclusion=["Pregnancy"]))
    assert stats["truncated_criteria"] == 1 and "[… truncated …]" in text and "w0 w1 w2" in text
    assert "1. Pregnancy" in text
    assert count_words(text) + count_words(t.task_text() + t.contract.sentence()) <= 400


def test_unsplit_criteria_and_demographics_are_stated(task):
    ex = _ex(2, inclusion=["Adults"], criteria_unsplit=True, gender="Female", minimum_age="18 Years")
    user = task.user_prompt(ex)
    assert "does not separate inclusion from exclusion" in user and "Exclusion criteria" not in user
    assert "Eligible sex: Female" in user and "Eligible ages: 18 Years or older" in user


def test_prompt_token_budget_is_checked():
    from ehrmind.errors import ConfigError

    with pytest.raises(ConfigError, match="prompt_token_budget"):
        get_task("trec_ct", prompt_token_budget=10)


# ---------------------------------------------------------------- metrics, by hand


def _row(pid: str, tid: str, label: int, parsed: str | None, sample: int = 0, scale: str = "trec") -> dict:
    names = LABELS if scale == "trec" else SIGIR_LABELS
    correct = None if scale != "trec" else parsed == LABELS[label]
    return {
        "id": f"{pid}::{tid}",
        "sample": sample,
        "format_ok": parsed is not None,
        "correct": correct,
        "parsed": parsed,
        "category": names[label],
        "cohort": "trec_2021" if scale == "trec" else "sigir",
        "patient_id": pid,
        "trial_id": tid,
        "label": label,
        "scale": scale,
    }


HAND_RECORDS = [
    # patient A: gold eligible/excluded/not relevant
    _row("A", "NCT02", 2, "eligible"),
    _row("A", "NCT03", 1, "not relevant"),
    _row("A", "NCT01", 0, "eligible"),
    # patient B
    _row("B", "NCT04", 0, "not relevant"),
    _row("B", "NCT05", 2, None),  # no valid answer → -1
    _row("B", "NCT06", 1, "excluded"),
    # patient C: nothing relevant → left out of the ranking means, counted
    _row("C", "NCT07", 0, "not relevant"),
]


@pytest.fixture(scope="module")
def hand_metrics(task) -> dict:
    return task_metrics(task, HAND_RECORDS)


def test_classification_metrics_by_hand(hand_metrics):
    m = hand_metrics
    c = m["classification"]
    # y_true = [2,1,0,0,2,1,0], y_pred = [2,0,2,0,-1,1,0]
    assert c["n"] == 7 and c["accuracy"] == pytest.approx(4 / 7)
    # recall: not relevant 2/3, excluded 1/2, eligible 1/2
    assert c["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 1 / 2) / 3)
    # kappa = (po - pe) / (1 - pe); true counts 3,2,2,0(invalid); predicted counts 3,1,2,1
    po, pe = 4 / 7, (3 * 3 + 2 * 1 + 2 * 2 + 0 * 1) / 49
    assert c["cohen_kappa"] == pytest.approx((po - pe) / (1 - pe))
    # precision: not relevant 2/3 (NCT04, NCT07 of 3), excluded 1/1, eligible 1/2
    assert c["per_class"]["not relevant"]["precision"] == pytest.approx(2 / 3)
    assert c["per_class"]["excluded"]["precision"] == pytest.approx(1.0)
    assert c["per_class"]["eligible"]["recall"] == pytest.approx(0.5)
    assert c["macro_precision"] == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)
    assert c["invalid_rate"] == pytest.approx(1 / 7)
    assert c["confusion_matrix"]["labels"] == ["not relevant", "excluded", "eligible", "(invalid)"]
    assert c["confusion_matrix"]["matrix"] == [[2, 0, 1, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 0]]
    # the standard block is still there, broken down by gold class and cohort
    assert (
        m["n"] == 7
        and m["accuracy"] == pytest.approx(4 / 7)
        and set(m["by_category"]) == set(LABELS.values())
    )
    assert "by_cohort" in m


def test_ranking_metrics_by_hand(hand_metrics):
    r = hand_metrics["ranking"]
    # A: scores tie at "eligible" for NCT01 (gold 0) and NCT02 (gold 2) → trial id: NCT01, NCT02, then NCT03 (1)
    dcg_a = 0 + 2 / math.log2(3) + 1 / math.log2(4)
    # B: nobody says eligible; NCT06 says excluded → first; NCT04, NCT05 tie → trial id
    dcg_b = 1 / math.log2(2) + 0 + 2 / math.log2(4)
    ideal = 2 / math.log2(2) + 1 / math.log2(3)
    assert r["ndcg@10"] == pytest.approx((dcg_a / ideal + dcg_b / ideal) / 2)
    assert r["p@10"] == pytest.approx(0.1)  # one eligible pair in each top 10, divided by 10
    assert (r["n_patients"], r["n_pairs"], r["n_patients_without_relevant"]) == (2, 6, 1)
    assert r["definitions"]["library"] == "ir-measures"


def test_ranking_uses_the_share_of_eligible_votes():
    rows = [
        _row("D", "NCT10", 2, "eligible", 0),
        _row("D", "NCT10", 2, "not relevant", 1),  # share 1/2
        _row("D", "NCT11", 0, "eligible", 0),
        _row("D", "NCT11", 0, "eligible", 1),  # share 2/2 → ranked first
        _row("D", "NCT12", 1, None, 0),
        _row("D", "NCT12", 1, "excluded", 1),  # share 0, excluded 1/2
    ]
    scores = run_scores(pair_votes(rows))["D"]
    assert sorted(scores, key=scores.get, reverse=True) == ["NCT11", "NCT10", "NCT12"]


@pytest.mark.parametrize(
    ("votes", "expected"),
    [
        (["eligible", "excluded", "eligible"], 2),  # majority
        (["eligible", "excluded"], 1),  # tie → the lower label
        ([None, None], -1),  # no valid answer
        ([None, None, "eligible"], 2),  # invalid samples do not vote
    ],
)
def test_majority_vote(votes, expected):
    rows = [_row("E", "NCT20", 2, v, i) for i, v in enumerate(votes)]
    assert majority(pair_votes(rows)["E::NCT20"]["votes"]) == expected


def test_sigir_rows_are_ranked_and_not_classified(task):
    rows = HAND_RECORDS + [
        _row("sigir-20141", "NCT30", 2, "eligible", scale="sigir"),
        _row("sigir-20141", "NCT31", 0, "eligible", scale="sigir"),
    ]
    m = task_metrics(task, rows)
    assert m["classification"]["n"] == 7 and m["classification"]["n_not_classified"] == 2
    assert set(m["ranking"]["by_cohort"]) == {"sigir", "trec_2021"}
    assert m["ranking"]["by_cohort"]["sigir"]["n_patients"] == 1
    assert m["n_unscorable"] == 2
    lines = "\n".join(report_sections(task, m))
    assert "Confusion matrix" in lines and "NDCG@10" in lines and "| sigir |" in lines


def test_verdicts_in_rows_match_the_verifier(task, trec_examples, tmp_path: Path):
    """`ehrmind score` path: rows carry patient/trial ids and the gold label for ranking."""
    from ehrmind.eval.runner import prediction_row

    ex = trec_examples[0]
    row = prediction_row(task, ex, 0, gold_completion(task, ex)).to_dict()
    assert row["patient_id"] == ex.metadata["patient_id"] and row["trial_id"] == ex.metadata["trial_id"]
    assert (row["label"], row["scale"], row["category"]) == (
        ex.target["label"],
        "trec",
        ex.target["label_name"],
    )
