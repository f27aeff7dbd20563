"""The laptop-scale study: its statistics and claims on hand-made results, and (slow) a miniature run end to
end through the real stages."""

from __future__ import annotations

import json

import pytest

from ehrmind.programs.study import StudySettings, arm_comparisons, claims, run_study, summarize_arms


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


def _rows(right: set[str], ids: list[str]) -> list[dict]:
    return [{"id": i, "correct": i in right, "format_ok": True} for i in ids]


def test_arms_are_compared_per_group_and_paired_over_seeds():
    ids_a = [f"a{i}" for i in range(40)]
    ids_b = [f"b{i}" for i in range(40)]
    group_of = {i: "A" for i in ids_a} | {i: "B" for i in ids_b}
    every = ids_a + ids_b
    half_a = set(ids_a[:20])
    rows = {
        "nothing": {"-": _rows(half_a, every)},  # A 50%, B 0%
        "rl": {"0": _rows(set(ids_a), every), "1": _rows(set(ids_a[:36]), every)},  # A 100% / 90%, B 0%
        "sft": {"0": _rows(half_a | set(ids_b), every), "1": _rows(half_a | set(ids_b[:30]), every)},
        "sft_rl": {"0": _rows(set(every), every), "1": _rows(set(ids_a) | set(ids_b[:30]), every)},
    }
    comps = arm_comparisons(rows, group_of)
    rl_a = comps["rl_vs_nothing"]["A"]
    assert rl_a["n"] == 40 and rl_a["n_runs"] == 2 and rl_a["difference"] == pytest.approx(0.45)
    assert rl_a["ci95"][0] > 0 and comps["rl_vs_nothing"]["B"]["ci95"] == [0.0, 0.0]
    assert comps["sft_vs_nothing"]["B"]["difference"] == pytest.approx(0.875)
    # several seeds on both sides: paired seed by seed (sft_rl seed 1 vs sft seed 1 on B: 30 vs 30)
    assert comps["sft_rl_vs_sft"]["B"]["per_run"] == {"0": 0.0, "1": 0.0}
    verdicts = {c["claim"]: c["holds"] for c in claims(comps)}
    assert verdicts == {
        "RL only raises A": True,
        "RL only leaves B": True,
        "The SFT warm-up raises B": True,
        "SFT warm-up → RL is at least as good as every other arm, on A and on B": True,
    }
    # the same, but RL alone loses A items after the warm-up's model: "at least as good" must fail
    rows["sft_rl"] = {"0": _rows(set(ids_b), every), "1": _rows(set(ids_b), every)}
    best = claims(arm_comparisons(rows, group_of))[-1]
    assert best["holds"] is False
    assert any(e["strict"]["ci95"][1] < 0 for e in best["evidence"])


@pytest.mark.slow
def test_miniature_study_end_to_end(tmp_path):
    s = StudySettings(
        seeds=(0,),
        n_general=16,
        n_warmup_b=8,
        n_warmup_a=4,
        warmup_steps=1,
        n_rl=16,
        n_dev=8,
        n_heldout=8,
        diagnose_items=4,
        k=2,
        size="tiny",
        max_new_tokens=16,
        batch_size=8,
    )
    overrides = {"sft_overrides": ("trl.max_steps=1",), "rl_overrides": ("trl.max_steps=1",)}
    report = run_study(tmp_path, s, progress=False, **overrides)
    text = report.read_text()
    assert "## 1. Diagnosis" in text and "SFT warm-up → RL" in text and (tmp_path / "study.png").exists()
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert set(m["comparisons"]) == {"rl_vs_nothing", "sft_vs_nothing", "sft_rl_vs_nothing", "sft_rl_vs_rl",
                                     "sft_rl_vs_sft"}  # fmt: skip
    assert m["comparisons"]["rl_vs_nothing"]["A"]["n"] == 4 and len(m["claims"]) == 4
    assert m["b_constant_floor"]["sft_vs_constant"]["n"] == 4
    # the general model learned A only: no Wells' note among its training data
    general = [
        json.loads(x) for x in (tmp_path / "data/general_teacher/examples.jsonl").read_text().splitlines()
    ]
    assert {r["metadata"]["calculator_name"] for r in general} == {"FeverPAIN Score for Strep Pharyngitis"}
    # ... its own n_general notes, not the warm-up's A share (a loop variable once shadowed the folder name)
    assert len(general) == s.n_general
    record = json.loads((tmp_path / "general/ehrmind_run.json").read_text())
    assert record["recipe"]["data"] == str(tmp_path / "data/general_teacher/examples.jsonl")
    # a rerun resumes: every stage is found finished, nothing is retrained
    before = (tmp_path / "arms/sft_rl-seed0/model.safetensors").stat().st_mtime_ns
    run_study(tmp_path, s, progress=False, **overrides)
    assert (tmp_path / "arms/sft_rl-seed0/model.safetensors").stat().st_mtime_ns == before


def test_b_floor_is_the_best_constant_answer_and_arms_are_compared_with_it(tmp_path):
    from ehrmind.io import atomic_write_jsonl
    from ehrmind.programs.study import guess_floor

    wells = "Wells' Criteria for DVT"
    golds = [1] * 5 + [0] * 3 + [2] * 2  # a constant 1 is right on 5 of 10
    examples = [{"id": f"b{i}", "target": {"value": v}, "metadata": {"calculator_name": wells}}
                for i, v in enumerate(golds)]  # fmt: skip
    examples.append({"id": "a0", "target": {"value": 3}, "metadata": {"calculator_name": "other"}})
    atomic_write_jsonl(tmp_path / "data/heldout/examples.jsonl", examples)
    assert guess_floor(tmp_path, "heldout", (0,)) is None  # the arms have not run yet
    right = {"sft": {f"b{i}" for i in range(10)}, "sft_rl": {"b0"}}
    for arm, ok in right.items():
        atomic_write_jsonl(
            tmp_path / f"eval/{arm}-seed0/predictions.jsonl", _rows(ok, [e["id"] for e in examples])
        )
    floor = guess_floor(tmp_path, "heldout", (0,))
    assert floor["value"] == 1 and floor["accuracy"] == 0.5
    assert floor["sft_vs_constant"]["difference"] == pytest.approx(0.5)
    assert floor["sft_rl_vs_constant"]["difference"] == pytest.approx(-0.4)
    assert floor["sft_vs_constant"]["n"] == 10  # B items only
