"""`ehrmind diagnose`: pass@k, answer entropy, reliable pass@k, verdicts, the SFT plan; one-shot baselines."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from conftest import SHARED_DATA, shared_file
from ehrmind import Example, get_task
from ehrmind.cli import app
from ehrmind.errors import ConfigError
from ehrmind.eval.diagnose import (
    DiagnosisSettings,
    answer_entropy,
    build_plan,
    diagnose_rows,
    group_block,
    is_reliable,
    normalize_answer,
    pass_at_k,
    run_diagnose,
)
from ehrmind.tasks.analysis import PaperRules, attached, paper_answer_json
from ehrmind.tasks.base import gold_completion
from ehrmind.train.data import select_examples
from ehrmind.train.recipe import load_recipe

runner = CliRunner()
ONE_SHOT_JSON = SHARED_DATA / "medcalc_bench" / "medcalc_bench_one_shot_finalized_explanation.json"
ONE_SHOT_CSV = SHARED_DATA / "medcalc_bench" / "medcalc_bench_verified_one_shot_55.csv"
CPU = {"bf16": False, "fp16": False, "use_cpu": True, "gradient_checkpointing": False, "report_to": "none"}


# ------------------------------------------------------------------ the estimators, by hand


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 0, 1, 0.0),  # nothing right: 0 whatever k
        (5, 2, 1, 0.4),  # pass@1 = c/n
        (5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10
        (10, 3, 5, 1 - 21 / 252),  # 1 - C(7,5)/C(10,5)
        (4, 1, 4, 1.0),  # n - c < k: every k-subset holds the right one
        (5, 5, 3, 1.0),
        (200, 1, 100, 0.5),  # 1 - C(199,100)/C(200,100) = 100/200; no overflow with large n
        (1000, 3, 10, 1 - math.comb(997, 10) / math.comb(1000, 10)),
    ],
)
def test_pass_at_k_hand_computed(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, rel=1e-12)


def test_pass_at_k_equals_the_binomial_formula_and_refuses_bad_input():
    for n in range(1, 11):
        for c in range(n + 1):
            for k in range(1, n + 1):
                exact = 1 - math.comb(n - c, k) / math.comb(n, k)
                assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12)
    with pytest.raises(ValueError, match="k <= n"):
        pass_at_k(2, 1, 3)
    with pytest.raises(ValueError, match="c <= n"):
        pass_at_k(2, 3, 1)


@pytest.mark.parametrize(
    ("answers", "bits"),
    [
        (["a", "a", "a", "a"], 0.0),  # one answer: no uncertainty
        (["a", "a", "b", "b"], 1.0),  # a fair coin
        (["a", "b", "c", "d"], 2.0),  # four equally likely answers
        (["a", "a", "a", "b"], 0.75 * math.log2(4 / 3) + 0.25 * 2),  # 0.811…
        ([None, None, 1.0, 1.0], 1.0),  # no readable answer is one more outcome
        ([], 0.0),
    ],
)
def test_answer_entropy_hand_computed(answers, bits):
    assert answer_entropy(answers) == pytest.approx(bits)


@pytest.mark.parametrize(
    ("parsed", "integer", "expected"),
    [
        (67.00495, False, 67.0),  # 3 significant digits: within MedCalc's 5% tolerance
        (67.004, False, 67.0),
        (67.5, False, 67.5),
        (0.074182, False, 0.0742),
        (-0.0, False, 0.0),  # one answer, not two
        (4.4, True, 4),  # integer answers as the official rule rounds them
        (2.5, True, 2),  # Python's round: half to even, like the official evaluator
        (" Eligible ", False, "eligible"),
        ({"prediction": "yes", "probability": 0.3}, False, "yes"),  # EHRSHOT: the label, not the probability
        (["34 weeks", "3 days"], False, ("34 weeks", "3 days")),
        (None, False, None),
        (float("nan"), False, None),
    ],
)
def test_normalize_answer(parsed, integer, expected):
    assert normalize_answer(parsed, integer=integer) == expected


def test_paper_reliable_rule():
    # cal_analysis.py:95-98: k // m + 2 correct samples and entropy < 0.8 ln m nats; m = 7 (diagnosis, severity)
    s = DiagnosisSettings(k=12)
    assert s.reliable_rule == "paper"
    assert is_reliable(3, 0.0, s, paper_m=7) and not is_reliable(2, 0.0, s, paper_m=7)  # 12 // 7 + 2 = 3
    assert is_reliable(2, 0.0, s, paper_m=21)  # 12 // 21 + 2 = 2
    bound = 0.8 * math.log(7) / math.log(2)  # 2.246 bits
    assert is_reliable(3, bound - 1e-6, s, paper_m=7) and not is_reliable(3, bound + 1e-9, s, paper_m=7)
    assert is_reliable(0, 3.0, s)  # an item the paper scores by plain pass@k always counts
    # the groups: only the paper's categories use it; a MedCalc risk item needs 2 correct samples at k = 8
    flat = _item(8, 1, [1] * 8, 1, True) | {"paper_m": None}
    risk = _item(8, 1, [1] + [2] * 7, 1, True) | {"paper_m": 21}
    b = group_block([flat], DiagnosisSettings(k=8, min_items=1))
    assert not b["guessable"] and b["score"] == b["pass_at_k"] == 1.0
    b = group_block([risk], DiagnosisSettings(k=8, min_items=1))
    assert b["guessable"] and b["pass_at_k"] == 1.0 and b["score"] == 0.0 and b["verdict"] == "missing"


def test_paper_categories_by_task():
    med = get_task("medcalc")

    def ex(category):
        return Example(id="x", task="medcalc", input={}, target={}, metadata={"category": category})

    from ehrmind.tasks.analysis import PaperRules, attached

    def m(task, example):
        rules = attached(task, PaperRules)
        return rules[0].reliable_m(example) if rules else None

    assert [m(med, ex(c)) for c in ("diagnosis", "severity", "risk", "lab")] == [7, 7, 21, None]
    assert m(get_task("trec_ct"), ex("eligible")) == 3
    assert m(get_task("ehrshot"), ex("new_hypertension")) is None


def _medcalc_item(i: int, category: str, answer: str, output_type: str = "integer", calc: int = 21, **limits):
    from ehrmind.tasks.medcalc.task import parse_gold

    return Example(
        id=f"{category}-{i}",
        task="medcalc",
        input={"note": "n", "question": "q"},
        target=parse_gold(output_type, answer, limits.get("lower", ""), limits.get("upper", "")),
        metadata={"category": category, "calculator_id": calc, "calculator_name": f"calc {category}"},
    )


def _rows(task, examples, answers_by_item) -> list[dict]:
    from ehrmind.eval.runner import prediction_row

    rows = []
    for ex, answers in zip(examples, answers_by_item, strict=True):
        for sample, value in enumerate(answers):
            completion = f"<think>r</think>\n<answer>{json.dumps({'answer': value})}</answer>"
            rows.append(prediction_row(task, ex, sample, completion).to_dict())
    return rows


def test_paper_rule_reads_answers_as_the_papers_code():
    """Issue #29: `reliable_rule: paper` judges with the paper's own correctness and answer strings
    (`cal_analysis.py:62-98`): on severity items `str(answer) == label`, so "2.0" and "2 points" are wrong for
    label "2" (ehrmind reads both as 2); on other items `check_correctness(str(answer))`, so a unit is wrong.
    The category scores and verdicts flip between the paper's reading and ehrmind's (`paper-thresholds`)."""
    task = get_task("medcalc")
    severity = [_medcalc_item(i, "severity", "2") for i in range(4)]
    lab = [_medcalc_item(i, "lab", "4.5", "decimal", calc=2, lower="4.275", upper="4.725") for i in range(2)]
    answers = [[2.0] * 8, ["2 points"] * 8, [2.0] * 6 + [2] * 2, [2] * 8, ["4.5 mg/dL"] * 8, [4.5] * 8]
    rows = _rows(task, severity + lab, answers)
    assert all(r["correct"] for r in rows)  # ehrmind's verdict: every sample right

    literal, _ = diagnose_rows(task, severity + lab, rows, DiagnosisSettings(k=8, min_items=1))
    verify, _ = diagnose_rows(
        task, severity + lab, rows, DiagnosisSettings(k=8, min_items=1, reliable_rule="paper-thresholds")
    )
    sev, sev_v = literal["by_category"]["severity"], verify["by_category"]["severity"]
    # the paper: item 3 (all "2") counts; item 2 has 2 of 8 right (< 8 // 7 + 2 = 3) and 0.81 bits: not
    assert sev["guessable"] and sev["reliable_pass_at_k"] == 0.25 and sev["verdict"] == "missing"
    assert sev["pass_at_1"] == pytest.approx((0 + 0 + 2 / 8 + 1) / 4)
    assert sev_v["reliable_pass_at_k"] == 1.0 and sev_v["verdict"] == "misapplied"
    # lab (no paper m): plain pass@k on check_correctness(str(answer)): "4.5 mg/dL" raises in eval
    assert (
        literal["by_category"]["lab"]["pass_at_k"] == 0.5 and verify["by_category"]["lab"]["pass_at_k"] == 1.0
    )

    paper = attached(task, PaperRules)[0]
    ex = severity[0]
    for completion, expected in [
        ('<answer>{"answer": 2}</answer>', ("2", True)),
        ('<answer>{"answer": "2"}</answer>', ("2", True)),
        ('<answer>{"answer": 2.0}</answer>', ("2.0", False)),
        ('<answer>{"answer": "2 points"}</answer>', ("2 points", False)),
        ('<answer>{"score": 2}</answer>', ("None", False)),  # str(None): an answer the entropy counts
        ('{"answer": "2"', ("2", True)),  # no JSON object: the fallback regex reads the digits
        ('"answer": 2.5 and more', (None, False)),  # int("2.5") raises: the sample is skipped
    ]:
        assert paper.reading(task, ex, completion) == expected, completion


def test_paper_rule_for_trial_matching_compares_the_label_as_written():
    task = get_task("trec_ct")
    paper = attached(task, PaperRules)[0]
    ex = Example(
        id="p::t", task="trec_ct", input={}, target={"label": 2, "label_name": "eligible"}, metadata={}
    )
    assert paper.reading(task, ex, '<answer>{"prediction": "eligible"}</answer>') == ("eligible", True)
    assert paper.reading(task, ex, '<answer>{"prediction": "Eligible"}</answer>') == ("Eligible", False)
    assert paper.reading(task, ex, '<answer>{"label": "eligible"}</answer>') == (None, False)  # not counted


def test_paper_answer_json_matches_the_papers_regex():
    """The linear `paper_answer_json` against the paper's verbatim `extract_answer_json` on random strings."""
    import random

    def verbatim(text):  # cal_analysis.py:12-26 (linjc16/EHRMind@3bdde9f)
        text += "</answer>"
        match = re.search(r"<answer>\s*(\{.*?\})\s*</answer>", text, re.DOTALL)
        if match:
            try:
                return json.loads(match.group(1))
            except json.JSONDecodeError:
                pass
        fallback_match = re.search(r'"answer"\s*:\s*"?([\d\s.]+)"?', text)
        if fallback_match:
            return {"answer": int(fallback_match.group(1))}
        return {}

    tokens = ["<answer>", "</answer>", "{", "}", '"answer"', ":", " ", "\n", "4", "2.5", '"', "x", ","]
    rng = random.Random(29)
    for _ in range(5000):
        text = "".join(rng.choice(tokens) for _ in range(rng.randint(1, 14)))
        try:
            want = verbatim(text)
        except (ValueError, RecursionError):
            want = "raises"
        try:
            got = paper_answer_json(text, "answer")
        except ValueError:
            got = "raises"
        want = want if want == "raises" or isinstance(want, dict) else {}
        assert got == want, repr(text)


def test_reliable_rule():
    s = DiagnosisSettings(k=4, reliable_rule="ehrmind")  # min_correct 2, max_entropy 0.9 bits
    assert is_reliable(3, 0.811, s)  # 3 of 4 right, 3/1 split
    assert not is_reliable(1, 0.0, s)  # a single right sample is not enough
    assert not is_reliable(2, 1.0, s)  # a 2/2 split is a coin flip
    assert is_reliable(2, 0.9, s)  # the bound is inclusive


def _item(n: int, c: int, answers: list, gold, discrete: bool) -> dict:
    return {
        "n": n,
        "c": c,
        "entropy": answer_entropy(answers),
        "distinct_answers": len(set(answers)),
        "gold": gold,
        "discrete": discrete,
    }


def test_guessable_group_needs_reliable_pass_at_k():
    s = DiagnosisSettings(k=2, reliable_rule="ehrmind", min_items=1)
    guesser = _item(4, 2, ["yes", "no", "yes", "no"], "yes", True)  # pass@2 = 1 - C(2,2)/C(4,2) = 5/6
    knower = _item(4, 4, ["no"] * 4, "no", True)  # pass@2 = 1, entropy 0
    b = group_block([guesser, guesser], s)
    # a coin-flipping model: pass@2 is high but no item is reliable
    assert b["guessable"] and b["pass_at_k"] == pytest.approx(5 / 6) and b["reliable_pass_at_k"] == 0.0
    assert b["pass_at_1"] == 0.5 and b["score"] == 0.0 and b["verdict"] == "missing"
    b = group_block([guesser, knower], s)
    assert b["pass_at_k"] == pytest.approx(11 / 12) and b["reliable_pass_at_k"] == pytest.approx(0.5)
    assert b["verdict"] == "misapplied"  # score 0.5 >= threshold 0.5
    # decimals are not guessable: plain pass@k decides (1 - C(3,2)/C(4,2) = 0.5)
    decimal = _item(4, 1, [61.2, 67.0, 70.1, 55.5], 67.0, False)
    b = group_block([decimal], s)
    assert not b["guessable"] and b["pass_at_k"] == pytest.approx(0.5) and b["verdict"] == "misapplied"
    # naming the guessable groups overrides the rule
    forced = DiagnosisSettings(k=2, guessable=["lab"], reliable_rule="ehrmind", min_items=1)
    assert group_block([decimal], forced, name="lab")["verdict"] == "missing"
    # more distinct gold answers than max_distinct: not guessable
    many = [_item(2, 2, [i, i], i, True) for i in range(11)]
    assert not group_block(many, s)["guessable"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 1, "reliable_rule": "ehrmind"}, "min_correct must be between 1 and k"),
        ({"reliable_rule": "nats"}, "reliable_rule must be one of paper, paper-thresholds, ehrmind"),
        ({"k": 4, "threshold": 0}, "threshold"),
        ({"plan_examples": 0}, "plan_examples"),
    ],
)
def test_settings_say_what_to_change(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        DiagnosisSettings(**kwargs)


# ------------------------------------------------------------------ from predictions to a plan


@pytest.fixture(scope="module")
def synthetic_jsonl(tmp_path_factory) -> Path:
    from ehrmind.io import atomic_write_jsonl
    from ehrmind.tasks.medcalc.sample_rows import make_rows

    path = tmp_path_factory.mktemp("diag") / "train.jsonl"
    atomic_write_jsonl(path, make_rows(12, seed=3))  # MAP, BMI, anion gap: 4 rows each
    return path


def _hand_predictions(path: Path, tmp_path: Path) -> Path:
    """MAP rows: one of two samples right; BMI and anion gap rows: none."""
    task = get_task("medcalc")
    wrong = '<think>x</think>\n<answer>{"answer": -1}</answer>'
    preds = tmp_path / "preds.jsonl"
    with open(preds, "w") as fh:
        for ex in task.load(path):
            right = ex.metadata["calculator_name"].startswith("Mean Arterial")
            for sample, completion in enumerate([gold_completion(task, ex, "r") if right else wrong, wrong]):
                fh.write(json.dumps({"id": ex.id, "sample": sample, "completion": completion}) + "\n")
    return preds


def test_diagnose_from_predictions_writes_a_plan_sft_accepts(tmp_path, synthetic_jsonl):
    preds = _hand_predictions(synthetic_jsonl, tmp_path)
    out = tmp_path / "diag"
    settings = DiagnosisSettings(k=2, plan_examples=3, min_items=4)
    d = run_diagnose("medcalc", str(synthetic_jsonl), out, settings, predictions=preds, progress=False)
    calc = d["by_calculator_name"]
    assert calc["Mean Arterial Pressure (MAP)"]["pass_at_k"] == 1.0  # c=1 of n=2: pass@2 = 1
    assert calc["Mean Arterial Pressure (MAP)"]["pass_at_1"] == 0.5
    assert calc["Mean Arterial Pressure (MAP)"]["verdict"] == "misapplied"
    assert calc["Anion Gap"]["verdict"] == calc["Body Mass Index (BMI)"]["verdict"] == "missing"
    # physical = 4 MAP items (pass@2 = 1) + 4 BMI items (0): 0.5, at the threshold
    assert (
        d["by_category"]["physical"]["pass_at_k"] == 0.5
        and d["by_category"]["physical"]["verdict"] == "misapplied"
    )
    assert d["by_category"]["lab"]["n"] == 4 and d["by_category"]["lab"]["verdict"] == "missing"
    saved = json.loads((out / "diagnosis.json").read_text())
    assert set(saved["by_category"]["lab"]) >= {"n", "pass_at_1", "pass_at_k", "verdict"}
    assert (out / "diagnosis.png").stat().st_size > 1000 and "## By calculator name" in (
        out / "report.md"
    ).read_text()
    items = [json.loads(line) for line in (out / "reasoning" / "items.jsonl").read_text().splitlines()]
    assert len(items) == 12 and {it["c"] for it in items} == {0, 1}

    plan = yaml.safe_load((out / "sft_plan.yaml").read_text())
    assert plan == {"sft_data": {"per_group": {"Anion Gap": 3, "Body Mass Index (BMI)": 3}}}
    recipe_path = tmp_path / "sft.yaml"
    recipe_path.write_text(
        yaml.safe_dump(
            {
                "stage": "sft",
                "task": "medcalc",
                "data": str(synthetic_jsonl),
                "model": "m",
                "output_dir": str(tmp_path / "o"),
                "sft_data": {"fraction": 0.5},
                "trl": CPU,
            }
        )
    )
    recipe = load_recipe(recipe_path, stage="sft", plans=[out / "sft_plan.yaml"])
    assert recipe.sft_data.per_group == {"Anion Gap": 3, "Body Mass Index (BMI)": 3}
    selected = select_examples(get_task("medcalc").load(synthetic_jsonl), per_group=recipe.sft_data.per_group)
    assert (
        sorted(ex.metadata["calculator_name"] for ex in selected)
        == ["Anion Gap"] * 3 + ["Body Mass Index (BMI)"] * 3
    )
    # --set still wins over the plan
    assert load_recipe(
        recipe_path, ["sft_data.per_group={X: 1}"], stage="sft", plans=[out / "sft_plan.yaml"]
    ).sft_data.per_group == {"X": 1}

    # rerun on the same samples with a stricter threshold: nothing is misapplied any more
    d = run_diagnose(
        "medcalc",
        str(synthetic_jsonl),
        tmp_path / "d2",
        DiagnosisSettings(k=2, threshold=1.0, plan_by="category", min_items=4),
        predictions=preds,
        progress=False,
    )
    assert d["plan"] == {"sft_data": {"per_group": {"lab": 20, "physical": 20}}}
    # everything misapplied: a format-only warm-up
    all_good = {"by_category": {"lab": {"verdict": "misapplied"}, "physical": {"verdict": "misapplied"}}}
    assert build_plan(all_good, "category", settings) == {"sft_data": {"per_category_cap": 2}}


def test_diagnose_errors(tmp_path, synthetic_jsonl):
    preds = _hand_predictions(synthetic_jsonl, tmp_path)
    data = str(synthetic_jsonl)
    with pytest.raises(ConfigError, match=r"pass@3 needs at least k=3 samples per item; 12 item\(s\)"):
        run_diagnose(
            "medcalc", data, tmp_path / "a", DiagnosisSettings(k=3), predictions=preds, progress=False
        )
    with pytest.raises(ConfigError, match="either --model"):
        run_diagnose("medcalc", data, tmp_path / "b", DiagnosisSettings(k=2), model="m", predictions=preds)
    with pytest.raises(ConfigError, match="exactly one --mode"):
        run_diagnose(
            "medcalc",
            data,
            tmp_path / "c",
            DiagnosisSettings(k=2),
            predictions=preds,
            modes=["reasoning", "direct"],
        )
    with pytest.raises(ConfigError, match="not a group of task 'ehrshot'"):
        from ehrmind.eval.diagnose import plan_field

        plan_field(get_task("ehrshot"), DiagnosisSettings(k=2, plan_by="calculator_name"))
    with pytest.raises(
        ConfigError, match=r"'cohort' is not a group of task 'medcalc' \(category, calculator_name\)"
    ):
        plan_field(get_task("medcalc"), DiagnosisSettings(k=2, plan_by="cohort"))
    assert plan_field(get_task("medcalc"), DiagnosisSettings(k=2)) == "calculator_name"  # the finest
    assert plan_field(get_task("trec_ct"), DiagnosisSettings(k=2)) == "category"
    # a plan is a fragment: it cannot switch stages
    bad = tmp_path / "bad_plan.yaml"
    bad.write_text("stage: rl\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        yaml.safe_dump({"stage": "sft", "task": "medcalc", "data": data, "model": "m", "output_dir": "o"})
    )
    with pytest.raises(ConfigError, match="cannot set stages"):
        load_recipe(recipe, stage="sft", plans=[bad])


# ------------------------------------------------------------------ one-shot baseline


def _one_shot_file(tmp_path: Path) -> Path:
    path = tmp_path / "shots.json"
    shots = {
        "5": {
            "Patient Note": "BP 120/80 mmHg.",
            "Response": {"step_by_step_thinking": "MAP = 2/3 × 80 + 1/3 × 120 = 93.333.", "answer": 93.333},
        }
    }
    path.write_text(json.dumps(shots))
    return path


def test_one_shot_mode_shows_the_exemplar_as_a_previous_turn(tmp_path, synthetic_jsonl):
    task = get_task("medcalc", mode="one-shot", exemplars=str(_one_shot_file(tmp_path)), prefill=True)
    examples = task.load(synthetic_jsonl)
    map_row = next(ex for ex in examples if ex.metadata["calculator_id"] == 5)
    msgs = task.render(map_row)
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant"]
    assert "BP 120/80 mmHg." in msgs[1]["content"] and map_row.input["question"] in msgs[1]["content"]
    # the exemplar answers in OUR output contract, so it passes the same verifier
    assert (
        msgs[2]["content"]
        == '<think>MAP = 2/3 × 80 + 1/3 × 120 = 93.333.</think>\n<answer>{"answer": 93.333}</answer>'
    )
    assert map_row.input["note"] in msgs[3]["content"] and msgs[4]["content"].endswith("<think>")
    # verified as in reasoning mode
    assert task.verify(map_row, gold_completion(task, map_row, "r")).reward == 1.1
    assert task.verify(map_row, '<answer>{"answer": 1}</answer>').format_ok is False
    bmi = next(ex for ex in examples if ex.metadata["calculator_id"] != 5)
    with pytest.raises(
        ConfigError,
        match=rf"no one-shot exemplar for calculator id {bmi.metadata['calculator_id']} .*shots.json",
    ):
        task.render(bmi)


def test_one_shot_options_fail_early(tmp_path):
    with pytest.raises(ConfigError, match="needs exemplars"):
        get_task("medcalc", mode="one-shot")
    with pytest.raises(ConfigError, match="only applies to mode 'one-shot'"):
        get_task("medcalc", exemplars=str(_one_shot_file(tmp_path)))
    with pytest.raises(ConfigError, match="'reasoning' or 'direct' for task 'ehrshot'"):
        get_task("ehrshot", mode="one-shot")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"5": {"Patient Note": "x", "Response": {"answer": 1}}}))
    with pytest.raises(Exception, match=r"bad.json, row 5, field 'Response.step_by_step_thinking': empty"):
        get_task("medcalc", mode="one-shot", exemplars=str(bad))


@pytest.mark.parametrize("name", ["official-json", "verified-csv"])
def test_published_one_shot_sets_cover_every_test_calculator(name, medcalc_test_csv):
    path = shared_file(ONE_SHOT_JSON if name == "official-json" else ONE_SHOT_CSV)
    task = get_task("medcalc", mode="one-shot", exemplars=str(path))
    assert len(task._shots) == 55
    first = {}
    for ex in task.load(medcalc_test_csv):
        first.setdefault(ex.metadata["calculator_id"], ex)
    for ex in first.values():
        shot = task.render(ex)[2]["content"]
        assert task.verify(ex, shot).format_ok  # every exemplar is in the output contract


def test_official_one_shot_keeps_calculator_24s_own_question(medcalc_test_csv):
    # run.py:202-205: every exemplar is shown with the row's question except calculator 24's, whose rows ask
    # about different steroids (15 questions); its exemplar keeps the Hydrocortisone → Dexamethasone question.
    from ehrmind.tasks.medcalc.prompts import OFFICIAL_ONE_SHOT_QUESTIONS

    task = get_task("medcalc", mode="one-shot", exemplars=str(shared_file(ONE_SHOT_JSON)))
    rows = [ex for ex in task.load(medcalc_test_csv) if ex.metadata["calculator_id"] in (24, 5)]
    steroid = [ex for ex in rows if ex.metadata["calculator_id"] == 24]
    assert len({ex.input["question"] for ex in steroid}) > 1
    for ex in steroid:
        shown = task.render(ex)[1]["content"]
        assert OFFICIAL_ONE_SHOT_QUESTIONS[24] in shown
        if ex.input["question"] != OFFICIAL_ONE_SHOT_QUESTIONS[24]:
            assert ex.input["question"] not in shown
    other = next(ex for ex in rows if ex.metadata["calculator_id"] == 5)
    assert other.input["question"] in task.render(other)[1]["content"]


# ------------------------------------------------------------------ end to end on a tiny model


@pytest.fixture(scope="module")
def shared_rows(tmp_path_factory) -> Path:
    """Real MedCalc-Bench v1.0 test rows with short notes: 2 each of QTc Bazett, due date, steroid conversion."""
    df = pd.read_csv(shared_file(SHARED_DATA / "medcalc_bench" / "medcalc_bench_v1.0_test.csv"))
    sub = pd.concat([df[df["Calculator ID"] == c].head(2) for c in (11, 13, 24)])
    path = tmp_path_factory.mktemp("shared") / "rows.csv"
    sub.to_csv(path, index=False)
    return path


def test_diagnose_cli_then_sft_with_the_plan(tmp_path, tiny_model, shared_rows):
    out = tmp_path / "diag"
    args = [
        "diagnose",
        "--task",
        "medcalc",
        "--data",
        str(shared_rows),
        "--model",
        str(tiny_model),
        "--k",
        "2",
    ]
    args += ["--out", str(out), "--max-new-tokens", "8", "--batch-size", "6", "--temperature", "1.0"]
    args += ["--mode", "reasoning", "direct", "one-shot", "--one-shot-file", str(shared_file(ONE_SHOT_JSON))]
    result = runner.invoke(app, [*args, "--min-items", "1"])
    assert result.exit_code == 0, result.output
    # a random tiny model writes no readable answer: it cannot follow the format (not "knowledge missing")
    assert (
        "knowledge missing in 0 group(s)" in result.output
        and "cannot follow the output format in 3" in result.output
    )
    d = json.loads((out / "diagnosis.json").read_text())
    assert set(d["by_category"]) == {"physical", "date", "dosage"} and len(d["by_calculator_name"]) == 3
    for block in d["by_category"].values():
        assert block["n"] == 2 and 0 <= block["pass_at_1"] <= block["pass_at_k"] <= 1
        assert block["verdict"] == "format" and block["unread_rate"] == 1.0
    assert set(d["baselines"]) == {"direct", "one-shot"}
    for mode in ("reasoning", "direct", "one-shot"):
        preds = (out / mode / "predictions.jsonl").read_text().splitlines()
        assert len(preds) == 12 and json.loads((out / mode / "run.json").read_text())["prompt_mode"] == mode
    report = (out / "report.md").read_text()
    assert "## Prompt modes side by side" in report and "![pass@k by category](diagnosis.png)" in report
    assert (out / "diagnosis.png").stat().st_size > 1000

    plan = yaml.safe_load((out / "sft_plan.yaml").read_text())
    recipe = tmp_path / "sft.yaml"
    trl = {**CPU, "max_steps": 1, "per_device_train_batch_size": 2, "max_length": 512, "save_steps": 1000}
    recipe.write_text(
        yaml.safe_dump(
            {
                "stage": "sft",
                "task": "medcalc",
                "data": str(shared_rows),
                "model": str(tiny_model),
                "output_dir": str(tmp_path / "sft"),
                "trl": trl,
            }
        )
    )
    result = runner.invoke(app, ["sft", "--recipe", str(recipe), "--plan", str(out / "sft_plan.yaml")])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "sft" / "ehrmind_run.json").read_text())
    assert {k: v for k, v in record["recipe"]["sft_data"].items() if v is not None} == {
        "builder": "explanation",
        "seed": 0,
        "fraction_rule": "paper",
        **plan["sft_data"],
    }
    # the selected rows are the plan's: min(planned, available) per group (2 rows per calculator here)
    names = pd.read_csv(shared_rows)["Calculator Name"].tolist()
    per_group = plan["sft_data"].get("per_group", {})
    assert record["data_counts"]["selected"] == sum(min(n, names.count(g)) for g, n in per_group.items())


def test_diagnose_cli_refuses_a_missing_exemplar_before_loading_the_model(tmp_path, shared_rows):
    shots = tmp_path / "shots.json"
    shots.write_text(
        json.dumps({"11": {"Patient Note": "x", "Response": {"step_by_step_thinking": "t", "answer": 1}}})
    )
    args = [
        "diagnose",
        "--task",
        "medcalc",
        "--data",
        str(shared_rows),
        "--model",
        str(tmp_path / "no-model"),
    ]
    args += ["--k", "2", "--out", str(tmp_path / "o"), "--mode", "one-shot", "--one-shot-file", str(shots)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and re.search(
        r"no one-shot exemplar for calculator id 13 .*shots.json", result.output
    )


# ---------------------------------------------------------------- issue #15, item 2: verdicts with uncertainty


def _unread(n: int) -> dict:
    return _item(n, 0, [None] * n, 4, True) | {"unread": n}


def test_a_model_that_cannot_follow_the_format_is_not_diagnosed_as_missing_knowledge():
    """Five groups of n = 2 were each marked "missing" and given 20 SFT rows, and a model with 100% format
    errors was "knowledge missing". Now: `format` (planned as a few format rows) and `too few items` (none)."""
    s = DiagnosisSettings(k=2)
    fmt = group_block([_unread(4)] * 6, s)
    assert fmt["verdict"] == "format" and fmt["unread_rate"] == 1.0 and fmt["pass_at_k"] == 0.0
    wrong = group_block([_item(4, 0, [5, 6, 5, 6], 4, True) | {"unread": 0}] * 6, s)
    assert wrong["verdict"] == "missing" and wrong["unread_rate"] == 0.0  # readable, wrong: missing
    assert (
        group_block([_unread(4)] * 6, DiagnosisSettings(k=2, format_threshold=None))["verdict"] == "missing"
    )
    few = group_block([_item(4, 0, [5] * 4, 4, True)] * 2, s)
    assert few["verdict"] == "too few items"
    diagnosis = {"by_calculator_name": {"A": fmt, "B": wrong, "C": few}}
    assert build_plan(diagnosis, "calculator_name", s) == {"sft_data": {"per_group": {"A": 2, "B": 20}}}
    only_few = {"by_calculator_name": {"C": few}}
    assert build_plan(only_few, "calculator_name", s) == {"sft_data": {"per_category_cap": 2}}


def test_group_intervals_never_collapse():
    """The pass@1 interval of an all-wrong group was [0, 0] (a percentile bootstrap of zeros)."""
    b = group_block([_item(8, 0, [5] * 8, 4, True)] * 10, DiagnosisSettings(k=8))
    assert b["pass_at_1"] == 0.0 and b["pass_at_1_ci95"][0] == 0.0 and b["pass_at_1_ci95"][1] > 0.2
    assert b["pass_at_k_ci95"][1] > 0.2
    mixed = group_block(
        [_item(8, 4, [4] * 4 + [5] * 4, 4, True)] * 3 + [_item(8, 0, [5] * 8, 4, True)] * 3,
        DiagnosisSettings(k=8),
    )
    lo, hi = mixed["pass_at_1_ci95"]
    assert lo < mixed["pass_at_1"] == 0.25 < hi
