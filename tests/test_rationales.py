"""`ehrmind rationales`: keep only verified rationales, count what was dropped and why, resume without
duplicates, and hand SFT-ready rows to `sft_rows`; teacher mode over HTTP (scripted and tiny-model servers),
self mode on the tiny model."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ehrmind import get_task
from ehrmind.cli import app
from ehrmind.errors import ConfigError
from ehrmind.generate.hf import GenerationSettings
from ehrmind.generate.openai_compat import OpenAICompatGenerator
from ehrmind.io import read_jsonl
from ehrmind.tasks.trec_ct import LABELS, SIGIR_LABELS
from ehrmind.train.rationales import (
    ATTEMPTS,
    RATIONALES,
    SUMMARY,
    cites_answer,
    run_rationales,
    teacher_generator,
    teacher_messages,
)
from ehrmind.types import Example
from test_openai_compat import Scripted, completion, serving

runner = CliRunner()

GOOD = (
    "The patient has stage IV non-small cell lung cancer with an EGFR exon 19 deletion, the condition the "
    "trial targets. She is 62, meets the age criterion, and has had no prior EGFR inhibitor, so no exclusion "
    "criterion applies."
)


def pair(pid: str, trial: str, label: int, scale: str = "trec") -> Example:
    names = LABELS if scale == "trec" else SIGIR_LABELS
    return Example(
        id=f"{pid}::{trial}",
        task="trec_ct",
        input={
            "patient": f"Patient {pid}: a 62-year-old woman with stage IV EGFR-mutant lung adenocarcinoma.",
            "trial_title": f"Trial {trial}",
            "conditions": ["Non-small Cell Lung Cancer"],
            "inclusion": ["Age 18 years or older", "Stage IIIB or IV NSCLC"],
            "exclusion": ["Prior treatment with EGFR inhibitors"],
        },
        target={"label": label, "label_name": names[label], "scale": scale},
        metadata={
            "patient_id": pid,
            "trial_id": trial,
            "label": label,
            "category": names[label],
            "cohort": "trec_2021" if scale == "trec" else "sigir",
            "scale": scale,
        },
    )


EXAMPLES = [
    pair("trec-20211", "A", 2),  # the teacher reasons well: kept
    pair("trec-20211", "B", 1),  # the teacher contradicts the gold label: dropped, wrong answer
    pair("trec-20212", "C", 0),  # malformed reply: dropped, bad format
    pair("trec-20212", "D", 2),  # right label, but the rationale leans on the given answer: dropped
    pair("sigir-20151", "E", 2, scale="sigir"),  # ranking only: never sent
]


@pytest.fixture
def data(tmp_path) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(ex.to_dict()) + "\n" for ex in EXAMPLES))
    return path


def gold_in(body: dict[str, Any]) -> str:
    """The answer JSON the teacher note asks for (the last <answer> block of the last user turn)."""
    user = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
    return re.findall(r"<answer>(.*?)</answer>", user)[-1]


def scripted_teacher(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict, Any]:
    user = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
    trial = re.search(r"Trial (\w)", user).group(1)
    text = {
        "A": f"<think>{GOOD}</think>\n<answer>{gold_in(body)}</answer>",
        "B": '<think>She meets every criterion.</think><answer>{"prediction": "eligible"}</answer>',
        "C": "She looks eligible to me.",
        "D": f"<think>The given answer is eligible, so she is.</think><answer>{gold_in(body)}</answer>",
    }[trial]
    return 200, {}, completion(*[text] * body.get("n", 1))


def echo_gold(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict, Any]:
    """A teacher that always states the gold answer with a plain rationale (works for any task)."""
    texts = [
        f"<think>Step {i}: from the note.</think><answer>{gold_in(body)}</answer>" for i in range(body["n"])
    ]
    return 200, {}, completion(*texts)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def teacher(url: str, **kw: Any) -> OpenAICompatGenerator:
    gen = OpenAICompatGenerator(url, "teacher-x", settings=GenerationSettings(max_new_tokens=64), **kw)
    gen._sleep = lambda s: None
    return gen


# ---------------------------------------------------------------- teacher mode, scripted endpoint


def test_teacher_prompt_gives_the_label_and_asks_for_reasoning_from_the_case():
    task = get_task("trec_ct")
    msgs = teacher_messages(task, EXAMPLES[1])
    plain = task.render(EXAMPLES[1])
    assert msgs[0] == plain[0]  # the system prompt is the task's own
    assert msgs[1]["content"].startswith(plain[1]["content"])
    note = msgs[1]["content"][len(plain[1]["content"]) :]
    assert 'the correct answer to this case is "excluded"' in note
    assert "inclusion and exclusion criteria" in note and "never refer to a given" in note
    assert note.rstrip().endswith('<answer>{"prediction": "excluded"}</answer>')
    # with a prefill, the note goes into the user turn and the prefill stays last
    pre = get_task("trec_ct", prefill=True)
    assert teacher_messages(pre, EXAMPLES[0])[-1] == pre.render(EXAMPLES[0])[-1]


def test_teacher_cli_keeps_only_verified(data, tmp_path, monkeypatch, tiny_model):
    monkeypatch.setenv("TEACHER_KEY", "sk-test-456")
    out = tmp_path / "rat"
    with Scripted(scripted_teacher) as srv:
        args = ["rationales", "--task", "trec_ct", "--data", str(data), "--out", str(out)]
        args += ["--teacher-url", srv.url, "--teacher-model", "teacher-x", "--api-key-env", "TEACHER_KEY"]
        result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "kept 1 of 4 attempts" in result.output and "sk-test" not in result.output
    # the SIGIR pair (ranking only) is never sent; every request carries the key and the gold label
    assert len(srv.requests) == 4
    assert all(h["Authorization"] == "Bearer sk-test-456" for _, h in srv.requests)
    assert [json.loads(gold_in(b))["prediction"] for b, _ in srv.requests] == [
        "eligible",
        "excluded",
        "not relevant",
        "eligible",
    ]

    attempts = lines(out / ATTEMPTS)
    assert [(a["id"], a["sample"], a["kept"], a["reason"]) for a in attempts] == [
        ("trec-20211::A", 0, True, "kept"),
        ("trec-20211::B", 0, False, "wrong answer"),
        ("trec-20212::C", 0, False, "bad format"),
        ("trec-20212::D", 0, False, "cites the given answer"),
    ]
    summary = json.loads((out / SUMMARY).read_text())
    assert (summary["n_examples"], summary["n_unscorable"], summary["n_scorable"]) == (5, 1, 4)
    assert (summary["attempts"], summary["kept"], summary["dropped"]) == (4, 1, 3)
    assert summary["dropped_by_reason"] == {"bad format": 1, "wrong answer": 1, "cites the given answer": 1}
    assert summary["by_label"]["eligible"]["attempts"] == 2 and summary["by_label"]["eligible"]["kept"] == 1
    assert summary["by_label"]["excluded"]["dropped_by_reason"] == {"wrong answer": 1}
    assert summary["source"] == "teacher-x" and summary["mode"] == "teacher"

    # SFT-ready: loads as trec_ct data, and sft_rows puts the rationale inside <think>
    from transformers import AutoTokenizer

    from ehrmind.train.data import sft_rows

    task = get_task("trec_ct")
    kept = task.load(out / RATIONALES)
    assert [ex.id for ex in kept] == ["trec-20211::A"]
    ex = kept[0]
    assert ex.input == EXAMPLES[0].input and ex.target == EXAMPLES[0].target
    assert ex.metadata["explanation"] == GOOD and ex.metadata["rationale_source"] == "teacher-x"
    assert ex.metadata["source_id"] == "trec-20211::A" and ex.metadata["rationale_mode"] == "teacher"
    rows, counts = sft_rows(task, kept, AutoTokenizer.from_pretrained(tiny_model))
    assert counts["kept"] == 1
    assert rows[0]["completion"] == f'<think>{GOOD}</think>\n<answer>{{"prediction": "eligible"}}</answer>'
    assert "correct answer" not in rows[0]["prompt"]  # the student never sees the teacher note


def test_resume_skips_done_and_drops_half_written(data, tmp_path):
    task = get_task("trec_ct")
    examples = task.load(data)
    out = tmp_path / "rat"
    with Scripted(scripted_teacher) as srv:
        first = run_rationales(task, examples, teacher(srv.url), out, batch_size=2, progress=False)
        assert len(srv.requests) == 4
        # the same command again: nothing is asked, nothing duplicated
        again = run_rationales(task, examples, teacher(srv.url), out, batch_size=2, progress=False)
        assert len(srv.requests) == 4 and again["attempts"] == first["attempts"] == 4
        # a kill after the rationales of a batch were written but before its attempts, mid-line
        attempts = (out / ATTEMPTS).read_text().splitlines(keepends=True)
        (out / ATTEMPTS).write_text("".join(a for a in attempts if "::A" not in a) + '{"id": "trec-2')
        resumed = run_rationales(task, examples, teacher(srv.url), out, batch_size=2, progress=False)
    assert len(srv.requests) == 5 and "Trial A" in srv.requests[-1][0]["messages"][1]["content"]
    assert resumed["attempts"] == 4 and resumed["kept"] == 1
    assert [a["id"] for a in lines(out / ATTEMPTS)] == [ex.id for ex in examples[:4]]
    assert [r["id"] for r in lines(out / RATIONALES)] == ["trec-20211::A"]
    assert resumed["dropped_by_reason"] == first["dropped_by_reason"]
    # other settings into the same folder are refused
    with pytest.raises(ConfigError, match="samples"):
        run_rationales(task, examples, teacher("http://127.0.0.1:9/v1"), out, samples=2, progress=False)


@pytest.mark.parametrize(
    ("keep", "kept_ids", "reasons"),
    [
        # one per example: the second distinct rationale is over the limit
        (1, ["trec-20211::A"], {"duplicate": 1, "over keep limit": 1, "wrong answer": 1}),
        # all distinct verified rationales: the first keeps the example id, the next gets ID#SAMPLE
        (0, ["trec-20211::A", "trec-20211::A#2"], {"duplicate": 1, "wrong answer": 1}),
    ],
)
def test_samples_and_keep_limit(tmp_path, keep, kept_ids, reasons):
    replies = [
        f'<think>{GOOD}</think><answer>{{"prediction": "eligible"}}</answer>',
        f'<think>{GOOD.upper()}  </think><answer>{{"prediction": "eligible"}}</answer>',  # same text
        '<think>Another line of reasoning.</think><answer>{"prediction": "eligible"}</answer>',
        '<think>Hmm.</think><answer>{"prediction": "excluded"}</answer>',
    ]
    task = get_task("trec_ct")
    with Scripted(lambda b, h: (200, {}, completion(*replies))) as srv:
        gen = teacher(srv.url)
        gen.settings = GenerationSettings(max_new_tokens=64, temperature=0.8)
        s = run_rationales(
            task, EXAMPLES[:1], gen, tmp_path, samples=4, keep_per_example=keep, progress=False
        )
    assert len(srv.requests) == 1 and srv.requests[0][0]["n"] == 4
    assert [r["id"] for r in lines(tmp_path / RATIONALES)] == kept_ids
    assert s["dropped_by_reason"] == reasons and s["attempts"] == 4 and s["examples_with_rationale"] == 1


def test_retry_then_success_and_400_stops_the_cli(data, tmp_path):
    calls: list[int] = []

    def flaky(body, headers):
        calls.append(1)
        return (503, {"Retry-After": "0"}, b"busy") if len(calls) == 1 else echo_gold(body, headers)

    task = get_task("trec_ct")
    with Scripted(flaky) as srv:
        s = run_rationales(task, task.load(data), teacher(srv.url), tmp_path / "a", progress=False)
    assert len(srv.requests) == 5 and s["kept"] == 4  # one retry, then the four scorable pairs
    with Scripted(lambda b, h: (400, {}, {"error": {"message": "unknown model 'teacher-x'"}})) as srv:
        args = ["rationales", "--task", "trec_ct", "--data", str(data), "--out", str(tmp_path / "b")]
        result = runner.invoke(app, [*args, "--teacher-url", srv.url, "--teacher-model", "teacher-x"])
    assert result.exit_code == 2 and len(srv.requests) == 1
    assert "HTTP 400" in result.output and "unknown model 'teacher-x'" in result.output


def test_medcalc_teacher(synthetic_csv, tmp_path):
    task = get_task("medcalc")
    examples = task.load(synthetic_csv)[:3]
    with Scripted(echo_gold) as srv:
        s = run_rationales(task, examples, teacher(srv.url), tmp_path, progress=False)
    assert s["kept"] == 3 and "by_label" not in s and sum(b["kept"] for b in s["by_category"].values()) == 3
    kept = task.load(tmp_path / RATIONALES)
    assert all(ex.metadata["explanation"] == "Step 0: from the note." for ex in kept)
    assert all(
        ex.metadata["original_explanation"] == e.metadata["explanation"]
        for ex, e in zip(kept, examples, strict=True)
    )


@pytest.mark.parametrize(
    ("text", "cites"),
    [
        ("The given answer is eligible.", True),
        ("Per the reference label, excluded.", True),
        ("I was told the patient is eligible.", True),
        ("Matches the answer key.", True),
        ("The patient was given cisplatin; the trial excludes prior platinum.", False),
        ("Her expected survival exceeds 3 months, as required.", False),
    ],
)
def test_cites_answer(text, cites):
    assert cites_answer(text) is cites


@pytest.mark.parametrize(
    ("kw", "problem"),
    [
        ({"teacher_url": "http://127.0.0.1:1/v1"}, "go together"),
        ({"model": "m"}, "add --self"),
        ({}, "say where"),
        ({"teacher_url": "http://x/v1", "teacher_model": "t", "model": "m", "self_mode": True}, "not both"),
        ({"teacher_url": "http://x/v1", "teacher_model": "t", "api_key_env": "EHRMIND_UNSET_VAR"}, "not set"),
        ({"model": "m", "self_mode": True, "api_key_env": "K"}, "only applies"),
    ],
)
def test_teacher_generator_refuses(kw, problem, monkeypatch):
    monkeypatch.delenv("EHRMIND_UNSET_VAR", raising=False)
    base = {
        "teacher_url": None,
        "teacher_model": None,
        "api_key_env": None,
        "model": None,
        "self_mode": False,
    }
    with pytest.raises(ConfigError, match=problem):
        teacher_generator(**{**base, **kw}, settings=GenerationSettings())


# ---------------------------------------------------------------- the tiny model, for real


def _consistent(out: Path, samples: int, n_scorable: int) -> dict[str, Any]:
    summary = json.loads((out / SUMMARY).read_text())
    attempts = lines(out / ATTEMPTS)
    kept = lines(out / RATIONALES)
    assert summary["attempts"] == len(attempts) == samples * n_scorable
    assert summary["kept"] == len(kept) == sum(a["kept"] for a in attempts)
    assert summary["kept"] + sum(summary["dropped_by_reason"].values()) == summary["attempts"]
    assert sum(b["attempts"] for b in summary["by_label"].values()) == summary["attempts"]
    return summary


def test_teacher_mode_against_tiny_model_server(tiny_model, data, tmp_path):
    from ehrmind.generate.hf import HFGenerator

    task = get_task("trec_ct")
    examples = task.load(data)
    with serving(HFGenerator(str(tiny_model), GenerationSettings(max_new_tokens=8)), "tiny") as url:
        gen = OpenAICompatGenerator(
            url, "tiny", settings=GenerationSettings(max_new_tokens=12, temperature=0.9)
        )
        run_rationales(task, examples, gen, tmp_path, samples=2, progress=False)
    assert gen.requests_sent == 4
    assert _consistent(tmp_path, samples=2, n_scorable=4)["source"] == "tiny"


def test_self_mode_cli_on_tiny_model(tiny_model, data, tmp_path):
    out = tmp_path / "self"
    args = [
        "rationales",
        "--task",
        "trec_ct",
        "--data",
        str(data),
        "--out",
        str(out),
        "--model",
        str(tiny_model),
    ]
    args += ["--self", "--samples", "2", "--temperature", "1.0", "--max-new-tokens", "12", "--limit", "3"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = _consistent(out, samples=2, n_scorable=3)
    assert summary["mode"] == "self" and summary["source"] == str(tiny_model)
    run = json.loads((out / "run.json").read_text())
    assert run["limit"] == 3 and run["samples"] == 2 and run["temperature"] == 1.0


def test_a_resumed_self_run_samples_what_an_uninterrupted_run_sampled(tiny_model, data, tmp_path):
    """Batches are seeded by their position (as eval's are): a killed run, resumed by a new process (a new
    generator), writes the attempts an uninterrupted run writes."""
    from ehrmind.generate.hf import HFGenerator

    task = get_task("trec_ct")
    examples = task.load(data)
    settings = GenerationSettings(max_new_tokens=6, temperature=1.0, seed=4)

    def attempts(out):
        return [(r["id"], r["sample"], r["completion"]) for r in read_jsonl(out / "attempts.jsonl")]

    kw = {"samples": 2, "mode": "self", "batch_size": 1, "progress": False}
    run_rationales(task, examples, HFGenerator(str(tiny_model), settings), tmp_path / "whole", **kw)

    class KilledAfterTwo(HFGenerator):
        def generate(self, prompts, n=1, *, call_seed=None):
            if self._calls == 2:
                raise KeyboardInterrupt
            return super().generate(prompts, n, call_seed=call_seed)

    with pytest.raises(KeyboardInterrupt):
        run_rationales(task, examples, KilledAfterTwo(str(tiny_model), settings), tmp_path / "resumed", **kw)
    assert len(attempts(tmp_path / "resumed")) == 4
    run_rationales(task, examples, HFGenerator(str(tiny_model), settings), tmp_path / "resumed", **kw)
    assert attempts(tmp_path / "resumed") == attempts(tmp_path / "whole")
    assert len({c for _, _, c in attempts(tmp_path / "whole")}) > 2  # sampled, not one repeated text
