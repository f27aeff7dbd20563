"""Issue #15, item 5: ehrmind tasks run inside inspect_ai, scored by `Task.verify` — the same verdicts as
`ehrmind score` on the same completions (no second scoring path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ehrmind import get_task
from ehrmind.cli import app
from ehrmind.tasks.base import gold_completion

ADAPTER = Path(__file__).resolve().parents[1] / "src" / "ehrmind" / "integrations" / "inspect_tasks.py"


def _ehrmind_scores(tmp_path: Path, data: Path, completions: dict[str, str]) -> dict[str, bool | None]:
    preds = tmp_path / "completions.jsonl"
    preds.write_text("".join(json.dumps({"id": i, "completion": c}) + "\n" for i, c in completions.items()))
    out = tmp_path / "scored"
    args = ["score", "--task", "medcalc", "--data", str(data), "--predictions", str(preds), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return {
        r["id"]: r["correct"] for r in map(json.loads, (out / "predictions.jsonl").read_text().splitlines())
    }


def test_inspect_eval_scores_equal_ehrmind_score(tmp_path, synthetic_csv):
    pytest.importorskip("inspect_ai", reason="inspect-ai is a dev dependency: make install")
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import ModelOutput, ModelUsage, get_model

    from ehrmind.integrations.inspect_tasks import ehrmind

    task = get_task("medcalc")
    examples = task.load(synthetic_csv)[:5]
    texts = [
        gold_completion(task, examples[0], "right"),
        gold_completion(task, examples[1], "right"),
        '<think>w</think>\n<answer>{"answer": -3}</answer>',  # wrong value
        "I think it is about 40.",  # no output contract
        '{"answer": "n/a"}',
    ]
    outputs = [ModelOutput.from_content("mockllm/model", t) for t in texts]
    for o in outputs:  # with usage given, mockllm does not count tokens with tiktoken (a download)
        o.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
    model = get_model("mockllm/model", custom_outputs=outputs)
    (log,) = inspect_eval(
        ehrmind(task="medcalc", data=str(synthetic_csv), limit=5),
        model=model,
        log_dir=str(tmp_path / "logs"),
        display="none",
        max_samples=1,
    )
    assert log.status == "success" and len(log.samples) == 5
    completions = {str(s.id): s.output.completion for s in log.samples}
    assert sorted(completions.values()) == sorted(texts)  # every scripted completion was scored once
    inspect_verdicts = {str(s.id): next(iter(s.scores.values())).value for s in log.samples}
    ehrmind_verdicts = _ehrmind_scores(tmp_path, synthetic_csv, completions)
    assert {i: v == "C" for i, v in inspect_verdicts.items()} == ehrmind_verdicts
    assert sum(ehrmind_verdicts.values()) == 2
    metric = log.results.scores[0].metrics["accuracy"].value
    assert metric == pytest.approx(2 / 5)


@pytest.mark.slow  # inspect's CLI start-up and a served model: about 40 s
def test_inspect_eval_command_line_against_ehrmind_serve(tmp_path, synthetic_csv, tiny_model):
    """`inspect eval …inspect_tasks.py@ehrmind -T task=medcalc -T data=…` as a user runs it, the model the
    tiny one behind `ehrmind serve` on loopback (inspect's OpenAI-compatible provider)."""
    pytest.importorskip("inspect_ai", reason="inspect-ai is a dev dependency: make install")
    import threading

    from inspect_ai.log import list_eval_logs, read_eval_log

    from ehrmind.generate.hf import GenerationSettings, HFGenerator
    from ehrmind.generate.server import make_server

    server = make_server(
        HFGenerator(str(tiny_model), GenerationSettings(max_new_tokens=8)), "127.0.0.1", 0, "tiny"
    )
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    env = {
        **os.environ,
        "INSPECT_LOG_DIR": str(tmp_path / "logs"),
        "EHRMIND_BASE_URL": f"http://127.0.0.1:{server.server_address[1]}/v1",
        "EHRMIND_API_KEY": "unused",
    }
    cmd = [str(Path(sys.executable).parent / "inspect"), "eval", f"{ADAPTER}@ehrmind", "-T", "task=medcalc"]
    cmd += [
        "-T",
        f"data={synthetic_csv}",
        "--model",
        "openai-api/ehrmind/tiny",
        "--limit",
        "3",
        "--max-tokens",
        "8",
    ]
    try:
        result = subprocess.run(
            [*cmd, "--display", "none"], capture_output=True, text=True, env=env, cwd=tmp_path
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.stderr[-2000:]
    log = read_eval_log(list_eval_logs(str(tmp_path / "logs"))[0])
    assert log.status == "success" and len(log.samples) == 3
    task = get_task("medcalc")
    by_id = {ex.id: ex for ex in task.load(synthetic_csv)}
    for s in log.samples:  # the served model's completions get the verdicts ehrmind gives them
        ours = task.verify(by_id[str(s.id)], s.output.completion)
        score = next(iter(s.scores.values()))
        assert score.value == ("C" if ours.correct else "I") and score.metadata["format_ok"] is ours.format_ok
