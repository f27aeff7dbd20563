"""The laptop-scale study: its statistics on hand-made results, and (slow) a miniature run end to end."""

from __future__ import annotations

import pytest

from ehrmind.programs.study import StudySettings, _claim, run_study, summarize_arms


def test_summarize_arms_averages_seeds_per_item():
    group_of = {"a1": "A", "a2": "A", "b1": "B", "b2": "B"}
    correct = {
        "nothing": {0: {"a1": 1, "a2": 0, "b1": 0, "b2": 0}, 1: {"a1": 1, "a2": 0, "b1": 0, "b2": 0}},
        "sft": {0: {"a1": 1, "a2": 1, "b1": 1, "b2": 0}, 1: {"a1": 1, "a2": 0, "b1": 1, "b2": 1}},
    }
    r = summarize_arms(correct, group_of, resamples=500)
    assert r["nothing"]["A"]["accuracy"] == 0.5 and r["nothing"]["B"]["accuracy"] == 0.0
    # sft on A: item a1 right in both seeds (1.0), a2 in one of two (0.5) -> 0.75
    assert r["sft"]["A"]["accuracy"] == 0.75 and r["sft"]["A"]["per_seed"] == [1.0, 0.5]
    assert r["sft"]["B"]["per_seed"] == [0.5, 1.0] and r["nothing"]["B"]["ci95"] == [0.0, 0.0]
    lo, hi = r["sft"]["A"]["ci95"]
    assert 0.5 <= lo <= 0.75 <= hi <= 1.0


def test_claims_need_separated_intervals():
    results = {
        "sft": {"B": {"accuracy": 0.6, "ci95": [0.45, 0.75]}},
        "nothing": {"B": {"accuracy": 0.0, "ci95": [0.0, 0.05]}},
        "rl": {"B": {"accuracy": 0.1, "ci95": [0.0, 0.5]}},
    }
    assert _claim(results, "sft", "nothing", "B")[0] is True
    clear, text = _claim(results, "sft", "rl", "B")
    assert clear is False and "intervals overlap" in text


@pytest.mark.slow
def test_miniature_study_end_to_end(tmp_path):
    s = StudySettings(
        seeds=(0,),
        n_pretrain=24,
        pretrain_epochs=1,
        n_heldout_per_calc=3,
        n_warmup_per_calc=3,
        warmup_epochs=1,
        n_rl=16,
        rl_steps=1,
        k=2,
        max_new_tokens=16,
    )
    report = run_study(tmp_path, s)
    text = report.read_text()
    assert "## 1. Diagnosis" in text and "SFT warm-up → RL" in text and (tmp_path / "study.png").exists()
