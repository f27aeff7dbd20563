"""The reward's format rules (#12 item 7): the EHRMind paper's by default, ehrmind's strict contract as an
option. Each case is the paper's verdict (its `verl/utils/reward_score/medcalc.py`) beside the strict one."""

from __future__ import annotations

import json

import pytest

from ehrmind import Example, get_task
from ehrmind.errors import ConfigError
from ehrmind.rewards.trl import reward_functions
from ehrmind.rewards.verl import compute_score, verl_rows
from ehrmind.tasks.medcalc.task import parse_gold
from ehrmind.types import RewardWeights

PAPER = get_task("medcalc")
STRICT = get_task("medcalc", reward_weights={"format": "strict"})


def example(output_type: str, answer: str, calculator_id: int, lower: str = "", upper: str = "") -> Example:
    return Example(
        id=f"{calculator_id}-{answer}",
        task="medcalc",
        input={"note": "n", "question": "q"},
        target=parse_gold(output_type, answer, lower, upper),
        metadata={"category": "risk", "calculator_id": calculator_id, "calculator_name": "calc"},
    )


INT4 = example("integer", "4", 33)  # FeverPAIN: an integer calculator in the official lists
DEC = example("decimal", "93.3", 5, "88.6", "98.0")  # mean arterial pressure
DATE = example("date", "08/14/2023", 13)


def answer(value) -> str:
    return f"<answer>{json.dumps({'answer': value})}</answer>"


OK = "<think>r</think>\n" + answer(4)

CASES = [
    # (completion, example, paper reward, strict reward)
    pytest.param(OK, INT4, 1.1, 1.1, id="well-formed-correct"),
    pytest.param("<think>r</think>\n" + answer(5), INT4, 0.0, 0.0, id="well-formed-wrong"),
    # The paper tolerates text around the blocks (its tail check is commented out, medcalc.py:189).
    pytest.param(OK + ".", INT4, 1.1, -2.0, id="full-stop-after-answer"),
    pytest.param(OK + " Hope this helps!", INT4, 1.1, -2.0, id="sentence-after-answer"),
    pytest.param("<think>r</think> The score is 4. " + answer(4), INT4, 1.1, -2.0, id="text-between-blocks"),
    pytest.param("Sure. <think>r</think>" + answer(4), INT4, 1.1, -2.0, id="text-before-think"),
    # ...but reads the answer as MedCalc-Bench's eval would: a unit or words make it wrong.
    pytest.param("<think>r</think>" + answer("4 points"), INT4, 0.0, 1.1, id="unit-in-answer"),
    pytest.param("<think>r</think>" + answer("93.0 mm Hg"), DEC, 0.0, 1.1, id="unit-in-decimal"),
    pytest.param("<think>r</think>" + answer("93.0"), DEC, 1.1, 1.1, id="decimal-string"),
    # Arithmetic is evaluated (safely here): 2+2 is 4 for the paper, its first number 2 is wrong for strict.
    pytest.param("<think>r</think>" + answer("2+2"), INT4, 1.1, 0.0, id="arithmetic"),
    pytest.param("<think>r</think>" + answer("__import__('os')"), INT4, 0.0, 0.0, id="code-is-not-run"),
    # Dates: the paper's strptime wants MM/DD/YYYY exactly.
    pytest.param("<think>r</think>" + answer("08/14/2023"), DATE, 1.1, 1.1, id="date"),
    pytest.param("<think>r</think>" + answer("2023-08-14"), DATE, 0.0, 1.1, id="iso-date"),
    # The paper wants plain JSON in the answer block: a fence is a format error there.
    pytest.param('<think>r</think><answer>```json\n{"answer": 4}\n```</answer>', INT4, -2.0, 1.1, id="fence"),
    # Both: each tag exactly once, in order, and a JSON object with the key.
    pytest.param(OK + "\n" + answer(4), INT4, -2.0, -2.0, id="two-answer-blocks"),
    pytest.param(answer(4) + "<think>r</think>", INT4, -2.0, -2.0, id="blocks-out-of-order"),
    pytest.param(answer(4), INT4, -2.0, -2.0, id="no-think"),
    pytest.param('<think>r</think><answer>{"value": 4}</answer>', INT4, -2.0, -2.0, id="wrong-key"),
    pytest.param('<think>r</think><answer>{"answer": 4</answer>', INT4, -2.0, -2.0, id="broken-json"),
    pytest.param("", INT4, -2.0, -2.0, id="empty"),
    # A calculator outside the official id lists (synthetic, new) is read by its output type.
    pytest.param(OK + ".", example("integer", "4", 0), 1.1, -2.0, id="unlisted-calculator"),
    pytest.param(
        "<think>r</think>" + answer("4 pts"), example("integer", "4", 0), 0.0, 1.1, id="unlisted-unit"
    ),
]


@pytest.mark.parametrize(("completion", "ex", "paper", "strict"), CASES)
def test_paper_and_strict_rewards(completion, ex, paper, strict):
    p, s = PAPER.verify(ex, completion), STRICT.verify(ex, completion)
    assert (p.reward, s.reward) == (paper, strict)
    # the verdicts accuracy counts do not depend on the reward's rules
    assert (p.format_ok, p.correct, p.parsed) == (s.format_ok, s.correct, s.parsed)
    assert s.reward_format_ok is None
    assert p.reward_format_ok is (paper != -2.0)


def test_default_is_the_paper_and_strict_is_named():
    assert RewardWeights().format == "paper"
    assert PAPER.options.reward_weights.format == "paper"
    with pytest.raises(ValueError, match="'paper' or 'strict'"):
        RewardWeights(format="lenient")


def test_unscorable_gold_is_none_under_both_rules():
    unknown = Example(
        id="u",
        task="medcalc",
        input={"note": "n", "question": "q"},
        target={"output_type": "ratio", "answer": "1:2"},
        metadata={"category": "lab", "calculator_id": 999, "calculator_name": "?"},
    )
    assert PAPER.verify(unknown, OK + ".").reward is None
    assert STRICT.verify(unknown, OK + ".").reward == -2.0
    assert PAPER.verify(unknown, answer(4)).reward == -2.0  # no think block: bad format for both


@pytest.mark.parametrize("task", [PAPER, STRICT], ids=["paper", "strict"])
def test_trl_reward_components_sum_to_score_reward(task):
    fmt, correctness = reward_functions(task, [INT4])
    completions = [c.values[0] for c in CASES if c.values[1] is INT4]
    ids = [INT4.id] * len(completions)
    totals = [a + b for a, b in zip(fmt(completions, ids), correctness(completions, ids), strict=True)]
    assert totals == [task.verify(INT4, c).reward for c in completions]
    # the format component is the penalty exactly when the reward's own format rule fails
    penalised = [f == task.options.reward_weights.bad_format for f in fmt(completions, ids)]
    assert penalised == [
        task.verify(INT4, c).reward == task.options.reward_weights.bad_format for c in completions
    ]


def test_verl_export_keeps_the_rule():
    for task, expected in ((PAPER, 1.1), (STRICT, -2.0)):
        row = verl_rows(task, [INT4])[0]
        got = compute_score(
            row["data_source"], OK + ".", row["reward_model"]["ground_truth"], row["extra_info"]
        )
        assert got["score"] == expected


def test_recipe_reward_format(tmp_path):
    import yaml

    from ehrmind.recipes import DEMO, STUDY
    from ehrmind.train.recipe import load_recipe

    body = {
        "stage": "rl",
        "task": "medcalc",
        "data": "d.jsonl",
        "model": "m",
        "output_dir": str(tmp_path / "o"),
    }
    path = tmp_path / "rl.yaml"
    path.write_text(yaml.safe_dump(body))
    assert load_recipe(path, stage="rl").reward_weights.format == "paper"
    assert load_recipe(path, ["reward_weights.format=strict"], stage="rl").reward_weights.format == "strict"
    with pytest.raises(ConfigError, match="reward_weights.format"):
        load_recipe(path, ["reward_weights.format=loose"], stage="rl")
    # the demo and the study were chosen and reported with the strict rule: their recipes say so
    for recipe in (DEMO, STUDY):
        assert load_recipe(recipe, stage="rl").reward_weights.format == "strict"
