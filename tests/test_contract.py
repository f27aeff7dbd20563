"""Issue #27: the output contract is one object — it writes the instruction sentence for each prompt mode,
reads a completion once (ehrmind's strict rules and the paper's), and writes gold completions."""

from __future__ import annotations

import hashlib

import pytest

from ehrmind import get_task
from ehrmind.contract import PAPER_PREFILL, Contract, Wording
from ehrmind.errors import ConfigError
from ehrmind.tasks.analysis import Analysis, ChoicePoint, Exports, LabelAudit, PaperRules

TOY = Contract(
    "answer", Wording(steps="add them.", what="sum", shape='{"answer": N}', notes="N is a number.")
)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# The system prompts the families sent before the contract wrote their sentence (sha256 of each): the paper
# recipes train in reasoning mode, so those are kept byte for byte; MedCalc's direct prompt too.
BEFORE = {
    ("medcalc", "reasoning"): "ec17c6bf2336a0bedb377a95a150e87031e61728db315c9b97f7374b182470e1",
    ("medcalc", "direct"): "79232e4462dd6b17dbd32c96261380657713c53985369d941df154b84daf84e7",
    ("trec_ct", "reasoning"): "aeae46d3b68a1030b432fa7341f0e5ffac09dfb0db71243851223a818b8300db",
    ("ehrshot", "reasoning"): "0bca0fd052c0065fbb82f7b64c69272b4507e6ada634102551527f1b89825afb",
}


@pytest.mark.parametrize(("task", "mode"), sorted(BEFORE))
def test_the_contract_writes_the_families_prompts_as_before(task, mode):
    t = get_task(task, mode=mode)
    assert _sha(t.task_text() + t.contract.sentence()) == BEFORE[task, mode]


@pytest.mark.parametrize("task", ["trec_ct", "ehrshot"])
def test_direct_mode_says_answer_only_in_the_contracts_words(task):
    """TREC CT's and EHRSHOT's direct prompts changed to the contract's sentence (their task versions say so)."""
    sentence = get_task(task, mode="direct").contract.sentence()
    assert sentence.startswith("Give only the final ") and ", with no reasoning." in sentence


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        # reasoning (and one-shot): think, then the answer object, nothing after it
        ("reasoning", 'Think step by step inside <think> </think> tags: add them. Then give the final sum inside '
                      '<answer> </answer> tags as a JSON object: {"answer": N}. N is a number. Write nothing after '
                      "</answer>."),
        # direct: the answer object only
        ("direct", 'Give only the final sum inside <answer> </answer> tags as a JSON object: {"answer": N}, with '
                   "no reasoning. N is a number."),
    ],
)  # fmt: skip
def test_the_sentence_per_mode(mode, expected):
    assert TOY.configured(mode).sentence() == expected


@pytest.mark.parametrize(
    ("contract", "completion", "strict_ok", "paper_ok", "answer"),
    [
        # the contract kept: both rules read the answer
        (TOY, '<think>1+1</think>\n<answer>{"answer": 2}</answer>', True, True, {"answer": 2}),
        # no think block: outside the contract, the answer still read (strict falls back to the object)
        (TOY, '<answer>{"answer": 2}</answer>', False, False, {"answer": 2}),
        # an object but no answer block: strict reads it by its key, the paper's rule reads nothing
        (TOY, 'so {"answer": 2}', False, False, {"answer": 2}),
        # after the paper's prefill the completion continues the think block
        (TOY.configured(prefill=True), '1+1</think>\n<answer>{"answer": 2}</answer>', True, True, {"answer": 2}),
        # direct mode needs no think block
        (TOY.configured("direct"), '<answer>{"answer": 2}</answer>', True, True, {"answer": 2}),
    ],
)  # fmt: skip
def test_a_completion_is_read_once_under_both_rules(contract, completion, strict_ok, paper_ok, answer):
    reading = contract.read(completion, paper=True)
    assert reading.strict.format_ok is strict_ok and reading.strict.answer == answer
    assert reading.paper is not None and reading.paper.format_ok is paper_ok
    assert contract.read(completion).paper is None  # only when asked for


def test_gold_completions_with_and_without_the_prefill():
    assert TOY.gold(2, "1+1") == '<think>1+1</think>\n<answer>{"answer": 2}</answer>'
    prefilled = TOY.configured(prefill=True)
    assert prefilled.prefill == PAPER_PREFILL and prefilled.prefix == "<think>"
    assert prefilled.gold(2, "1+1") == '1+1</think>\n<answer>{"answer": 2}</answer>'  # the prompt opened it
    assert prefilled.whole(2, "1+1") == TOY.gold(2, "1+1")  # a worked exemplar is written whole
    assert prefilled.read(prefilled.gold(2, "1+1")).strict.format_ok
    assert TOY.configured("direct").gold("é") == '<answer>{"answer": "é"}</answer>'
    assert TOY.teacher_format(2) == 'this format: <think>your reasoning</think><answer>{"answer": 2}</answer>'


@pytest.mark.parametrize(
    ("mode", "prefill", "message"),
    [
        ("one-shot", False, "prompt mode must be 'reasoning' or 'direct', got 'one-shot'"),
        ("direct", True, "prefill opens a <think> block"),
    ],
)
def test_a_contract_refuses_a_prompt_it_cannot_read(mode, prefill, message):
    with pytest.raises(ConfigError, match=message):
        TOY.configured(mode, prefill)


def test_reward_weights_are_read_and_checked_with_the_options():
    assert get_task("medcalc", reward_weights=None).options.reward_weights.correct == 1.1
    assert get_task("medcalc", reward_weights={"correct": 2.0}).options.reward_weights.correct == 2.0
    with pytest.raises(ConfigError, match="reward_weights"):
        get_task("medcalc", reward_weights={"colour": 1.0})


def test_an_analysis_adds_nothing_it_does_not_define(tmp_path):
    """The base kinds' defaults: no row fields, no block, no section, no choice point, no paper rule; an
    export or an audit a family declares but does not write says so."""
    task = get_task("medcalc")
    plain = Analysis()
    assert (
        plain.row(task, None, "") == {} and plain.summarize(task, {}, []) is None and plain.report({}) == []
    )
    assert ChoicePoint().point(task, None, "") is None
    assert PaperRules().reliable_m(None) is None and PaperRules().sft_counts({"a": 3}, 0.5) is None
    with pytest.raises(NotImplementedError):
        Exports().export(task, "x", [], tmp_path / "x", run_name="r")
    with pytest.raises(NotImplementedError):
        LabelAudit().audit(tmp_path, tmp_path)
