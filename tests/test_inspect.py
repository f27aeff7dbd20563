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
from ehrmind.errors import ConfigError
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


# ---------------------------------------------------------------------- issue #31: hostile and careless -T
TREC_CT = Path(__file__).resolve().parents[2] / "shared" / "data" / "trec_ct"


@pytest.fixture(scope="module")
def trec_test_split(tmp_path_factory) -> Path:
    """The standard trec_ct test split, as `ehrmind data` writes it from the shared data: TREC pairs and
    every SIGIR pair (ranking only, no eligibility answer)."""
    from conftest import shared_file

    source = shared_file(TREC_CT / "official" / "qrels2021.txt").parent.parent
    out = tmp_path_factory.mktemp("trec_ct") / "data"
    args = ["data", "--task", "trec_ct", "--source", str(source), "--out", str(out), "--seed", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return out / "test.jsonl"


def test_inspect_runs_the_trec_ct_test_split_without_its_sigir_pairs(tmp_path, trec_test_split):
    """The adapter crashed on the standard test split (gold_value of a SIGIR pair raises); SIGIR pairs are
    left out — inspect would count their "no answer" verdicts as wrong — and the TREC pairs are scored."""
    pytest.importorskip("inspect_ai", reason="inspect-ai is a dev dependency: make install")
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import ModelOutput, ModelUsage, get_model

    from ehrmind.integrations.inspect_tasks import ehrmind

    task = get_task("trec_ct")
    rows = task.load(trec_test_split)
    cohorts = {ex.metadata["cohort"] for ex in rows}
    assert "sigir" in cohorts and cohorts - {"sigir"}  # the split holds both kinds
    inspect_task = ehrmind(task="trec_ct", data=str(trec_test_split))  # the whole split: SIGIR pairs last
    trec = [ex for ex in rows if ex.metadata["cohort"] != "sigir"]
    assert [s.id for s in inspect_task.dataset] == [ex.id for ex in trec]
    kept = trec[:3]
    outputs = [ModelOutput.from_content("mockllm/model", gold_completion(task, ex)) for ex in kept]
    for o in outputs:
        o.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
    model = get_model("mockllm/model", custom_outputs=outputs)
    (log,) = inspect_eval(
        inspect_task, model=model, log_dir=str(tmp_path / "logs"), display="none", max_samples=1, limit=3
    )
    assert log.status == "success" and len(log.samples) == 3
    assert log.results.scores[0].metrics["accuracy"].value == pytest.approx(1.0)


def test_inspect_refuses_data_with_nothing_to_score(tmp_path, trec_test_split):
    pytest.importorskip("inspect_ai", reason="inspect-ai is a dev dependency: make install")
    from ehrmind.integrations.inspect_tasks import ehrmind

    sigir = tmp_path / "sigir.jsonl"
    sigir.write_text(
        "".join(line + "\n" for line in trec_test_split.read_text().splitlines() if "sigir" in line)
    )
    with pytest.raises(
        ConfigError, match=r"^ehrmind -T data: .*sigir\.jsonl: none of its \d+ examples can be scored"
    ):
        ehrmind(task="trec_ct", data=str(sigir))


BAD_ARGUMENTS = [
    # (the -T arguments, the key the one-line error names, what it says)
    ({"task": "nosuch"}, "task", "unknown task 'nosuch'; known tasks: "),
    ({"task": ["medcalc"]}, "task", "Input should be a valid string"),  # -T task=[medcalc]
    ({"task": None}, "task", r"required \(give -T task=…\)"),
    ({"data": "/nonexistent/test.csv"}, "data", "/nonexistent/test.csv: file not found"),
    ({"data": "test.csv"}, "data", "test.csv: file not found .*give an absolute path"),
    ({"data": 5}, "data", r"Input should be a valid string \(got 5\)"),  # -T data=5
    (
        {"mode": "bogus"},
        "mode",
        "task 'medcalc' option mode: Input should be 'reasoning', 'direct' or 'one-shot'",
    ),
    ({"mode": 3}, "mode", "Input should be a valid string"),
    ({"split": 5}, "split", "Input should be a valid string"),
    (
        {"limit": -35},
        "limit",
        r"Input should be greater than or equal to 1 \(got -35\)",
    ),  # silently evaluated 5 of 40
    ({"limit": 0}, "limit", "Input should be greater than or equal to 1"),
    ({"limit": "abc"}, "limit", "Input should be a valid integer"),  # int("abc") traceback
    ({"limit": 2.5}, "limit", "Input should be a valid integer"),  # silently 2
    ({"limit": True}, "limit", "Input should be a valid integer"),  # silently 1
    ({"lmit": 3}, "lmit", r"not an argument of ehrmind \(known: task, data, mode, split, limit\)"),  # a typo
]


@pytest.mark.parametrize(("given", "key", "says"), BAD_ARGUMENTS)
def test_a_bad_argument_is_one_line_naming_its_key(synthetic_csv, given, key, says):
    """Each bad `-T` is a ConfigError (a PrerequisiteError too, which `inspect eval` prints as its message
    alone) whose one line names the key, never a Python traceback or a silent default."""
    pytest.importorskip("inspect_ai", reason="inspect-ai is a dev dependency: make install")
    from inspect_ai._util.error import PrerequisiteError

    from ehrmind.integrations.inspect_tasks import ehrmind

    args = {"task": "medcalc", "data": str(synthetic_csv), **given}
    with pytest.raises(ConfigError, match=rf"^ehrmind -T {key}: {says}") as caught:
        ehrmind(**args)
    assert isinstance(caught.value, PrerequisiteError) and "\n" not in caught.value.message


@pytest.mark.slow  # a child process (about 2-6 s)
def test_inspect_eval_command_line_prints_a_bad_argument_in_one_line(tmp_path, synthetic_csv):
    """`inspect eval … -T limit=-35` as a user types it: the one line, exit status 1, no traceback (about
    4 s)."""
    pytest.importorskip("inspect_ai", reason="inspect-ai is a dev dependency: make install")
    cmd = [str(Path(sys.executable).parent / "inspect"), "eval", f"{ADAPTER}@ehrmind", "-T", "task=medcalc"]
    cmd += [
        "-T",
        f"data={synthetic_csv}",
        "-T",
        "limit=-35",
        "--model",
        "mockllm/model",
        "--display",
        "plain",
    ]
    env = {**os.environ, "INSPECT_LOG_DIR": str(tmp_path / "logs")}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in out, out[-3000:]
    assert [line for line in out.splitlines() if line.strip()] == [
        "ehrmind -T limit: Input should be greater than or equal to 1 (got -35)"
    ]
