"""The demo's building blocks (programs/experiment.py, programs/demo.py): splits that do not leak, an
imperfect teacher that slips only where it is told to, paired comparisons from prediction rows, and the report
— plus (slow) a miniature demo end to end."""

from __future__ import annotations

import json

import pytest

from ehrmind.programs.demo import DemoSettings, teacher_rationales
from ehrmind.programs.experiment import compare, item_scores, synthetic_split, verdict
from ehrmind.registry import get_task
from ehrmind.tasks.medcalc.calculators import load_all

FEVERPAIN = 33
NO_COUGH = "Absence of cough or coryza"


@pytest.fixture(autouse=True)
def _feverpain():
    if FEVERPAIN not in load_all():
        pytest.skip("FeverPAIN (calculator 33) is not registered")


def test_evaluation_split_never_repeats_a_training_note(tmp_path):
    task = get_task("medcalc")
    _, train = synthetic_split(task, tmp_path, "train", [FEVERPAIN], 1000, seed=1, max_distractors=0)
    _, plain = synthetic_split(task, tmp_path, "plain", [FEVERPAIN], 300, seed=4, max_distractors=0)
    notes = {ex.input["note"] for ex in train}
    overlap = [ex for ex in plain if ex.input["note"] in notes]
    assert overlap, "short FeverPAIN notes collide between seeds; the guard below must have work to do"
    path, held = synthetic_split(
        task, tmp_path, "heldout", [FEVERPAIN], 300, seed=4, max_distractors=0, exclude_notes=notes
    )
    assert len(held) == 300 and not {ex.input["note"] for ex in held} & notes
    manifest = json.loads((path.parent / "manifest.json").read_text())
    assert manifest["options"]["replaced_overlapping_notes"] == len(overlap)
    assert [ex.id for ex in task.load(path)] == [ex.id for ex in held]


def test_teacher_slips_only_on_the_named_finding_when_present(tmp_path):
    from ehrmind.tasks.medcalc.notes import make_examples

    task = get_task("medcalc")
    examples = make_examples([FEVERPAIN], 300, seed=3, max_distractors=0, reasoning="compact")
    path, taught, counts = teacher_rationales(
        task, examples, tmp_path, ((NO_COUGH, 0.6),), seed=0, reasoning="compact"
    )
    have = [ex for ex in examples if ex.metadata["relevant_entities"][NO_COUGH]]
    slipped = [t for t in taught if t.metadata.get("teacher_slips")]
    assert counts == {NO_COUGH: len(slipped)} and 0.48 * len(have) < len(slipped) < 0.72 * len(have)
    for ex, t in zip(examples, taught, strict=True):
        assert t.input == ex.input and t.id == ex.id
        if t.metadata.get("teacher_slips"):
            assert ex.metadata["relevant_entities"][NO_COUGH] is True  # only notes that have the finding
            assert t.metadata["relevant_entities"] == ex.metadata["relevant_entities"]  # read right
            assert t.target["value"] == ex.target["value"] - 1
            assert "No cough or coryza: present → 0" in t.metadata["explanation"].splitlines()
        else:
            assert t.target == ex.target and t.metadata["explanation"] == ex.metadata["explanation"]
    assert len(task.load(path)) == 300


def test_compare_is_strict_at_top_level_and_lenient_beside_it():
    def rows(correct, fmt):
        return [
            {"id": str(i), "correct": c, "format_ok": f}
            for i, (c, f) in enumerate(zip(correct, fmt, strict=True))
        ]

    before = rows([1, 1, 0, 0, None], [0, 1, 1, 1, 1])  # item 0 right but out of format; item 4 unscorable
    after = rows([1, 1, 1, 0, None], [1, 1, 1, 1, 1])
    assert item_scores(before, strict=True) == {"0": 0.0, "1": 1.0, "2": 0.0, "3": 0.0}
    c = compare(after, before)
    assert c["difference"] == pytest.approx(2 / 4) and (c["gained"], c["lost"]) == (2, 0)
    assert c["lenient"]["difference"] == pytest.approx(1 / 4)
    assert verdict({"ci95": [0.01, 0.2]}).startswith("gain")
    assert verdict({"ci95": [-0.2, -0.01]}).startswith("loss")
    assert verdict({"ci95": [-0.1, 0.2]}).startswith("no detectable")


def test_demo_settings_check_the_split():
    with pytest.raises(ValueError, match="evaluate_on"):
        DemoSettings(evaluate_on="test")
    s = DemoSettings()
    assert len({s.split_seed(x) for x in ("sft", "rl", "dev", "heldout")}) == 4
    assert s.split_seed("heldout") != DemoSettings(data_seed=1).split_seed("heldout")


@pytest.mark.slow
def test_miniature_demo_end_to_end(tmp_path):
    from ehrmind.programs.demo import run_demo

    s = DemoSettings(
        n_sft=16, n_rl=16, n_dev=8, n_heldout=8, diagnose_items=4, k=2, curve_items=4, size="tiny",
        max_new_tokens=16, batch_size=8,
    )  # fmt: skip
    sft = ("trl.max_steps=2", "trl.save_steps=100")
    rl = ("trl.max_steps=2", "trl.save_steps=1", "trl.per_device_train_batch_size=8", "trl.num_generations=4",
          "trl.gradient_accumulation_steps=1", "trl.max_completion_length=16")  # fmt: skip
    report = run_demo(tmp_path, s, sft_overrides=sft, rl_overrides=rl, progress=False)
    text = report.read_text()
    assert "GRPO: 2 steps × 2 prompts × 4 completions" in text
    for part in ("Held-out accuracy per stage", "Paired comparisons", "Headroom for RL", "imperfect teacher"):
        assert part in text, part
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics["comparisons"]) == {"sft_vs_base", "grpo_vs_sft", "grpo_vs_base"}
    c = metrics["comparisons"]["grpo_vs_sft"]
    assert c["n"] == 8 and len(c["ci95"]) == 2 and "mcnemar_p" in c and "lenient" in c
    assert [p["step"] for p in metrics["learning_curve"]] == [0, 1, 2]
    assert set(metrics["teacher"]["slipped"]) == {NO_COUGH}
    # the teacher's worked examples are where recipes/demo.yaml says they are
    record = json.loads((tmp_path / "sft" / "ehrmind_run.json").read_text())
    assert record["recipe"]["data"] == str(tmp_path / "data" / "sft_teacher" / "examples.jsonl")
    assert (tmp_path / "training.png").exists() and (tmp_path / "accuracy_by_stage.png").exists()
    # what you train is what you run: plain `ehrmind eval` of the demo's SFT model (no prompt option) renders
    # the recipe's prompt and gives the demo's own after-SFT predictions on the same items
    from typer.testing import CliRunner

    from ehrmind.cli import app

    args = ["eval", "--task", "medcalc", "--model", str(tmp_path / "sft"), "--out", str(tmp_path / "plain")]
    args += ["--data", str(tmp_path / "data" / "heldout" / "examples.jsonl"), "--max-new-tokens", "16"]
    assert (r := CliRunner().invoke(app, args)).exit_code == 0, r.output
    plain = json.loads((tmp_path / "plain" / "metrics.json").read_text())
    demo = json.loads((tmp_path / "eval" / "sft" / "metrics.json").read_text())
    assert plain["run"]["task_options"] == demo["run"]["task_options"]  # the recipe's system prompt
    assert (plain["strict_accuracy"], plain["accuracy"]) == (demo["strict_accuracy"], demo["accuracy"])
    completions = [
        [row["completion"] for row in map(json.loads, (tmp_path / d / "predictions.jsonl").open())]
        for d in ("plain", "eval/sft")
    ]
    assert completions[0] == completions[1]
    # a second run resumes: nothing is retrained, the report is the same
    before = (tmp_path / "sft" / "ehrmind_run.json").stat().st_mtime
    run_demo(tmp_path, s, sft_overrides=sft, rl_overrides=rl, progress=False)
    assert (tmp_path / "sft" / "ehrmind_run.json").stat().st_mtime == before
