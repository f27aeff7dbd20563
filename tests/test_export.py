"""Issue #15, item 4: scored predictions in the formats other tools read, from real runs on the shared data —
MEDS-DEV / meds-evaluation parquet for EHRSHOT tasks, TREC run files for trial matching — read back by
`meds`'s schema and by ir-measures, whose numbers equal ehrmind's own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import SHARED_DATA, shared_file
from ehrmind import get_task
from ehrmind.cli import app

runner = CliRunner()
MIMIC_DEMO = SHARED_DATA / "ehr_samples" / "mimic_iv_demo_meds" / "mimic_iv_demo_meds_events.parquet"
TREC_PAIRS = SHARED_DATA / "trec_ct" / "samples" / "trec2021_pairs_with_trial_text_sample.jsonl"
SIGIR_PAIRS = SHARED_DATA / "trec_ct" / "samples" / "sigir_pairs_sample.tsv"


def _score(task_name: str, data: Path, completions: dict[str, str], out: Path) -> dict:
    preds = out.parent / f"{out.name}-completions.jsonl"
    preds.write_text("".join(json.dumps({"id": i, "completion": c}) + "\n" for i, c in completions.items()))
    result = runner.invoke(
        app,
        ["score", "--task", task_name, "--data", str(data), "--predictions", str(preds), "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    return json.loads((out / "metrics.json").read_text())


def _export(task: str, predictions: Path, fmt: str, out: Path, *extra: str):
    args = ["export-predictions", "--task", task, "--predictions", str(predictions), "--format", fmt]
    return runner.invoke(app, [*args, "--out", str(out), *extra])


def test_ehrshot_predictions_in_the_meds_evaluation_schema(tmp_path, mimic_htn_data):
    import meds
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.metrics import roc_auc_score

    data = mimic_htn_data
    examples = get_task("ehrshot").load(data)
    completions = {}
    for i, ex in enumerate(examples):  # stated probabilities that rank imperfectly; one unreadable answer
        p = (0.3 + 0.4 * ex.target["label"] + 0.05 * (i % 7)) % 1.0
        answer = {"prediction": "yes" if p >= 0.5 else "no", "probability": round(p, 3)}
        completions[ex.id] = (
            "<think>t</think>\n<answer>" + json.dumps(answer) + "</answer>" if i != 3 else "?"
        )
    metrics = _score("ehrshot", data, completions, tmp_path / "scored")

    out = tmp_path / "predictions.parquet"
    result = _export("ehrshot", str(tmp_path / "scored"), "meds", str(out))
    assert result.exit_code == 0, result.output
    assert f"rows {len(examples)}, no_readable_answer 1" in result.output
    table = pq.read_table(out)
    assert table.schema.field("predicted_boolean_probability").type == pa.float64()
    assert table.schema.field("predicted_boolean_value").type == pa.bool_()
    meds.LabelSchema.validate(
        table.select(["subject_id", "prediction_time", "boolean_value"])
    )  # MEDS's own check
    rows = table.to_pylist()
    by_key = {(e.metadata["subject_id"], e.metadata["prediction_time"]): e for e in examples}
    assert all(
        by_key[(r["subject_id"], r["prediction_time"].isoformat())].target["label"] == r["boolean_value"]
        for r in rows
    )
    # the unreadable example is written as ehrmind scores it (wrong; probability 1 - label), never as nulls
    unreadable = next(
        r for r in rows if by_key[(r["subject_id"], r["prediction_time"].isoformat())].id == examples[3].id
    )
    assert unreadable["predicted_boolean_value"] is (not unreadable["boolean_value"])
    assert unreadable["predicted_boolean_probability"] == 1.0 - unreadable["boolean_value"]
    assert all(
        r["predicted_boolean_value"] is not None and r["predicted_boolean_probability"] is not None
        for r in rows
    )
    y = [r["boolean_value"] for r in rows]
    s = [r["predicted_boolean_probability"] for r in rows]
    assert roc_auc_score(y, s) == pytest.approx(metrics["binary"]["auroc"])
    # meds-evaluation 0.0.6 itself reads the file (issue #29: the nulls made it fail) and agrees with ehrmind
    meds_evaluation = pytest.importorskip(
        "meds_evaluation.evaluate", reason="meds-evaluation (dev extra) not installed"
    )
    import polars as pl

    official = meds_evaluation.evaluate_binary_classification(pl.read_parquet(out))
    assert official["samples_equally_weighted"]["roc_auc_score"] == pytest.approx(metrics["binary"]["auroc"])
    assert official["samples_equally_weighted"]["binary_accuracy"] == pytest.approx(
        metrics["binary"]["accuracy"]
    )


def test_trec_run_file_gives_ehrminds_ndcg_through_ir_measures(tmp_path):
    import ir_measures
    from ir_measures import P, Qrel, nDCG

    data = shared_file(TREC_PAIRS)
    examples = get_task("trec_ct").load(data)
    names = ["not relevant", "excluded", "eligible"]
    completions = {  # a noisy judge: right for two pairs in three
        ex.id: "<think>t</think>\n<answer>"
        + json.dumps({"label": names[ex.target["label"] if i % 3 else (ex.target["label"] + 1) % 3]})
        + "</answer>"
        for i, ex in enumerate(examples)
    }
    metrics = _score("trec_ct", data, completions, tmp_path / "scored")
    out = tmp_path / "run.txt"
    result = _export(
        "trec_ct", str(tmp_path / "scored" / "predictions.jsonl"), "trec", str(out), "--run-name", "tiny"
    )
    assert result.exit_code == 0, result.output
    first = out.read_text().splitlines()[0].split()
    assert len(first) == 6 and first[1] == "Q0" and first[3] == "1" and first[5] == "tiny"
    qrels = [Qrel(ex.metadata["patient_id"], ex.metadata["trial_id"], ex.target["label"]) for ex in examples]
    run = list(ir_measures.read_trec_run(str(out)))
    per = {m.query_id: m.value for m in ir_measures.iter_calc([nDCG @ 10], qrels, run)}
    prec = {m.query_id: m.value for m in ir_measures.iter_calc([P(rel=2) @ 10], qrels, run)}
    relevant = {q.query_id for q in qrels if q.relevance >= 1}
    ranking = metrics["ranking"]
    assert ranking["ndcg@10"] == pytest.approx(sum(per.get(q, 0.0) for q in relevant) / len(relevant))
    assert ranking["p@10"] == pytest.approx(sum(prec.get(q, 0.0) for q in relevant) / len(relevant))
    assert 0 < ranking["ndcg@10"] < 1


def _noisy_completions(examples, every: int) -> dict[str, str]:
    """Right for all but one pair in `every` (a SIGIR pair's "right" is its grade read as a TREC label)."""
    names = ["not relevant", "excluded", "eligible"]
    return {
        ex.id: "<think>t</think>\n<answer>"
        + json.dumps({"label": names[ex.target["label"] if i % every else (ex.target["label"] + 1) % 3]})
        + "</answer>"
        for i, ex in enumerate(examples)
    }


def test_trec_export_reproduces_ehrminds_ranking_with_the_documented_commands(tmp_path):
    """Issue #29: the run file and the qrels `export-predictions` writes (SIGIR pairs included) give exactly
    ehrmind's NDCG@10 and P@10 under the commands docs/trec_ct.md gives: ir-measures' `nDCG@10` and
    `P(rel=2)@10`, and trec_eval's `-l 2 -m ndcg_cut.10 -m P.10` (pytrec_eval is trec_eval's code; the mean is
    over the topics, with or without `-c`). Without `-l 2`, P.10 counts label 1 as relevant."""
    import ir_measures
    import pytrec_eval
    from ir_measures import P, nDCG

    from ehrmind.tasks.analysis import task_metrics

    task = get_task("trec_ct")
    rows = []
    for name, data, every in (("trec", shared_file(TREC_PAIRS), 3), ("sigir", shared_file(SIGIR_PAIRS), 4)):
        _score("trec_ct", data, _noisy_completions(task.load(data), every), tmp_path / name)
        rows += [
            json.loads(line) for line in (tmp_path / name / "predictions.jsonl").read_text().splitlines()
        ]
    scored = tmp_path / "both.jsonl"
    scored.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ranking = task_metrics(task, rows)["ranking"]  # what `ehrmind score` reports on these rows
    assert set(ranking["by_cohort"]) == {"sigir", "trec_2021"}

    run_file, qrels_file = tmp_path / "run.txt", tmp_path / "qrels.txt"
    result = _export("trec_ct", scored, "trec", run_file, "--run-name", "tiny")
    assert result.exit_code == 0, result.output
    assert f"topics {ranking['n_patients']}, topics_without_relevant_left_out " in result.output
    assert "cohorts sigir+trec_2021" in result.output
    assert _export("trec_ct", scored, "trec-qrels", qrels_file).exit_code == 0
    run_topics = {line.split()[0] for line in run_file.read_text().splitlines()}
    assert any(t.startswith("sigir-") for t in run_topics) and any(t.startswith("trec-") for t in run_topics)
    assert {line.split()[0] for line in qrels_file.read_text().splitlines()} == run_topics

    qrels, run = ir_measures.read_trec_qrels(str(qrels_file)), ir_measures.read_trec_run(str(run_file))
    got = ir_measures.calc_aggregate([nDCG @ 10, P(rel=2) @ 10], list(qrels), list(run))
    assert got[nDCG @ 10] == pytest.approx(ranking["ndcg@10"])
    assert got[P(rel=2) @ 10] == pytest.approx(ranking["p@10"])

    q = {}
    for r in ir_measures.read_trec_qrels(str(qrels_file)):
        q.setdefault(r.query_id, {})[r.doc_id] = int(r.relevance)
    rn = {}
    for r in ir_measures.read_trec_run(str(run_file)):
        rn.setdefault(r.query_id, {})[r.doc_id] = float(r.score)
    for level, p10_equal in ((2, True), (1, False)):  # trec_eval -l 2 vs its default (-l 1)
        per = pytrec_eval.RelevanceEvaluator(q, {"ndcg_cut.10", "P.10"}, relevance_level=level).evaluate(rn)
        mean = {m: sum(v[m] for v in per.values()) / len(per) for m in ("ndcg_cut_10", "P_10")}
        assert len(per) == ranking["n_patients"]
        assert mean["ndcg_cut_10"] == pytest.approx(ranking["ndcg@10"])
        assert (mean["P_10"] == pytest.approx(ranking["p@10"])) is p10_equal


def test_export_refuses_unscored_rows_and_unknown_formats(tmp_path):
    raw = tmp_path / "raw.jsonl"
    raw.write_text('{"id": "1", "completion": "x"}\n')
    result = _export("ehrshot", str(raw), "meds", str(tmp_path / "o.parquet"))
    assert result.exit_code == 2 and "score completions first" in result.output
    result = _export("medcalc", str(raw), "meds", str(tmp_path / "o.parquet"))
    assert result.exit_code == 2 and "exports no format" in result.output


def _scored_rows(path: Path, rows: list[dict]) -> Path:
    base = {
        "correct": True,
        "format_ok": True,
        "parsed": "eligible",
        "reward": 1.1,
        "reason": "",
        "sample": 0,
    }
    path.write_text("".join(json.dumps({**base, **r}) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    ("case", "message"),
    [
        # the input itself as --out: the scored rows would be destroyed
        ("self", "is the predictions file being exported"),
        # an existing file without --overwrite (every other writer refuses too)
        ("exists", "exists; use another --out, or --overwrite"),
        # an id with a line break or a space would forge lines or fields in the run file
        ("space-id", "has whitespace: a TREC run file cannot hold it"),
        # the same row twice would be counted twice
        ("repeated", "repeats id 'p::t' sample 0 (first at row 1)"),
        # predictions of another task, by their run record
        ("other-task", "these predictions are of task 'ehrshot', not 'trec_ct'"),
    ],
)
def test_export_refuses_what_would_lose_or_forge_data(tmp_path, case, message):
    """Issue #31: export-predictions wrote over its input (rc 0), replaced existing files, wrote ids that
    forge run-file lines, and counted repeated rows twice."""
    row = {"id": "p::t", "patient_id": "p", "trial_id": "t", "label": 2, "category": "eligible"}
    rows = [row, {**row, "id": "p::u", "trial_id": "u"}]
    if case == "space-id":
        rows[1] = {**rows[1], "trial_id": "u\np Q0 forged 1 9 run"}
    if case == "repeated":
        rows.append(row)
    preds = _scored_rows(tmp_path / "predictions.jsonl", rows)
    if case == "other-task":
        (tmp_path / "run.json").write_text(json.dumps({"task": "ehrshot"}))
    out = {"self": preds, "exists": tmp_path / "run.txt"}.get(case, tmp_path / "new.txt")
    if case == "exists":
        out.write_text("an earlier run\n")
    before = preds.read_text()
    result = _export("trec_ct", str(preds), "trec", str(out))
    assert result.exit_code == 2 and message in result.output, result.output
    assert preds.read_text() == before  # nothing lost
    if case == "exists":
        assert out.read_text() == "an earlier run\n"
        assert _export("trec_ct", str(preds), "trec", str(out), "--overwrite").exit_code == 0
