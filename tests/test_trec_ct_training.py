"""The paper's TREC Clinical Trials training (issue #28): the recipes validate with the paper's settings, the
warm-up data is label-balanced and confidence-filtered, and raw data → warm-up set → SFT → GRPO → eval runs on
CPU from the shared TREC data (slow)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from conftest import SHARED_DATA, shared_file
from ehrmind import get_task
from ehrmind.cli import app
from ehrmind.errors import ConfigError
from ehrmind.tasks.trec_ct import LABELS
from ehrmind.train.rationales import (
    CONFIDENCE_LEVELS,
    LOW_CONFIDENCE,
    NO_CONFIDENCE,
    balanced_sample,
    judge_attempts,
    split_confidence,
    teacher_messages,
)
from ehrmind.train.recipe import load_recipe
from ehrmind.types import Example
from test_openai_compat import Scripted, completion

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes" / "trec_ct"
BASE = RECIPES / "base.yaml"
DOC = REPO / "docs" / "trec_ct.md"
BACKBONES = {
    "llama-3.2-3b-instruct.yaml": ("meta-llama/Llama-3.2-3B-Instruct", "runs/trec_ct/llama-3.2-3b"),
    "qwen2.5-3b-instruct.yaml": ("Qwen/Qwen2.5-3B-Instruct", "runs/trec_ct/qwen2.5-3b"),
}
WARMUP_SET = "runs/trec_ct/warmup/rationales.jsonl"
RL_SET = "data/trec_ct/train.jsonl"


# ---------------------------------------------------------------- recipes
@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_recipes_validate_with_the_papers_settings(name):
    hub, runs = BACKBONES[name]
    sft = load_recipe(RECIPES / name, stage="sft")  # validation, TRL fields included; no model loads
    rl = load_recipe(RECIPES / name, stage="rl")
    assert sft.task == rl.task == "trec_ct" and sft.seed == rl.seed == 42
    assert sft.task_options.mode == "reasoning" and sft.task_options.prefill is True
    # the data each stage reads: what the warm-up command writes
    assert (sft.data, rl.data) == (WARMUP_SET, RL_SET)
    assert sft.sft_data.builder == "explanation" and sft.sft_data.fraction is None  # every kept rationale
    # the chain: backbone → SFT → GRPO from the SFT output
    assert (sft.model, sft.output_dir, rl.model, rl.output_dir) == (
        hub,
        f"{runs}/sft",
        f"{runs}/sft",
        f"{runs}/rl",
    )
    # SFT: src/sft/matching/sft.py:37-41,56
    s = sft.trl
    assert (s["learning_rate"], s["num_train_epochs"], s["max_length"]) == (2e-5, 2, 4096)
    assert (s["per_device_train_batch_size"], s["gradient_accumulation_steps"]) == (2, 16)
    assert (s["lr_scheduler_type"], s["warmup_steps"]) == ("linear", 0)
    assert sft.max_prompt_tokens == 2048 < s["max_length"]  # ehrmind's: room for the rationale, never cut
    # GRPO: scripts/train/train_matching_3b.sh
    r = rl.trl
    assert (r["learning_rate"], r["lr_scheduler_type"]) == (1e-6, "constant")  # verl's default schedule
    assert (r["num_generations"], r["beta"], r["temperature"], r["top_p"]) == (12, 0.001, 0.6, 0.95)
    assert r["use_bias_correction_kl"] is False  # plain k3: verl's low_var_kl
    assert (rl.max_prompt_tokens, r["max_completion_length"], r["num_train_epochs"]) == (1500, 2048, 10)
    prompts = r["per_device_train_batch_size"] * 8 * r["steps_per_generation"] // r["num_generations"]
    assert prompts == 32  # data.train_batch_size=32 on 8 GPUs
    # GPU keys: vLLM colocated, its context holds the longest kept prompt and its completion
    assert r["bf16"] and r["use_vllm"] and r["vllm_mode"] == "colocate"
    assert r["vllm_max_model_length"] >= rl.max_prompt_tokens + r["max_completion_length"]
    assert r["log_completions"] is False  # patient text


def test_rl_recipe_with_a_short_vllm_context_is_refused():
    # 1500 prompt + 2048 completion tokens do not fit a 3000-token vLLM context: refused before any model loads
    with pytest.raises(ConfigError, match="vllm_max_model_length"):
        load_recipe(RECIPES / "qwen2.5-3b-instruct.yaml", ["trl.vllm_max_model_length=3000"], stage="rl")


def test_the_doc_names_the_recipes_paths_and_settings():
    text = DOC.read_text()
    section = text[text.index("## Training: the paper's recipe") :]
    warmup = re.search(r"ehrmind rationales .*?(?=\n\S|\n\n)", section, re.S).group(0)
    assert "--build-data data/trec_ct" in warmup and "--out runs/trec_ct/warmup" in warmup
    assert f"{Path(RL_SET).parent}" in warmup and "--per-label 1000" in warmup
    assert "--min-confidence neutral" in warmup and "--data-set balance=true" in warmup
    for name in BACKBONES:
        assert f"--recipe recipes/trec_ct/{name}" in section
    for ref in ("train_matching_3b.sh", "sft.py", "gen_reasoning_data.py", "utils.py", "split.py"):
        assert ref in section
    # every `key: value` the table gives is the recipe's (SFT's or GRPO's; trl, top level or task option)
    sft, rl = (load_recipe(RECIPES / "llama-3.2-3b-instruct.yaml", stage=s) for s in ("sft", "rl"))
    recipe_values = [
        {**r.trl, **r.task_options.model_dump(), "max_prompt_tokens": r.max_prompt_tokens} for r in (sft, rl)
    ]
    checked = 0
    for key, value in re.findall(r"`(\w+): ([^`]+)`", section):
        if any(key in values for values in recipe_values):
            parsed = yaml.safe_load(value)
            parsed = float(parsed) if re.fullmatch(r"[\d.]+e-?\d+", str(parsed)) else parsed  # YAML 1.1: 1e-6
            assert any(values.get(key) == parsed for values in recipe_values), (key, value)
            checked += 1
    assert checked >= 15


PAPER_VERL = {
    # scripts/train/train_matching_3b.sh in linjc16/EHRMind: what the exported verl run must set
    "data.train_batch_size": "32",
    "data.max_prompt_length": "1500",
    "data.max_response_length": "2048",
    "actor_rollout_ref.actor.optim.lr": "1e-06",
    "actor_rollout_ref.actor.optim.lr_scheduler_type": "constant",
    "actor_rollout_ref.actor.use_kl_loss": "true",
    "actor_rollout_ref.actor.kl_loss_coef": "0.001",
    "actor_rollout_ref.actor.kl_loss_type": "low_var_kl",
    "actor_rollout_ref.rollout.temperature": "0.6",
    "actor_rollout_ref.rollout.top_p": "0.95",
    "actor_rollout_ref.rollout.n": "12",
}


def test_rl_recipe_exports_to_the_papers_verl_settings(tmp_path, monkeypatch):
    """`ehrmind export-verl` takes the RL recipe unchanged (the schedule is named, so nothing is refused) and
    writes the paper script's settings."""
    from ehrmind.train.verl_launch import script_overrides

    source = shared_file(SHARED_DATA / "trec_ct" / "official" / "topics2021.xml").parents[1]
    monkeypatch.chdir(tmp_path)
    get_task("trec_ct").build_data(source, "data/trec_ct", seed=42, balance=True)
    args = [
        "export-verl",
        "--recipe",
        str(RECIPES / "llama-3.2-3b-instruct.yaml"),
        "--out",
        "verl",
        "--gpus",
        "8",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output[-2000:]
    o = script_overrides(Path("verl/run_verl.sh").read_text())
    assert {k: o.get(k) for k in PAPER_VERL} == PAPER_VERL


# ---------------------------------------------------------------- balanced sampling
def pair(i: int, label: int, scale: str = "trec") -> Example:
    name = LABELS[label] if scale == "trec" else "would not refer"
    return Example(
        id=f"trec-2021{i}::NCT{i:08d}",
        task="trec_ct",
        input={
            "patient": f"Patient {i}.",
            "trial_title": "T",
            "conditions": [],
            "inclusion": ["a"],
            "exclusion": [],
        },
        target={"label": label, "label_name": name, "scale": scale},
        metadata={"patient_id": f"trec-2021{i}", "label": label, "category": name, "scale": scale},
    )


POOL = [pair(i, label) for i, label in enumerate([0, 0, 0, 0, 1, 1, 2, 2, 2])] + [pair(99, 0, scale="sigir")]


@pytest.mark.parametrize(
    ("per_label", "want", "error"),
    [
        (1, {"not relevant": 1, "excluded": 1, "eligible": 1}, None),  # one of each gold label
        (2, {"not relevant": 2, "excluded": 2, "eligible": 2}, None),  # excluded has exactly two: all taken
        (3, None, r"too few .* \{'excluded': 2\}"),  # the paper's code stops too (utils.py:25-26)
        (0, None, "must be >= 1"),  # nothing to sample
    ],
)
def test_balanced_sample(per_label, want, error):
    task = get_task("trec_ct")
    if error:
        with pytest.raises(ConfigError, match=error):
            balanced_sample(task, POOL, per_label, seed=42)
        return
    got = balanced_sample(task, POOL, per_label, seed=42)
    counts: dict[str, int] = {}
    for ex in got:
        counts[ex.target["label_name"]] = counts.get(ex.target["label_name"], 0) + 1
    assert counts == want
    assert all(ex.target["scale"] == "trec" for ex in got)  # SIGIR (ranking only) never drawn
    assert [ex.id for ex in got] == [ex.id for ex in POOL if ex in got]  # data order kept
    assert got == balanced_sample(task, POOL, per_label, seed=42)  # seeded
    other = {tuple(e.id for e in balanced_sample(task, POOL, 1, seed=s)) for s in range(10)}
    assert len(other) > 1  # the seed matters


def test_balanced_sample_refuses_a_value_task():
    from ehrmind.tasks.medcalc.sample_rows import make_rows

    task = get_task("medcalc")
    examples = list(task.records_to_examples(enumerate(make_rows(3, seed=1), start=1), "synthetic"))
    with pytest.raises(ConfigError, match="needs a label task"):
        balanced_sample(task, examples, 1)


# ---------------------------------------------------------------- the confidence filter
@pytest.mark.parametrize(
    ("reasoning", "text", "level"),
    [
        ("He is eligible.\nConfidence: Confident", "He is eligible.", "confident"),  # ehrmind's line
        (
            "He is eligible.\n\n# Confidence #\nNot Confident",
            "He is eligible.",
            "not confident",
        ),  # the paper's
        ("He is eligible.\n# Confidence #\n[Very Not Confident]", "He is eligible.", "very not confident"),
        ("He is eligible.\n**Confidence**: Very Confident.", "He is eligible.", "very confident"),  # markdown
        ("He is eligible.\nconfidence - neutral", "He is eligible.", "neutral"),  # any case, a dash
        ("He is eligible.", "He is eligible.", None),  # none stated
        ("Confidence: Confident that he is eligible, as age fits.", None, None),  # not a closing line
    ],
)
def test_split_confidence(reasoning, text, level):
    got_text, got_level = split_confidence(reasoning)
    assert got_level == level
    assert got_text == (text if text is not None else reasoning)


def test_confidence_levels_are_the_papers_scale_lowest_first():
    assert CONFIDENCE_LEVELS == (
        "very not confident",
        "not confident",
        "neutral",
        "confident",
        "very confident",
    )


@pytest.mark.parametrize(
    ("closing", "minimum", "reason"),
    [
        ("Confidence: Very Confident", "neutral", "kept"),
        ("Confidence: Neutral", "neutral", "kept"),  # at the threshold: kept
        ("Confidence: Not Confident", "neutral", LOW_CONFIDENCE),  # the paper drops this one
        ("Confidence: Very Not Confident", "neutral", LOW_CONFIDENCE),  # the paper's string match keeps it
        ("Confidence: Neutral", "confident", LOW_CONFIDENCE),  # a stricter threshold
        ("", "neutral", NO_CONFIDENCE),  # the teacher did not say
        ("", None, "kept"),  # no filter: nothing asked, nothing dropped
    ],
)
def test_confidence_filter(closing, minimum, reason):
    task = get_task("trec_ct")
    ex = POOL[6]  # eligible
    body = "She has the target condition and meets every criterion."
    completion = f'<think>{body}\n{closing}</think><answer>{{"prediction": "eligible"}}</answer>'
    rows, kept = judge_attempts(task, ex, [completion], mode="teacher", source="t", min_confidence=minimum)
    assert rows[0]["reason"] == reason
    if reason == "kept":
        assert kept[0].metadata["explanation"] == (body if minimum else f"{body}\n{closing}".strip())
        assert "Confidence" not in kept[0].metadata["explanation"] or minimum is None


def test_teacher_prompt_asks_for_outline_and_confidence_only_when_told():
    task = get_task("trec_ct", prefill=True)
    plain = teacher_messages(task, POOL[0])[-2]["content"]
    asked = teacher_messages(task, POOL[0], outline=True, confidence=True)[-2]["content"]
    assert "Confidence" not in plain and "Overview" not in plain
    assert "Overview" in asked and "Conclusion" in asked and "'Confidence: LEVEL'" in asked
    assert asked.rstrip().endswith('<answer>{"prediction": "not relevant"}</answer>')  # the format, last


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--self", "--model", "m", "--min-confidence", "neutral"], "instruct a teacher"),
        (
            ["--teacher-url", "http://127.0.0.1:9/v1", "--teacher-model", "t", "--min-confidence", "sure"],
            "one of",
        ),
        (
            ["--teacher-url", "http://127.0.0.1:9/v1", "--teacher-model", "t", "--data-set", "balance=true"],
            "--build-data",
        ),
        (["--teacher-url", "http://127.0.0.1:9/v1", "--teacher-model", "t", "--per-label", "5"], "too few"),
    ],
)
def test_rationales_refuses_bad_warmup_options(extra, message, tmp_path, monkeypatch):
    # no generator is built (none is needed to refuse): the checks come before any request
    import ehrmind.train.rationales as rat

    monkeypatch.setattr(
        rat, "teacher_generator", lambda **kw: (None, "self" if kw["self_mode"] else "teacher")
    )
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(ex.to_dict()) + "\n" for ex in POOL))
    args = ["rationales", "--task", "trec_ct", "--data", str(data), "--out", str(tmp_path / "o"), *extra]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output


# ---------------------------------------------------------------- end to end on the shared data (slow)
CPU = {
    "bf16": False,
    "use_cpu": True,
    "gradient_checkpointing": False,
    "max_steps": 2,
    "logging_steps": 1,
    "save_strategy": "no",
}


def confident_teacher(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict, Any]:
    """States the gold label; every third reply is not confident (dropped by the filter)."""
    user = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
    gold = re.findall(r"<answer>(.*?)</answer>", user)[-1]
    confident_teacher.calls += 1
    level = "Not Confident" if confident_teacher.calls % 3 == 0 else "Confident"
    text = f"<think>1. Overview: the note and criteria.\n2. Reasoning: they match.\n3. Conclusion: done.\nConfidence: {level}</think><answer>{gold}</answer>"
    if body["messages"][-1]["role"] == "assistant":  # the prefill opened <think> already
        text = text.removeprefix("<think>")
    return 200, {}, completion(*[text] * body.get("n", 1))


@pytest.mark.slow
def test_paper_recipe_end_to_end_on_cpu(tmp_path, monkeypatch, tiny_model, mimic_htn_data):
    """raw shared TREC data → warm-up set (one command, scripted teacher) → `ehrmind sft` with the llama
    recipe unchanged but for model and CPU keys → `ehrmind rl` → `ehrmind eval` on the held-out split →
    `ehrmind matrix` of the untrained and the trained model over all three families, paired."""
    source = shared_file(SHARED_DATA / "trec_ct" / "official" / "topics2021.xml").parents[1]
    monkeypatch.chdir(tmp_path)  # the recipe's relative paths (data/trec_ct, runs/trec_ct) land here
    confident_teacher.calls = 0
    with Scripted(confident_teacher) as srv:
        args = ["rationales", "--task", "trec_ct", "--task-option", "prefill=true", "--data", str(source)]
        args += ["--build-data", "data/trec_ct", "--data-set", "balance=true", "--per-label", "3"]
        args += ["--min-confidence", "neutral", "--outline", "--seed", "42", "--out", "runs/trec_ct/warmup"]
        args += ["--teacher-url", srv.url, "--teacher-model", "teacher"]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output[-3000:]
        assert len(srv.requests) == 9  # 3 per label
        again = runner.invoke(app, args)  # the same command again: same snapshot, same draw, nothing re-asked
        assert again.exit_code == 0, again.output[-3000:]
        assert len(srv.requests) == 9
    summary = json.loads(Path("runs/trec_ct/warmup/summary.json").read_text())
    assert summary["dropped_by_reason"] == {LOW_CONFIDENCE: 3} and summary["kept"] == 6
    assert {k: v["attempts"] for k, v in summary["by_label"].items()} == {n: 3 for n in LABELS.values()}
    train_ids = {json.loads(x)["id"] for x in Path(RL_SET).read_text().splitlines()}
    kept = get_task("trec_ct").load(WARMUP_SET)
    assert {ex.id for ex in kept} <= train_ids  # never a validation or test patient
    assert all("Confidence" not in ex.metadata["explanation"] for ex in kept)

    recipe = RECIPES / "llama-3.2-3b-instruct.yaml"
    for stage, model, trl in (
        ("sft", str(tiny_model), {"max_length": 2048, "gradient_accumulation_steps": 1}),
        (
            "rl",
            "runs/sft",
            {
                "use_vllm": False,
                "per_device_train_batch_size": 2,
                "num_generations": 2,
                "steps_per_generation": 1,
                "gradient_accumulation_steps": 1,
                "max_completion_length": 8,
            },
        ),  # fmt: skip
    ):
        # the Llama recipe as is, but for the model, the output folder and the CPU / size keys
        body = {
            "include": str(recipe),
            stage: {"model": model, "output_dir": f"runs/{stage}", "trl": {**CPU, **trl}},
        }
        cpu_recipe = Path(f"cpu-{stage}.yaml")
        cpu_recipe.write_text(yaml.safe_dump(body))
        result = runner.invoke(app, [stage, "--recipe", str(cpu_recipe)])
        assert result.exit_code == 0, f"{stage}: {result.output[-3000:]}"
        history = json.loads(Path(f"runs/{stage}/log_history.json").read_text())
        assert max(h.get("step", 0) for h in history) == 2
        record = json.loads(Path(f"runs/{stage}/ehrmind_run.json").read_text())
        assert record["recipe"]["data"] == (WARMUP_SET if stage == "sft" else RL_SET)  # the recipe's own data
        assert record["recipe"]["max_prompt_tokens"] == (2048 if stage == "sft" else 1500)
        assert record["data_counts"]["kept"] >= 2

    args = ["eval", "--task", "trec_ct", "--data", "data/trec_ct/test.jsonl", "--model", "runs/rl"]
    args += ["--out", "runs/eval", "--limit", "4", "--max-new-tokens", "8"]
    args += ["--task-option", "prompt_token_budget=1024"]  # the tiny model's context is 2048 tokens
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output[-3000:]
    metrics = json.loads(Path("runs/eval/metrics.json").read_text())
    assert metrics["n"] == 4

    # the paper's cross-task claim, measurable: every family's main metric, paired against the untrained model
    from ehrmind.io import atomic_write_jsonl
    from ehrmind.tasks.medcalc.sample_rows import make_rows

    atomic_write_jsonl(Path("medcalc.jsonl"), make_rows(4, seed=3))
    args = ["matrix", "--models", str(tiny_model), "runs/rl", "--tasks", "medcalc", "trec_ct", "ehrshot"]
    args += [
        "--data",
        "medcalc=medcalc.jsonl",
        "trec_ct=data/trec_ct/test.jsonl",
        f"ehrshot={mimic_htn_data}",
    ]
    args += ["--baseline", str(tiny_model), "--out", "runs/matrix", "--limit", "4", "--max-new-tokens", "8"]
    args += ["--task-option", "trec_ct:prompt_token_budget=1024"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output[-3000:]
    matrix = json.loads(Path("runs/matrix/matrix.json").read_text())
    cells = {(c["model"], c["task"]): c for c in matrix["cells"]}
    assert set(cells) == {(m, t) for m in (tiny_model.name, "rl") for t in ("medcalc", "trec_ct", "ehrshot")}
    for task in ("trec_ct", "ehrshot"):  # balanced accuracy with its interval, for both models
        assert all(
            cells[(m, task)]["main_metric"]["name"] == "balanced accuracy" for m in (tiny_model.name, "rl")
        )
    for task in ("medcalc", "trec_ct", "ehrshot"):
        paired = cells[("rl", task)]["vs_baseline"]["lenient"]
        assert paired["n"] == 4 and len(paired["ci95"]) == 2 and "mcnemar_p" in paired
    assert cells[("rl", "trec_ct")]["prompt_overridden"] == ["prompt_token_budget"]  # said, not hidden
    report = Path("runs/matrix/matrix.md").read_text()
    assert (
        f"## Against the baseline `{tiny_model.name}`" in report
        and "**Prompt differs from training**" in report
    )


@pytest.mark.slow
def test_warmup_command_with_self_sampling(tmp_path, tiny_model):
    """The same one command without a teacher: rejection sampling from the model being trained."""
    source = shared_file(SHARED_DATA / "trec_ct" / "official" / "topics2021.xml").parents[1]
    args = ["rationales", "--task", "trec_ct", "--task-option", "prefill=true", "--data", str(source)]
    args += ["--build-data", str(tmp_path / "data"), "--data-set", "balance=true", "--per-label", "1"]
    args += ["--task-option", "prompt_token_budget=1024"]  # the tiny model's context is 2048 tokens
    args += ["--self", "--model", str(tiny_model), "--samples", "2", "--temperature", "1.0"]
    args += ["--max-new-tokens", "8", "--seed", "42", "--out", str(tmp_path / "warmup")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output[-3000:]
    summary = json.loads((tmp_path / "warmup" / "summary.json").read_text())
    assert summary["mode"] == "self" and summary["attempts"] == 6  # 1 pair per label × 2 samples
    assert {k: v["attempts"] for k, v in summary["by_label"].items()} == {n: 2 for n in LABELS.values()}
    sent = {json.loads(x)["id"] for x in (tmp_path / "warmup" / "attempts.jsonl").read_text().splitlines()}
    train = {json.loads(x)["id"] for x in (tmp_path / "data" / "train.jsonl").read_text().splitlines()}
    assert sent <= train  # drawn from the training patients only
