"""Bad input gives one clear error naming the file, row and field — and leaves nothing half-written."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from ehrmind import get_task
from ehrmind.cli import app
from ehrmind.errors import DataError
from ehrmind.generate.base import Capabilities, Generated

runner = CliRunner()


def _write(tmp_path: Path, rows: list[dict], name: str = "data.csv") -> Path:
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture
def rows(synthetic_csv) -> list[dict]:
    return pd.read_csv(synthetic_csv, dtype=str, keep_default_na=False).to_dict(orient="records")


@pytest.mark.parametrize(
    ("mutate", "row", "field"),
    [
        # a whole column missing: reported on the first row
        pytest.param(
            lambda rs: [{k: v for k, v in r.items() if k != "Ground Truth Answer"} for r in rs],
            1,
            "Ground Truth Answer",
            id="missing-column",
        ),
        # one bad cell deep in the file: the error names that row
        pytest.param(
            lambda rs: rs[:2] + [{**rs[2], "Calculator ID": "abc"}] + rs[3:],
            3,
            "Calculator ID",
            id="calculator-id-not-int",
        ),
        pytest.param(
            lambda rs: rs[:4] + [{**rs[4], "Ground Truth Answer": "n/a"}] + rs[5:],
            5,
            "Ground Truth Answer",
            id="gold-not-a-number",
        ),
        # Relevant Entities is a Python literal; anything else is an error, and it is never executed
        pytest.param(
            lambda rs: [{**rs[0], "Relevant Entities": "__import__('os').getcwd()"}] + rs[1:],
            1,
            "Relevant Entities",
            id="entities-not-literal",
        ),
        pytest.param(
            lambda rs: [{**rs[0], "Category": "cardiology"}] + rs[1:], 1, "Category", id="unknown-category"
        ),
        pytest.param(lambda rs: [{**rs[0], "Patient Note": ""}] + rs[1:], 1, "Patient Note", id="empty-note"),
        pytest.param(lambda rs: rs + [dict(rs[0])], 21, "Row Number", id="duplicate-id"),
    ],
)
def test_bad_rows_name_file_row_field(tmp_path, rows, mutate, row, field):
    path = _write(tmp_path, mutate(rows))
    with pytest.raises(DataError) as err:
        get_task("medcalc").load(path)
    msg = str(err.value)
    assert str(path) in msg and f"row {row}" in msg and repr(field) in msg, msg
    assert (err.value.row, err.value.field) == (row, field)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        get_task("medcalc").load(tmp_path / "nope.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty"):
        get_task("medcalc").load(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("Row Number,Calculator ID\n")
    with pytest.raises(DataError, match="no data rows"):
        get_task("medcalc").load(header_only)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"Row Number": "1"}\n{not json\n')
    with pytest.raises(DataError, match=r"broken.jsonl, row 2"):
        get_task("medcalc").load(broken)


def test_data_command_leaves_nothing_on_error(tmp_path, rows):
    bad = _write(tmp_path, rows[:3] + [{**rows[3], "Lower Limit": "x", "Upper Limit": "y"}])
    out = tmp_path / "snap"
    result = runner.invoke(app, ["data", "--task", "medcalc", "--source", str(bad), "--out", str(out)])
    assert result.exit_code == 2
    assert "row 4" in result.output and "Lower Limit" in result.output
    assert not out.exists() or not any(out.iterdir())


def test_score_bad_prediction_lines(tmp_path, synthetic_csv):
    preds = tmp_path / "preds.jsonl"
    out = tmp_path / "out"
    cases = [
        ('{"id": "1", "completion": "x"}\n{"completion": "x"}\n', "row 2", "'id'"),
        ('{"id": "1", "completion": 5}\n', "row 1", "'completion'"),
        ('{"id": "999", "completion": "x"}\n', "row 1", "'id'"),
        ('{"id": "1", "completion": "x"}\n[1, 2]\n', "row 2", "JSON object"),
        # issue #16, cause 6: a repeated (id, sample) was counted as one more sample; a bad sample was ignored
        (
            '{"id": "1", "completion": "x"}\n{"id": "1", "sample": 0, "completion": "y"}\n',
            "row 2",
            "first at row 1",
        ),
        ('{"id": "1", "sample": -1, "completion": "x"}\n', "row 1", "'sample'"),
        ('{"id": "1", "sample": "0", "completion": "x"}\n', "row 1", "'sample'"),
    ]
    for text, where, what in cases:
        preds.write_text(text)
        result = runner.invoke(
            app,
            [
                "score",
                "--task",
                "medcalc",
                "--data",
                str(synthetic_csv),
                "--predictions",
                str(preds),
                "--out",
                str(out),
            ],
        )
        assert result.exit_code == 2, result.output
        assert str(preds) in result.output and where in result.output and what in result.output, result.output
        assert not out.exists()


def test_snapshot_round_trip(tmp_path, synthetic_csv):
    out = tmp_path / "snap"
    result = runner.invoke(
        app, ["data", "--task", "medcalc", "--source", str(synthetic_csv), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert (
        manifest["n"] == 20 and sum(manifest["files"]["examples.jsonl"]["counts"]["category"].values()) == 20
    )
    task = get_task("medcalc")
    assert task.load(out / "examples.jsonl") == task.load(synthetic_csv)
    # a snapshot of one task cannot be loaded as another task's data
    line = json.loads((out / "examples.jsonl").read_text().splitlines()[0])
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text(json.dumps({**line, "task": "trec_ct"}) + "\n")
    with pytest.raises(DataError, match="row 1.*trec_ct"):
        task.load(wrong)


def test_score_refuses_to_replace_other_results(tmp_path, synthetic_csv):
    """Issue #16, cause 5: `score --out` into a folder with other results replaced them silently."""
    import pandas as pd

    ids = pd.read_csv(synthetic_csv, dtype=str)["Row Number"].tolist()[:3]
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for path, text in ((first, "x"), (second, "y")):
        path.write_text("".join(json.dumps({"id": i, "completion": text}) + "\n" for i in ids))
    out = tmp_path / "out"

    def score(preds: Path, *extra: str):
        args = ["score", "--task", "medcalc", "--data", str(synthetic_csv), "--predictions", str(preds)]
        return runner.invoke(app, [*args, "--out", str(out), *extra])

    assert score(first).exit_code == 0
    kept = (out / "predictions.jsonl").read_text()
    assert score(first).exit_code == 0  # the same command again: same results
    refused = score(second)
    assert refused.exit_code == 2 and "--overwrite" in refused.output and "Traceback" not in refused.output
    assert (out / "predictions.jsonl").read_text() == kept  # nothing lost
    assert score(second, "--overwrite").exit_code == 0
    assert '"y"' in (out / "predictions.jsonl").read_text()
    # an eval folder is refused too
    (out / "run.json").write_text(json.dumps({"task": "medcalc", "model": "some/model"}))
    assert "holds an eval run" in score(first).output


def test_score_refuses_a_snapshot_with_a_repeated_id(tmp_path, synthetic_csv):
    """Issue #16, cause 6: with a repeated id in a snapshot, predictions were scored against whichever row
    came last (CSV sources already refuse repeated Row Numbers)."""
    a, b = get_task("medcalc").load(synthetic_csv)[:2]
    snapshot = tmp_path / "examples.jsonl"
    snapshot.write_text("".join(json.dumps(ex) + "\n" for ex in (a.to_dict(), {**b.to_dict(), "id": a.id})))
    preds = tmp_path / "preds.jsonl"
    preds.write_text(json.dumps({"id": a.id, "completion": "x"}) + "\n")
    args = ["score", "--task", "medcalc", "--data", str(snapshot), "--predictions", str(preds)]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "appears more than once" in result.output or "duplicate" in result.output, result.output
    assert str(snapshot) in result.output and not (tmp_path / "out").exists()


class _Answers:
    """A scripted generator (the model is not what is tested): answers every prompt with `text`, or raises."""

    name, settings, capabilities = "scripted", None, Capabilities()

    def __init__(self, text: str | None):
        self.text = text

    def describe(self):
        return {}

    def generate(self, prompts, n=1):
        if self.text is None:
            raise RuntimeError("generation failed")
        return Generated.unexplained([[self.text] * n for _ in prompts])


def _eval_setup(tmp_path, synthetic_csv):
    from ehrmind.eval.runner import run_info

    task = get_task("medcalc")
    examples = task.load(synthetic_csv)[:3]
    info = lambda **kw: run_info(task, examples, str(synthetic_csv), model="m", **kw)  # noqa: E731
    return task, examples, info


def test_failed_eval_leaves_no_state_that_blocks_the_next_run(tmp_path, synthetic_csv):
    """Issue #16, cause 14: an eval that failed before its first prediction left run.json and an empty
    predictions.jsonl, so the next run with other settings was refused as a different run."""
    from ehrmind.eval.runner import PREDICTIONS, RUN_INFO, run_eval

    task, examples, info = _eval_setup(tmp_path, synthetic_csv)
    out = tmp_path / "eval"
    with pytest.raises(RuntimeError, match="generation failed"):
        run_eval(task, examples, _Answers(None), out, info=info(max_new_tokens=8), progress=False)
    assert not (out / RUN_INFO).exists() and not (out / PREDICTIONS).exists()
    metrics = run_eval(
        task, examples, _Answers("no answer"), out, info=info(max_new_tokens=16), progress=False
    )
    assert metrics["n"] == 3


def test_resume_with_other_generation_settings_is_refused(tmp_path, synthetic_csv):
    """Issue #16, cause 3: a rerun with a different --seed or --max-new-tokens was accepted and mixed
    settings in one folder while run.json reported only the new ones (now also --batch-size)."""
    from ehrmind.errors import ConfigError
    from ehrmind.eval.runner import run_eval

    task, examples, info = _eval_setup(tmp_path, synthetic_csv)
    out = tmp_path / "eval"
    run_eval(task, examples, _Answers("x"), out, info=info(max_new_tokens=8, seed=0), progress=False)
    for changed, setting in (
        (info(max_new_tokens=9, seed=0), "max_new_tokens"),
        (info(max_new_tokens=8, seed=1), "seed"),
    ):
        with pytest.raises(ConfigError, match=setting):
            run_eval(task, examples, _Answers("x"), out, info=changed, progress=False)
    # batches are seeded by position and padded together: another --batch-size would sample other text
    with pytest.raises(ConfigError, match="batch_size"):
        run_eval(
            task,
            examples,
            _Answers("x"),
            out,
            info=info(max_new_tokens=8, seed=0),
            batch_size=2,
            progress=False,
        )
    # the same settings resume (nothing left to generate)
    assert (
        run_eval(task, examples, _Answers("x"), out, info=info(max_new_tokens=8, seed=0), progress=False)["n"]
        == 3
    )


@pytest.mark.parametrize(
    ("model", "message"),
    [
        pytest.param("{tmp}/no-such-model", "model folder not found", id="missing-absolute"),
        pytest.param("./no-such-model", "model folder not found", id="missing-relative"),
        pytest.param("{tmp}", "is not a model folder (no config.json)", id="folder-without-model"),
    ],
)
def test_unusable_local_model_is_named_not_a_traceback(tmp_path, synthetic_csv, model, message):
    """Issue #16, cause 9: a missing local model path was reported as a Hub repo-id error, with a traceback."""
    args = ["eval", "--task", "medcalc", "--data", str(synthetic_csv), "--limit", "1"]
    result = runner.invoke(app, [*args, "--model", model.format(tmp=tmp_path), "--out", str(tmp_path / "e")])
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output and not (tmp_path / "e" / "run.json").exists()


def test_data_folder_is_a_snapshot_or_named(tmp_path, synthetic_csv):
    """Issue #16, cause 9: a folder given as --data was passed to the Hub loader; an `ehrmind data` snapshot
    folder now loads its examples, any other folder is an error that says what to give."""
    task = get_task("medcalc")
    snap = tmp_path / "snap"
    assert (
        runner.invoke(
            app, ["data", "--task", "medcalc", "--source", str(synthetic_csv), "--out", str(snap)]
        ).exit_code
        == 0
    )
    assert [ex.id for ex in task.load(snap)] == [ex.id for ex in task.load(synthetic_csv)]
    (tmp_path / "other").mkdir()
    with pytest.raises(
        DataError, match="neither an `ehrmind data` snapshot nor in a Hugging Face dataset layout"
    ):
        task.load(tmp_path / "other")


def test_killed_and_resumed_sampled_eval_is_byte_identical(tmp_path, synthetic_csv, tiny_model):
    """Issue #16, cause 3: a resumed eval did not reproduce an uninterrupted one (the per-call seed restarted).
    Batches now sit at fixed positions and are seeded by position: kill after two batches, rerun, compare."""
    from ehrmind.eval.runner import PREDICTIONS, run_eval, run_info
    from ehrmind.generate.hf import GenerationSettings, HFGenerator

    task = get_task("medcalc")
    examples = task.load(synthetic_csv)[:5]
    gen = HFGenerator(
        str(tiny_model), GenerationSettings(temperature=1.0, top_p=1.0, max_new_tokens=12, seed=3)
    )
    info = run_info(task, examples, str(synthetic_csv), model="tiny", temperature=1.0, seed=3, samples=2)

    class Killed(Exception):
        pass

    class KilledAfter:
        """The same model, killed (an exception) when a third batch starts."""

        name, settings, capabilities, describe = gen.name, gen.settings, gen.capabilities, gen.describe
        choice_logprobs, token_usage = gen.choice_logprobs, gen.token_usage

        def __init__(self):
            self.calls = 0

        def generate(self, prompts, n=1, **seeding):
            self.calls += 1
            if self.calls == 3:
                raise Killed
            return gen.generate(prompts, n, **seeding)

    whole = tmp_path / "whole"
    run_eval(task, examples, gen, whole, samples=2, batch_size=3, info=info, progress=False)
    resumed = tmp_path / "resumed"
    with pytest.raises(Killed):
        run_eval(task, examples, KilledAfter(), resumed, samples=2, batch_size=3, info=info, progress=False)
    assert len((resumed / PREDICTIONS).read_text().splitlines()) == 6  # two batches of three written
    run_eval(task, examples, gen, resumed, samples=2, batch_size=3, info=info, progress=False)
    assert (resumed / PREDICTIONS).read_bytes() == (whole / PREDICTIONS).read_bytes()
    # the samples do differ from each other: the comparison is not trivially of identical greedy text
    assert len({r["completion"] for r in map(json.loads, (whole / PREDICTIONS).read_text().splitlines())}) > 1


# ---------------------------------------------------------------- issue #16, causes 9 and 10: the rest


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["eval", "--task", "medcalc", "--data", "{csv}", "--model", "no-model"], id="eval"),
        pytest.param(
            ["score", "--task", "medcalc", "--data", "{csv}", "--predictions", "{preds}"], id="score"
        ),
        pytest.param(["data", "--task", "medcalc", "--source", "{csv}"], id="data"),
        pytest.param(["audit", "--data", "{csv}"], id="audit"),
        pytest.param(["tiny-model"], id="tiny-model"),
        pytest.param(["get-model"], id="get-model"),
        pytest.param(["demo"], id="demo"),
    ],
)
def test_out_that_is_a_file_is_named_not_a_traceback(tmp_path, synthetic_csv, command):
    """Issue #16, cause 9: `--out` naming an existing file raised FileExistsError with a traceback (eval only
    after loading the model). The file is left as it was."""
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    preds = tmp_path / "preds.jsonl"
    preds.write_text('{"id": "1", "completion": "x"}\n')
    args = [a.format(csv=synthetic_csv, preds=preds) for a in command]
    for out in (target, target / "sub"):
        result = runner.invoke(app, [*args, "--out", str(out)])
        assert result.exit_code == 2, result.output
        assert f"{target} is a file" in result.output and result.exception.__class__ is SystemExit
    assert target.read_text() == "keep me"


def test_export_verl_onto_a_file_is_refused_and_leaves_nothing(tmp_path, synthetic_csv):
    """Issue #16, cause 9 (then a file was expected and a folder raised IsADirectoryError): the export is now a
    folder (train/val parquet and a launch script); a file in its place is refused, and nothing is left."""
    blocker = tmp_path / "verl"
    blocker.write_text("keep me")
    args = ["export-verl", "--task", "medcalc", "--data", str(synthetic_csv), "--out"]
    result = runner.invoke(app, [*args, str(blocker)])
    assert result.exit_code == 2 and "is a file; the output needs a folder there" in result.output
    assert list(tmp_path.iterdir()) == [blocker] and blocker.read_text() == "keep me"
    folder = tmp_path / "empty"
    folder.mkdir()
    ok = runner.invoke(app, [*args, str(folder)])
    assert ok.exit_code == 0, ok.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "verl"]  # no temporary left beside it
    assert {"train.parquet", "val.parquet", "run_verl.sh"} <= {p.name for p in folder.iterdir()}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param('"zero"', "not a non-negative integer", id="text"),
        pytest.param("1.5", "not a non-negative integer", id="float"),
        pytest.param("true", "not a non-negative integer", id="bool"),
        pytest.param("-1", "not a non-negative integer", id="negative"),
        pytest.param("3", "sample 3 is outside --samples 1", id="out-of-range"),
    ],
)
def test_resumed_folder_with_a_bad_sample_names_the_row(tmp_path, synthetic_csv, value, message):
    """Issue #16, cause 9: a non-integer `sample` in a resumed folder raised ValueError from int()."""
    from ehrmind.eval.runner import PREDICTIONS, run_eval

    task, examples, info = _eval_setup(tmp_path, synthetic_csv)
    out = tmp_path / "eval"
    run_eval(task, examples, _Answers("x"), out, info=info(max_new_tokens=8), progress=False)
    lines = (out / PREDICTIONS).read_text().splitlines()
    row = json.loads(lines[1])
    lines[1] = json.dumps(row).replace('"sample": 0', f'"sample": {value}')
    (out / PREDICTIONS).write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=message) as err:
        run_eval(task, examples, _Answers("x"), out, info=info(max_new_tokens=8), progress=False)
    assert f"{out / PREDICTIONS}, row 2, field 'sample'" in str(err.value)


def test_meds_time_past_year_9999_names_the_row(tmp_path):
    """Issue #16, cause 9: a MEDS timestamp past 9999 raised OverflowError from pyarrow with a traceback."""
    from datetime import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    def us(*d):
        return int((datetime(*d) - datetime(1970, 1, 1)).total_seconds() * 1e6)

    table = pa.table(
        {
            "subject_id": pa.array([1, 1, 1], pa.int64()),
            "time": pa.array(
                [us(1960, 1, 1), us(2020, 1, 1, 10), us(9999, 12, 31) + 10**14], pa.timestamp("us")
            ),
            "code": [
                "MEDS_BIRTH",
                "HOSPITAL_ADMISSION//EW EMER.//EMERGENCY ROOM",
                "HOSPITAL_DISCHARGE//HOME",
            ],
        }
    )
    path = tmp_path / "events.parquet"
    pq.write_table(table, path)
    args = [
        "data",
        "--task",
        "ehrshot",
        "--source",
        str(path),
        "--labeler",
        "guo_los",
        "--out",
        str(tmp_path / "d"),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert f"{path}, row 3, field 'time': time outside the years 1-9999" in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        pytest.param(
            "Ground Truth Answer", "(" * 100_000, "expected ('W weeks', 'D days')", id="ga-deep-nesting"
        ),
        pytest.param(
            "Ground Truth Answer",
            "[" + "1," * 500_000 + "]",
            "expected ('W weeks', 'D days')",
            id="ga-huge-list",
        ),
        pytest.param("Relevant Entities", "[" * 100_000, "not a Python literal", id="entities-deep"),
        pytest.param(
            "Relevant Entities",
            "{'a': " + "9" * 2_000_000 + "}",
            "longer than 1,000,000 characters",
            id="entities-huge",
        ),
    ],
)
def test_python_literals_in_data_are_bounded(tmp_path, rows, field, value, message):
    """Issue #16, cause 9: `literal_eval` of a gestational-age label or entity text ran out of memory or
    recursion. Literals are now size-capped and every failure is a DataError with a short message."""
    import time

    rows = [dict(r) for r in rows[:2]]
    ga = {
        "Calculator ID": "69",
        "Calculator Name": "Estimated Gestational Age",
        "Category": "date",
        "Output Type": "integer",
        "Lower Limit": "",
        "Upper Limit": "",
    }
    rows[1].update(ga if field == "Ground Truth Answer" else {})
    rows[1][field] = value
    path = _write(tmp_path, rows)
    started = time.perf_counter()
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        get_task("medcalc").load(path)
    assert time.perf_counter() - started < 30 and len(str(err.value)) < 300
    assert f"row 2, field '{field}'" in str(err.value)


def test_errors_never_echo_long_values_or_patient_text(tmp_path, rows):
    """Issue #16, cause 10: a shifted CSV printed a patient note in the error, a 200 KB label was echoed
    whole. A value longer than a label is described by its length, and no message grows with the input."""
    from ehrmind.errors import ConfigError

    shifted = dict(rows[0])
    columns = list(shifted)
    values = list(shifted.values())
    values.insert(columns.index("Ground Truth Explanation"), "x")  # one stray cell shifts the rest right
    shifted = dict(zip(columns, values, strict=False))
    big = dict(rows[1], **{"Ground Truth Answer": "9" * 200_000 + "x"})
    for bad, hidden in ((shifted, rows[0]["Ground Truth Explanation"]), (big, big["Ground Truth Answer"])):
        result = runner.invoke(
            app,
            [
                "data",
                "--task",
                "medcalc",
                "--source",
                str(_write(tmp_path, [bad])),
                "--out",
                str(tmp_path / "d"),
            ],
        )
        assert result.exit_code == 2 and "field 'Ground Truth Answer'" in result.output
        assert "-character text (not shown)" in result.output
        assert hidden[:30] not in result.output and len(result.output) < 400
    assert len(str(ConfigError("x" * 10**6))) <= 500 and len(str(DataError("y" * 10**6, file="f"))) <= 500


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        pytest.param(lambda t: t.update(lower=float("nan")), "target.lower", id="nan-limit"),
        pytest.param(lambda t: t.update(upper="12"), "target.upper", id="text-limit"),
        pytest.param(lambda t: t.update(lower=t["upper"] + 1), "target.lower", id="limits-reversed"),
        pytest.param(lambda t: t.update(output_type="fraction"), "target.output_type", id="unknown-type"),
    ],
)
def test_snapshot_with_unusable_tolerance_limits_is_refused(tmp_path, synthetic_csv, mutate, field):
    """Issue #16, cause 12: NaN or text tolerance limits in a snapshot made every answer wrong, exit 0."""
    task = get_task("medcalc")
    decimal = next(ex for ex in task.load(synthetic_csv) if ex.target["output_type"] == "decimal")
    row = decimal.to_dict()
    mutate(row["target"])
    path = tmp_path / "snap.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError, match=rf"row 1, field '{field}'"):
        task.load(path)


def test_list_typed_note_is_refused_not_turned_into_text(tmp_path, rows):
    """Issue #16, cause 12: a JSONL source whose note is a list became the text "[1, 2]"."""
    row = dict(rows[0], **{"Patient Note": [1, 2]})
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError, match="row 1, field 'Patient Note': expected text or a number, got a list"):
        get_task("medcalc").load(path)
