"""`ehrmind eval` end to end on a tiny local model: the three files, resume after a kill, chat templates."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ehrmind import get_task
from ehrmind.cli import app
from ehrmind.generate.chat import render_prompt

runner = CliRunner()


def _eval_args(data: Path, model: Path, out: Path, *extra: str) -> list[str]:
    return [
        "eval",
        "--task",
        "medcalc",
        "--data",
        str(data),
        "--model",
        str(model),
        "--out",
        str(out),
        "--max-new-tokens",
        "16",
        "--batch-size",
        "2",
        *extra,
    ]


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_eval_writes_three_files(tmp_path, synthetic_csv, tiny_model):
    out = tmp_path / "eval"
    result = runner.invoke(app, _eval_args(synthetic_csv, tiny_model, out, "--limit", "6"))
    assert result.exit_code == 0, result.output
    preds = _lines(out / "predictions.jsonl")
    assert [(p["id"], p["sample"]) for p in preds] == [(str(i), 0) for i in range(1, 7)]
    assert set(preds[0]) >= {"id", "sample", "completion", "parsed", "format_ok", "correct", "reward"}
    assert all(isinstance(p["official_correct"], bool) for p in preds)  # MedCalc-Bench's own extraction
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 6 and set(metrics) >= {"accuracy", "ci95", "format_error_rate", "by_category"}
    assert {"official_accuracy", "official_accuracy_ci95"} <= set(metrics)
    assert sum(b["n"] for b in metrics["by_category"].values()) == 6
    assert metrics["run"]["model"] == str(tiny_model) and metrics["run"]["data_sha256"]
    report = (out / "report.md").read_text()
    assert "## By category" in report and (out / "accuracy_by_category.png").stat().st_size > 1000
    # every stored verdict is what the verifier gives for that completion
    task = get_task("medcalc")
    examples = {ex.id: ex for ex in task.load(synthetic_csv)}
    for p in preds:
        score = task.verify(examples[p["id"]], p["completion"])
        assert (score.format_ok, score.correct, score.reward) == (p["format_ok"], p["correct"], p["reward"])


def test_eval_several_samples(tmp_path, synthetic_csv, tiny_model):
    out = tmp_path / "eval"
    args = _eval_args(
        synthetic_csv, tiny_model, out, "--limit", "3", "--samples", "2", "--temperature", "1.0"
    )
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert [(p["id"], p["sample"]) for p in _lines(out / "predictions.jsonl")] == [
        (i, s) for i in ("1", "2", "3") for s in (0, 1)
    ]
    # greedy decoding with several samples is refused before any model loads
    bad = runner.invoke(app, _eval_args(synthetic_csv, tiny_model, tmp_path / "x", "--samples", "2"))
    assert bad.exit_code == 2 and "temperature" in bad.output


def test_eval_refuses_to_mix_runs(tmp_path, synthetic_csv, tiny_model):
    out = tmp_path / "eval"
    assert runner.invoke(app, _eval_args(synthetic_csv, tiny_model, out, "--limit", "2")).exit_code == 0
    result = runner.invoke(
        app, _eval_args(synthetic_csv, tiny_model, out, "--limit", "2", "--mode", "direct")
    )
    assert result.exit_code == 2 and "prompt_mode" in result.output


@pytest.mark.slow  # a real process killed mid-run (in-process resume: test_data_errors, test_backends)
def test_eval_killed_halfway_resumes(tmp_path, synthetic_csv, tiny_model):
    """Kill a real `ehrmind eval` process mid-run, tear its last line, rerun: one line per row and sample."""
    out = tmp_path / "eval"
    cmd = [
        sys.executable,
        "-m",
        "ehrmind",
        *_eval_args(synthetic_csv, tiny_model, out, "--max-new-tokens", "48", "--batch-size", "1"),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    preds = out / "predictions.jsonl"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if preds.exists() and len(preds.read_text().splitlines()) >= 5:
                break
            if proc.poll() is not None:
                pytest.fail("eval finished before it could be killed; make the run longer")
            time.sleep(0.05)
        else:
            pytest.fail("eval produced no predictions in time")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    n_before = len(preds.read_text().splitlines())
    assert 5 <= n_before < 20
    with open(preds, "a") as fh:
        fh.write('{"id": "99", "completion": "torn')  # a write cut off by the kill
    assert not (out / "metrics.json").exists()

    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    rows = _lines(preds)
    assert [(r["id"], r["sample"]) for r in rows] == [(str(i), 0) for i in range(1, 21)]
    assert json.loads((out / "metrics.json").read_text())["n"] == 20
    assert "resuming" in result.stderr + result.stdout


# ------------------------------------------------------------------ chat templates of other backbones

LLAMA3_LIKE = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] }}{% if not (loop.last and m['role'] == 'assistant') %}<|eot_id|>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
NO_SYSTEM = (  # Gemma-style: the template itself refuses a system turn
    "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def test_prompt_uses_the_models_own_template(tokenizer):
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    own = render_prompt(tokenizer, messages)
    assert own.endswith("<|assistant|>\n") and "U" in own
    tokenizer_llama = _with_template(tokenizer, LLAMA3_LIKE)
    text = render_prompt(tokenizer_llama, messages)
    assert text.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")


def test_prefill_is_continued_not_closed(tokenizer):
    task = get_task("medcalc", prefill=True)
    messages = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "U"},
        {"role": "assistant", "content": task.contract.prefill},
    ]
    for tok in (tokenizer, _with_template(tokenizer, LLAMA3_LIKE)):
        assert render_prompt(tok, messages).endswith("Let me solve this step by step.\n<think>")


def test_template_without_system_role_gets_it_merged(tokenizer):
    tok = _with_template(tokenizer, NO_SYSTEM)
    text = render_prompt(tok, [{"role": "system", "content": "RULES"}, {"role": "user", "content": "NOTE"}])
    assert text.startswith("<start_of_turn>user\nRULES\n\nNOTE") and text.endswith("<start_of_turn>model\n")


def _with_template(tokenizer, template: str):
    import copy

    tok = copy.deepcopy(tokenizer)
    tok.chat_template = template
    return tok


def test_prompt_longer_than_the_context_is_refused(tmp_path, synthetic_csv, tiny_model):
    # the tiny model holds 2048 positions: a 2000-token answer budget leaves no room for the prompt
    args = [
        *_eval_args(synthetic_csv, tiny_model, tmp_path / "e", "--limit", "1"),
        "--max-new-tokens",
        "2000",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "exceeds the model's context of 2048 tokens" in result.output
