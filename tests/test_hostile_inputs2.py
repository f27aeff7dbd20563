"""Issue #31, hostile and careless input: a repeated id in an `ehrmind data` snapshot, and verification work
on 1 MB completions that grew faster than the text.

Verification speed is measured in `bench/bench_verify.py` (docs/BENCHMARKS.md), not here: these tests check
that the work is bounded (what the JSON reader and the label readers are given is capped) and use an outer
limit only as a hang guard, far above the measured times, for the patterns that backtracked.
"""

from __future__ import annotations

import json
import signal
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ehrmind import get_task
from ehrmind.cli import app
from ehrmind.parsing import MAX_ANSWER_CHARS, MAX_JSON_CHARS
from test_hostile_text import CASES, SHAPES

M = 1_000_000
HANG_GUARD_SECONDS = (
    60  # verify takes well under 0.25 s on every shape (bench_verify.py); the old code: hours
)


@contextmanager
def hang_guard(seconds: float = HANG_GUARD_SECONDS):
    """Fail instead of hanging (the old patterns ran for hours on 1 MB); the regex engine checks signals."""

    def expired(*_: object) -> None:
        raise TimeoutError(f"still running after {seconds} s: the work grows faster than the text")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------------- a repeated id in a snapshot
@pytest.fixture(scope="module")
def repeated_id_snapshot(tmp_path_factory, synthetic_csv) -> Path:
    """Six rows written by `ehrmind data`, the fifth given the second's id (a hand-edited or concatenated
    snapshot)."""
    out = tmp_path_factory.mktemp("snapshot")
    small = out / "six.csv"
    small.write_text("\n".join(synthetic_csv.read_text().splitlines()[:7]) + "\n")
    result = CliRunner().invoke(
        app, ["data", "--task", "medcalc", "--source", str(small), "--out", str(out / "data")]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "data" / "examples.jsonl").read_text().splitlines()]
    assert len(rows) == 6
    rows[4]["id"] = rows[1]["id"]
    path = out / "examples.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _commands(data: Path, tmp: Path, model: Path) -> dict[str, list[str]]:
    predictions = tmp / "completions.jsonl"
    predictions.write_text(json.dumps({"id": "1", "completion": "x"}) + "\n")
    common = ["--task", "medcalc", "--data", str(data)]
    return {
        # evaluated 5 of the 6 rows, silently (n=5 in metrics.json)
        "eval": ["eval", *common, "--model", str(model), "--out", str(tmp / "e"), "--max-new-tokens", "4"],
        # refused, but without the row
        "score": ["score", *common, "--predictions", str(predictions), "--out", str(tmp / "s")],
        "diagnose": ["diagnose", *common, "--predictions", str(predictions), "--out", str(tmp / "d")],
        # wrote rationales for 5 rows
        "rationales": ["rationales", *common, "--self", "--model", str(model), "--out", str(tmp / "r")],
        # wrote 5 prompts
        "export-verl": ["export-verl", *common, "--out", str(tmp / "v")],
    }


@pytest.mark.parametrize("command", ["eval", "score", "diagnose", "rationales", "export-verl"])
def test_a_repeated_id_in_a_snapshot_is_one_error_naming_file_row_and_id(
    tmp_path, repeated_id_snapshot, tiny_model, command
):
    args = _commands(repeated_id_snapshot, tmp_path, tiny_model)[command]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert lines == [
        f"error: {repeated_id_snapshot}, row 5, field 'id': id '2' appears more than once (first in row 2); "
        "ids must be unique"
    ], result.output
    assert not any((tmp_path / d).exists() and any((tmp_path / d).iterdir()) for d in "esdrv")


# ---------------------------------------------------------------------- verification work on 1 MB
class _RecordingJson:
    """`json` as `ehrmind.parsing` uses it, recording how many characters each read is given."""

    def __init__(self) -> None:
        self.reads: list[int] = []

    def loads(self, s: str, *args: object, **kwargs: object) -> object:
        self.reads.append(len(s))
        return json.loads(s, *args, **kwargs)

    def JSONDecoder(self) -> object:  # noqa: N802 - the name it stands in for
        recorder, decoder = self, json.JSONDecoder()

        class Decoder:
            def raw_decode(self, s: str, idx: int = 0) -> tuple[object, int]:
                recorder.reads.append(len(s) - idx)
                return decoder.raw_decode(s, idx)

        return Decoder()

    JSONDecodeError = json.JSONDecodeError


BIG = {
    "one huge answer": "<think>x</think>\n<answer>" + '{"answer": "' + "1" * M + '"}' + "</answer>",
    "huge JSON object": "<think>x</think>\n<answer>" + json.dumps({"answer": 4, "x": ["a" * 10] * (M // 16)}),
    "unclosed objects": SHAPES["unclosed-objects"],
    "answer of unclosed objects": SHAPES["answer-unclosed-objects"],
    "fence then spaces": SHAPES["fence-spaces"],
}


@pytest.mark.parametrize("shape", list(BIG))
def test_json_reads_of_a_completion_are_capped(monkeypatch, shape):
    """Every JSON read is given at most MAX_JSON_CHARS, and the fallback search reads a bounded total: the
    strict answer block (1 MB, read whole) and 64 fallback tries over the 1 MB after each unclosed `{` made
    verify read up to 65 MB."""
    import ehrmind.parsing

    recorder = _RecordingJson()
    monkeypatch.setattr(ehrmind.parsing, "json", recorder)
    for task_name, example in CASES:
        recorder.reads.clear()
        with hang_guard():
            score = get_task(task_name).verify(example, BIG[shape])
        assert score.correct in (False, None), (task_name, shape)
        assert max(recorder.reads, default=0) <= MAX_JSON_CHARS, (task_name, shape)
        assert sum(recorder.reads) <= 4 * MAX_JSON_CHARS, (task_name, shape, sum(recorder.reads))


@pytest.mark.parametrize(
    "answer",
    [
        "```" + " " * M + "x",  # a fence then spaces: 2 KB took 9 s (the fence pattern backtracked cubically)
        "```json" + "\n" * M + "x",
        '{"answer": ["1' + " " * M + 'x", 3]}',  # spaces in a pair's field: 20 KB took 1.3 s (quadratic)
        '{"answer": {"weeks": "1' + " " * M + 'x", "days": 3}}',
    ],
    ids=["fence-spaces", "fence-newlines", "pair-field-spaces", "weeks-field-spaces"],
)
def test_patterns_that_backtracked_finish(answer):
    """Hang guard only: these ran for hours on 1 MB before; they are wrong answers in milliseconds now."""
    text = "<think>x</think>\n<answer>" + answer + "</answer>"
    for task_name, example in CASES:
        with hang_guard():
            score = get_task(task_name).verify(example, text)
        assert score.correct is False and not score.format_ok, (task_name, example.id)


def test_a_pair_field_is_read_by_a_pattern_that_cannot_backtrack():
    """The weeks/days field pattern uses possessive quantifiers, and a field longer than a gestational age is
    not read at all; the readings themselves are unchanged."""
    from ehrmind.parsing import _WD_FIELD, parse_weeks_days

    assert "*+" in _WD_FIELD.pattern and "++" in _WD_FIELD.pattern
    assert parse_weeks_days(["4 weeks", "3 days"]) == ((4, 3), "")
    assert parse_weeks_days({"weeks": " 34 wks ", "days": "2d"}) == ((34, 2), "")
    assert parse_weeks_days(["4 weeksx", "3"])[0] is None
    assert parse_weeks_days(["4" + " " * 300, "3"])[0] is None  # longer than any written field


@pytest.mark.parametrize(
    ("task_name", "key"),
    [("trec_ct", "prediction"), ("ehrshot", "prediction"), ("ehrshot", "probability")],
)
def test_a_long_label_is_refused_without_being_normalised(monkeypatch, task_name, key):
    """A label (or probability) over MAX_ANSWER_CHARS is never normalised (NFKC, superscripts, one by one):
    it is not a label; a short one still is."""
    import ehrmind.tasks.ehrshot.task as ehrshot_task
    import ehrmind.tasks.trec_ct.labels as trec_labels

    seen: list[int] = []

    def recording(module, name):
        original = getattr(module, name)

        def wrapper(s, *a, **k):
            seen.append(len(s))
            return original(s, *a, **k)

        monkeypatch.setattr(module, name, wrapper)

    recording(trec_labels, "normalize_label_text")
    recording(ehrshot_task, "normalize_text")
    example = dict(CASES)[task_name]
    long_value = "\u00b9a" * 40_000  # within MAX_JSON_CHARS: the answer block is parsed
    answer = {"prediction": "yes" if task_name == "ehrshot" else "eligible", key: long_value}
    text = f"<think>x</think>\n<answer>{json.dumps(answer, ensure_ascii=False)}</answer>"
    score = get_task(task_name).verify(example, text)
    assert max(seen, default=0) <= MAX_ANSWER_CHARS
    if key == "prediction":
        assert score.correct is False and "too long" in score.reason
    else:  # a probability that is not one is ignored; the prediction is still judged
        assert score.correct is True and score.parsed == {"prediction": "yes", "probability": None}
