"""trec_ct data: the three trial formats, topics and qrels, a source folder, bad input, patient-disjoint splits."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import SHARED_DATA, shared_file
from ehrmind import get_task
from ehrmind.errors import ConfigError, DataError
from ehrmind.tasks.trec_ct.sources import NO_TRIAL, UNREADABLE
from ehrmind.tasks.trec_ct.splits import balance_classes, split_by_patient
from ehrmind.tasks.trec_ct.topics import read_qrels, read_topics_xml
from ehrmind.tasks.trec_ct.trials import (
    criteria_list,
    split_eligibility,
    trial_from_ctgov_xml,
    trial_from_json_file,
    trial_from_record,
)
from ehrmind.types import Example

TREC_CT = SHARED_DATA / "trec_ct"

# ---------------------------------------------------------------- tiny sources in the three trial formats

CTGOV_XML = """<?xml version="1.0" encoding="UTF-8"?>
<clinical_study rank="1">
  <required_header><download_date>ClinicalTrials.gov processed this data on April 27, 2021</download_date></required_header>
  <id_info><org_study_id>ABC-1</org_study_id><nct_id>{nct}</nct_id></id_info>
  <brief_title>Erlotinib in Advanced Non-Small Cell Lung Cancer</brief_title>
  <official_title>A Phase II Study of Erlotinib</official_title>
  <condition>Non-small Cell Lung Cancer</condition>
  <condition>EGFR Mutation</condition>
  <eligibility>
    <criteria>
      <textblock>
        Inclusion Criteria:

          -  Age 18 years or older

          -  Histologically confirmed non-small cell lung cancer, stage IIIB or IV, with
             measurable disease

        Exclusion Criteria:

          -  Pregnancy or breast feeding

          -  Prior treatment with EGFR inhibitors
      </textblock>
    </criteria>
    <gender>All</gender>
    <minimum_age>18 Years</minimum_age>
    <maximum_age>N/A</maximum_age>
    <healthy_volunteers>No</healthy_volunteers>
  </eligibility>
</clinical_study>
"""

TOPICS_XML = """<topics task="2021 TREC Clinical Trials">
<topic number="1">
A 62-year-old man with stage IV non-small cell lung cancer, EGFR exon 19 deletion, never treated.
</topic>
<topic number="2">
A 30-year-old pregnant woman with gestational diabetes.
</topic>
</topics>
"""

TRIAL_INFO = {  # TrialGPT trial_info schema, one trial per JSON file
    "nct_id": "NCT00000003",
    "brief_title": "Exercise After Lung Surgery",
    "diseases_list": ["Lung Cancer"],
    "inclusion_criteria": "inclusion criteria: \n\n Lung resection \n\n Adults",
    "exclusion_criteria": ": \n\n Unable to walk",
}

CTGOV_V2 = {  # ClinicalTrials.gov API v2 study, one per JSON file
    "protocolSection": {
        "identificationModule": {"nctId": "NCT00000004", "briefTitle": "Osimertinib First Line"},
        "conditionsModule": {"conditions": ["NSCLC"]},
        "eligibilityModule": {
            "eligibilityCriteria": "Inclusion Criteria:\n\n* EGFR mutation\n* Stage IV\n\nExclusion Criteria:\n\n* Prior TKI",
            "sex": "ALL",
            "minimumAge": "18 Years",
        },
    }
}


def corpus_line(nct: str, inclusion: str, exclusion: str, title: str = "Metformin in Pregnancy") -> dict:
    """One TrialGPT (BEIR) corpus.jsonl line."""
    return {
        "_id": nct,
        "title": title,
        "text": f"Summary: a trial.\nInclusion criteria: {inclusion}\nExclusion criteria: {exclusion}",
        "metadata": {
            "brief_title": title,
            "diseases_list": ["Gestational Diabetes"],
            "inclusion_criteria": inclusion,
            "exclusion_criteria": exclusion,
        },
    }


QRELS = (
    "1 0 NCT00000001 2\n1 0 NCT00000002 0\n1 0 NCT00000003 0\n1 0 NCT00000004 2\n1 0 NCT00000005 1\n"
    "2 0 NCT00000002 1\n2 0 NCT00000006 0\n"
)


def make_source(root: Path) -> Path:
    """A source folder in the documented layout, each trial format once.

    qrels2021.txt: topic 1 × trials 1–5, topic 2 × trials 2 and 6. Trial 1: CT.gov XML; 2: corpus.jsonl;
    3: per-trial JSON (TrialGPT); 4: per-trial JSON (API v2); 5: a corpus line without criteria (kept, with
    a warning); 6: no text anywhere (skipped and listed)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "topics2021.xml").write_text(TOPICS_XML)
    (root / "qrels2021.txt").write_text(QRELS)
    xml_dir = root / "ctgov" / "NCT0000xxxx"
    xml_dir.mkdir(parents=True)
    (xml_dir / "NCT00000001.xml").write_text(CTGOV_XML.format(nct="NCT00000001"))
    lines = [
        corpus_line(
            "NCT00000002", "inclusion criteria: \n\n Pregnant \n\n Diabetes", ": \n\n Type 1 diabetes"
        ),
        corpus_line("NCT00000005", "", "", title="A Registry"),
    ]
    (root / "corpus.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    (root / "trials").mkdir()
    (root / "trials" / "NCT00000003.json").write_text(json.dumps(TRIAL_INFO))
    (root / "trials" / "NCT00000004.json").write_text(json.dumps(CTGOV_V2))
    return root


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return make_source(tmp_path / "source")


@pytest.fixture(scope="module")
def task():
    return get_task("trec_ct")


# ---------------------------------------------------------------- parsers


def test_ctgov_xml():
    t = trial_from_ctgov_xml(CTGOV_XML.format(nct="NCT00000001").encode(), "NCT00000001.xml")
    assert t.trial_id == "NCT00000001" and t.title == "Erlotinib in Advanced Non-Small Cell Lung Cancer"
    assert t.conditions == ("Non-small Cell Lung Cancer", "EGFR Mutation")
    assert t.inclusion == (
        "Age 18 years or older",
        "Histologically confirmed non-small cell lung cancer, stage IIIB or IV, with measurable disease",
    )
    assert t.exclusion == ("Pregnancy or breast feeding", "Prior treatment with EGFR inhibitors")
    assert (t.gender, t.minimum_age, t.maximum_age, t.unsplit) == ("All", "18 Years", None, False)


@pytest.mark.parametrize(
    ("text", "inclusion", "exclusion", "unsplit"),
    [
        # headings in capitals, numbered items, a heading with its first criterion on the same line
        (
            "KEY INCLUSION CRITERIA\n1. Adults\n2. Type 2 diabetes\nExclusion criteria: pregnancy\n- renal failure",
            ["Adults", "Type 2 diabetes"],
            ["pregnancy", "renal failure"],
            False,
        ),
        # a heading with extra words is kept as an item, in its section
        (
            "Inclusion Criteria:\n- A\nExclusion Criteria for Part B:\n- B",
            ["A"],
            ["Exclusion Criteria for Part B:", "B"],
            False,
        ),
        # only an exclusion heading: what comes before is inclusion
        (
            "Adults with asthma\n\nExclusion Criteria:\n\n- Smokers",
            ["Adults with asthma"],
            ["Smokers"],
            False,
        ),
        # old NCI style, no inclusion/exclusion headings: kept whole and flagged
        (
            "DISEASE CHARACTERISTICS:\n\n- Breast cancer\n\nPATIENT CHARACTERISTICS:\n\n- Age 18 and over",
            ["DISEASE CHARACTERISTICS:", "Breast cancer", "PATIENT CHARACTERISTICS:", "Age 18 and over"],
            [],
            True,
        ),
        # "exclusion criteria" inside a sentence is not a heading
        (
            "Patients meeting exclusion criteria of the parent study\n\nAdults",
            ["Patients meeting exclusion criteria of the parent study", "Adults"],
            [],
            True,
        ),
        ("", [], [], False),
    ],
)
def test_split_eligibility(text, inclusion, exclusion, unsplit):
    assert split_eligibility(text) == (inclusion, exclusion, unsplit)


def test_trialgpt_jsonl_records_from_the_shared_sample():
    path = shared_file(TREC_CT / "samples" / "sigir_trial_info_sample.jsonl")
    records = [json.loads(line) for line in path.read_text().splitlines()]
    trials = [trial_from_record(r, f"{path}:{i}") for i, r in enumerate(records, start=1)]
    assert len(trials) == 101 and len({t.trial_id for t in trials}) == 101
    first = trials[0]
    assert first.trial_id == "NCT00015626"
    assert first.conditions == ("Insulin Resistance", "Diabetes Mellitus")
    assert (
        first.inclusion[0].startswith("Obese patients") and len(first.inclusion) == 4
    )  # header chunk dropped
    assert first.exclusion == (
        "Critically ill patients, patients will congestive heart failure, renal or liver insufficiency",
        "Inability to give consent.",
        "History of poor compliance with physician's recommendations",
    )
    assert all(t.title for t in trials)


def test_corpus_line_and_per_trial_json():
    t = trial_from_record(
        corpus_line("NCT9", "inclusion criteria: \n\n Pregnant \n\n Diabetes", ": \n\n Type 1"), "c:1"
    )
    assert (t.trial_id, t.title, t.inclusion, t.exclusion) == (
        "NCT9",
        "Metformin in Pregnancy",
        ("Pregnant", "Diabetes"),
        ("Type 1",),
    )
    assert t.conditions == ("Gestational Diabetes",)
    info = trial_from_json_file(json.dumps(TRIAL_INFO).encode(), "trials/NCT00000003.json")
    assert info.inclusion == ("Lung resection", "Adults") and info.exclusion == ("Unable to walk",)
    v2 = trial_from_json_file(json.dumps(CTGOV_V2).encode(), "trials/NCT00000004.json")
    assert (v2.trial_id, v2.inclusion, v2.exclusion, v2.gender) == (
        "NCT00000004",
        ("EGFR mutation", "Stage IV"),
        ("Prior TKI",),
        "All",
    )
    # a stringified list, as TrialGPT stores `diseases`
    assert trial_from_record(
        {"nct_id": "N", "brief_title": "T", "diseases": "['A', 'B']", "inclusion_criteria": "x"}, "w"
    ).conditions == ("A", "B")


def test_criteria_list_drops_only_the_header_chunk():
    assert criteria_list("inclusion criteria: \n\n A \n\n Inclusion criteria for part 2: \n\n B") == [
        "A",
        "Inclusion criteria for part 2:",
        "B",
    ]
    assert criteria_list(": \n\n ") == [] and criteria_list(None) == []


def test_topics_xml_and_both_qrels_formats(tmp_path):
    topics = read_topics_xml(shared_file(TREC_CT / "official" / "topics2021.xml"), ["topics2021.xml"])
    assert len(topics) == 75 and topics["trec-20211"].startswith("Patient is a 45-year-old man")
    queries = {
        json.loads(x)["_id"]: json.loads(x)["text"]
        for x in (TREC_CT / "trialgpt" / "trec_2021" / "queries.jsonl").read_text().splitlines()
    }
    assert all(topics[k] == queries[k].strip() for k in topics)  # the README's claim, checked
    (tmp_path / "q.tsv").write_text("query-id\tcorpus-id\tscore\nsigir-20141\tNCT1\t2\n")
    assert [
        (j.patient_id, j.trial_id, j.label, j.line) for j in read_qrels(tmp_path / "q.tsv", ["q.tsv"])
    ] == [("sigir-20141", "NCT1", 2, 2)]


# ---------------------------------------------------------------- a source folder


def test_source_folder_in_every_trial_format(task, source, caplog):
    examples, report = task.load_with_report(source)
    by_id = {e.id: e for e in examples}
    assert sorted(by_id) == [
        "trec-20211::NCT00000001",
        "trec-20211::NCT00000002",
        "trec-20211::NCT00000003",
        "trec-20211::NCT00000004",
        "trec-20211::NCT00000005",
        "trec-20212::NCT00000002",
    ]
    xml = by_id["trec-20211::NCT00000001"]
    assert xml.input["patient"].startswith("A 62-year-old man") and xml.input["minimum_age"] == "18 Years"
    assert xml.target == {"label": 2, "label_name": "eligible", "scale": "trec"}
    assert xml.metadata["trial_source"].endswith("NCT00000001.xml") and xml.metadata["cohort"] == "trec_2021"
    assert by_id["trec-20212::NCT00000002"].input["inclusion"] == ["Pregnant", "Diabetes"]
    assert by_id["trec-20211::NCT00000003"].input["exclusion"] == ["Unable to walk"]
    assert by_id["trec-20211::NCT00000004"].input["conditions"] == ["NSCLC"]
    # a pair without trial text is skipped and listed, never silently dropped
    assert report.skipped == [
        {
            "patient_id": "trec-20212",
            "trial_id": "NCT00000006",
            "label": 0,
            "cohort": "trec_2021",
            "reason": NO_TRIAL,
            "source": f"{source / 'qrels2021.txt'}:7",
        }
    ]
    # a trial with no criteria is kept (title and conditions still tell relevance), flagged, warned about
    registry = by_id["trec-20211::NCT00000005"]
    assert registry.metadata["criteria_missing"] is True and report.summary()["trials_without_criteria"] == [
        "NCT00000005"
    ]
    assert "Inclusion criteria:\n(none listed)" in task.user_prompt(registry)
    assert f"NCT00000005 ({source / 'corpus.jsonl'}:2)" in caplog.text  # the warning names file and line
    with pytest.raises(DataError, match="NCT00000005 lists no eligibility criteria"):
        task.load_with_report(source, strict=True)


def test_ctgov_xml_inside_a_zip(task, source):
    xml = source / "ctgov" / "NCT0000xxxx" / "NCT00000001.xml"
    with zipfile.ZipFile(source / "ClinicalTrials.2021-04-27.part1.zip", "w") as zf:
        zf.write(xml, "NCT0000xxxx/NCT00000001.xml")
    xml.unlink()
    ex = {e.id: e for e in task.load(source)}["trec-20211::NCT00000001"]
    assert ex.metadata["trial_source"].endswith("part1.zip!NCT0000xxxx/NCT00000001.xml")
    assert ex.input["exclusion"] == ["Pregnancy or breast feeding", "Prior treatment with EGFR inhibitors"]


def test_shared_folder_and_sample_files(task):
    root = shared_file(TREC_CT / "samples" / "sigir_pairs_sample.tsv").parent.parent
    examples, report = task.load_with_report(root)
    cohorts = {e.metadata["cohort"] for e in examples}
    assert cohorts == {"trec_2021", "trec_2022", "sigir"}
    s = report.summary()
    assert s["skipped"] + len(examples) == s["judged_pairs"] and s["skipped_by_reason"][NO_TRIAL] > 70_000
    # SIGIR-era trial text is not used for TREC judgments made on the 2021 snapshot (and vice versa)
    sigir_trials = {e.metadata["trial_id"] for e in examples if e.metadata["cohort"] == "sigir"}
    assert all("sigir" in e.metadata["trial_source"] for e in examples if e.metadata["cohort"] == "sigir")
    assert not any("sigir" in e.metadata["trial_source"] for e in examples if e.metadata["cohort"] != "sigir")
    assert sigir_trials
    assert len(task.load(root / "samples" / "trec2021_pairs_with_trial_text_sample.jsonl")) == 100


# ---------------------------------------------------------------- bad input: named, and stop or go on as documented


def test_malformed_topics_xml_stops_naming_file_and_line(task, source):
    (source / "topics2021.xml").write_text(
        '<topics task="2021 TREC Clinical Trials">\n<topic number="1">\nx\n</topc>\n</topics>'
    )
    with pytest.raises(DataError) as e:
        task.load(source)
    assert "topics2021.xml" in str(e.value) and "line 4" in str(e.value)


def test_malformed_trial_xml_is_reported_and_skipped(task, source, caplog):
    bad = source / "ctgov" / "NCT0000xxxx" / "NCT00000001.xml"
    bad.write_text("<clinical_study>\n<id_info><nct_id>NCT00000001</nct_id>\n</clinical_study>")
    examples, report = task.load_with_report(source)
    assert "trec-20211::NCT00000001" not in {e.id for e in examples} and len(examples) == 5
    skipped = {s["trial_id"]: s["reason"] for s in report.skipped}
    assert skipped["NCT00000001"] == UNREADABLE
    assert any(str(bad) in p and "line 3" in p for p in report.trial_problems)
    assert str(bad) in caplog.text
    with pytest.raises(DataError, match="NCT00000001.xml.*line 3"):
        task.load_with_report(source, strict=True)


def test_xml_entities_are_refused(task, source):
    bomb = '<?xml version="1.0"?>\n<!DOCTYPE t [<!ENTITY a "aaaa">]>\n<topics task="2021"><topic number="1">&a;</topic></topics>'
    (source / "topics2021.xml").write_text(bomb)
    with pytest.raises(DataError, match="refused"):
        task.load(source)


@pytest.mark.parametrize(
    ("qrels", "row", "message"),
    [
        ("1 0 NCT00000001 2\n1 0 NCT00000002 0\n1 0 NCT00000003 3\n", 3, "label must be 0, 1 or 2, got '3'"),
        (
            "1 0 NCT00000001 2\n\n1 0 NCT00000002 -1\n",
            3,
            "got '-1'",
        ),  # the row is the line, blank lines count
        ("1 0 NCT00000001 eligible\n", 1, "got 'eligible'"),
        ("1 0 NCT00000001\n", 1, "expected 4 columns"),
        ("1 0 NCT00000001 2\n1 0 NCT00000001 1\n", 2, "labelled 2 on line 1 and 1 here"),
    ],
)
def test_bad_qrels_line_stops_naming_file_and_line(task, source, qrels, row, message):
    (source / "qrels2021.txt").write_text(qrels)
    with pytest.raises(DataError) as e:
        task.load(source)
    assert e.value.row == row and message in str(e.value) and str(source / "qrels2021.txt") in str(e.value)


def test_contradicting_labels_across_files_stop(task, source):
    (source / "more_qrels.tsv").write_text("query-id\tcorpus-id\tscore\ntrec-20211\tNCT00000001\t1\n")
    with pytest.raises(DataError, match=r"NCT00000001 is labelled [12] at .*:\d but [12] here"):
        task.load(source)


def test_topic_numbers_need_a_year(task, tmp_path):
    (tmp_path / "qrels.txt").write_text("1 0 NCT00000001 2\n")
    with pytest.raises(DataError, match="topic numbers need a year"):
        task.load(tmp_path)


def test_snapshot_with_swapped_label_names_is_refused(task, tmp_path):
    ex = {
        "id": "trec-20211::NCT1",
        "task": "trec_ct",
        "input": {"patient": "p", "trial_title": "t", "conditions": [], "inclusion": [], "exclusion": []},
        "target": {"label": 1, "label_name": "not relevant", "scale": "trec"},  # the bug this task replaces
        "metadata": {},
    }
    (tmp_path / "test.jsonl").write_text(json.dumps(ex) + "\n")
    with pytest.raises(DataError) as e:
        task.load(tmp_path / "test.jsonl")
    assert e.value.field == "target.label_name" and e.value.row == 1


def test_no_judgments_or_no_usable_pair(task, tmp_path):
    (tmp_path / "topics2021.xml").write_text(TOPICS_XML)
    with pytest.raises(DataError, match="no judgments found"):
        task.load(tmp_path)
    (tmp_path / "qrels2021.txt").write_text("1 0 NCT00000009 1\n")
    with pytest.raises(DataError, match="no judged pair has both patient and trial text"):
        task.load(tmp_path)


@pytest.mark.parametrize(
    ("name", "text", "why"),
    [
        pytest.param(
            "topics2021.xml", '<topic number="1">x</topic>', "XML root <topic>", id="topics-wrong-root"
        ),
        pytest.param(
            "queries.jsonl",
            '{"qid": "trec-20211", "text": "x"}\n',
            "JSONL lines are not",
            id="queries-wrong-key",
        ),
    ],
)
def test_unusable_patient_file_is_blamed_not_the_pairs(task, source, caplog, name, text, why):
    """Issue #16, cause 13: an unusable topics or queries file was skipped with one INFO line and the run
    failed later with "no judged pair has both patient and trial text". The error now names the file."""
    import logging

    (source / "topics2021.xml").unlink()
    (source / name).write_text(text)
    with caplog.at_level(logging.WARNING), pytest.raises(DataError, match="no judged pair") as e:
        task.load(source)
    assert f"{source / name} ({why}" in str(e.value)
    assert any(name in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


# ---------------------------------------------------------------- splits


def _fake(pid: str, tid: str, label: int, cohort: str = "trec_2021") -> Example:
    names = {0: "not relevant", 1: "excluded", 2: "eligible"}
    return Example(
        id=f"{pid}::{tid}",
        task="trec_ct",
        input={},
        target={"label": label, "label_name": names[label], "scale": "trec"},
        metadata={"patient_id": pid, "trial_id": tid, "cohort": cohort, "label": label},
    )


@settings(max_examples=60, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(
            st.integers(0, 30),
            st.integers(0, 40),
            st.integers(0, 2),
            st.sampled_from(["trec_2021", "trec_2022", "sigir"]),
        ),
        min_size=1,
        max_size=150,
        unique_by=lambda x: (x[0], x[1], x[3]),
    ),
    seed=st.integers(0, 10_000),
    val_frac=st.sampled_from([0.0, 0.1, 0.25]),
    test_frac=st.sampled_from([0.0, 0.2, 0.5]),
)
def test_splits_are_patient_disjoint(pairs, seed, val_frac, test_frac):
    examples = [_fake(f"{c}-{p}", f"NCT{t}", y, c) for p, t, y, c in pairs]
    splits = split_by_patient(examples, seed=seed, val_frac=val_frac, test_frac=test_frac)
    patients = {name: {e.metadata["patient_id"] for e in rows} for name, rows in splits.items()}
    assert not patients["train"] & patients["val"] and not patients["train"] & patients["test"]
    assert not patients["val"] & patients["test"]
    assert sorted(e.id for rows in splits.values() for e in rows) == sorted(
        e.id for e in examples
    )  # nothing lost
    again = split_by_patient(list(reversed(examples)), seed=seed, val_frac=val_frac, test_frac=test_frac)
    assert {k: {e.id for e in v} for k, v in again.items()} == {
        k: {e.id for e in v} for k, v in splits.items()
    }


def test_split_sizes_and_bad_fractions():
    examples = [_fake(f"trec-2021{p}", f"NCT{t}", t % 3) for p in range(1, 21) for t in range(3)]
    splits = split_by_patient(examples, seed=1, val_frac=0.1, test_frac=0.2)
    assert [len({e.metadata["patient_id"] for e in splits[s]}) for s in ("train", "val", "test")] == [
        14,
        2,
        4,
    ]
    assert split_by_patient(examples, seed=1) != split_by_patient(examples, seed=2)
    for bad in ({"val_frac": 0.5, "test_frac": 0.5}, {"test_frac": -0.1}, {"val_frac": True}):
        with pytest.raises(ConfigError):
            split_by_patient(examples, **bad)


def test_balance_downsamples_training_pairs_to_the_rarest_class():
    examples = [_fake(f"p{i}", f"NCT{i}", 0) for i in range(10)] + [
        _fake(f"q{i}", f"NCT{i}", 1) for i in range(3)
    ]
    examples += [_fake(f"r{i}", f"NCT{i}", 2) for i in range(5)]
    kept, info = balance_classes(examples, seed=0)
    assert info == {
        "before": {"eligible": 5, "excluded": 3, "not relevant": 10},
        "after": {"eligible": 3, "excluded": 3, "not relevant": 3},
        "dropped": 9,
    }
    assert kept == [e for e in examples if e in kept]  # order kept
    assert balance_classes(examples, seed=0)[0] == kept  # seeded


# ---------------------------------------------------------------- ehrmind data


def test_build_data_writes_patient_disjoint_splits(task, source, tmp_path):
    out = tmp_path / "out"
    manifest = task.build_data(source, out, seed=3, val_frac=0.0, test_frac=0.5)
    assert set(manifest["files"]) == {"train.jsonl", "val.jsonl", "test.jsonl"}
    seen: dict[str, str] = {}
    for name in manifest["files"]:
        for line in (out / name).read_text().splitlines():
            row = json.loads(line)
            assert {"id", "patient_id", "trial_id", "label", "label_name"} <= set(row)
            assert row["label"] in (0, 1, 2) and row["metadata"]["split"] == name[:-6]
            assert seen.setdefault(row["patient_id"], name) == name
    # a cohort with fewer than 3 patients cannot be split: it all goes to train
    assert manifest["n"] == 6 and manifest["files"]["train.jsonl"]["n_patients"] == 2
    assert manifest["load"]["skipped"] == 1 and manifest["options"]["seed"] == 3
    skipped = [json.loads(x) for x in (out / "skipped.jsonl").read_text().splitlines()]
    assert [s["trial_id"] for s in skipped] == ["NCT00000006"]
    # the files load back as a snapshot, unchanged
    back = task.load(out / "train.jsonl")
    assert {e.id for e in back} == {e.id for e in task.load(source)}
    with pytest.raises(DataError, match="output folder"):
        task.load(out)


def test_build_data_options(task, source, tmp_path):
    with pytest.raises(ConfigError, match="unknown trec_ct option"):
        task.build_data(source, tmp_path / "a", shuffle=True)
    with pytest.raises(ConfigError, match="drop --split"):
        task.build_data(source, tmp_path / "a", split="test")
    with pytest.raises(ConfigError, match="cohorts"):
        task.build_data(source, tmp_path / "a", cohorts=["sigir"])
    m = task.build_data(source, tmp_path / "b", balance=True, test_frac=0.0, val_frac=0.0)
    assert m["balance"] == {
        "before": {"eligible": 2, "excluded": 2, "not relevant": 2},
        "after": {"eligible": 2, "excluded": 2, "not relevant": 2},
        "dropped": 0,
    }
    m = task.build_data(
        source, tmp_path / "c", balance=True, test_frac=0.0, val_frac=0.0, cohorts="trec_2021"
    )
    assert m["options"]["cohorts"] == ["trec_2021"] and m["files"]["train.jsonl"]["n"] == 6


def test_a_table_of_pairs_with_patient_text(task, tmp_path):
    """CSV/Parquet/Hub rows: the pair, its label, the trial fields and (optionally) the patient text."""
    import pandas as pd

    row = {
        "query_id": "P1",
        "corpus_id": "NCT1",
        "label": "2",
        "brief_title": "T",
        "inclusion_criteria": "x \n\n y",
    }
    pd.DataFrame([{**row, "patient": "A 40-year-old woman."}]).to_csv(tmp_path / "pairs.csv", index=False)
    (ex,) = task.load(tmp_path / "pairs.csv")
    assert (ex.id, ex.input["patient"], ex.input["inclusion"], ex.metadata["cohort"]) == (
        "P1::NCT1",
        "A 40-year-old woman.",
        ["x", "y"],
        "custom",  # ids without a trec-/sigir- prefix: TREC labels, own cohort
    )
    pd.DataFrame([{**row, "label": "excluded", "patient": "p"}]).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError) as e:
        task.load(tmp_path / "bad.csv")
    assert (e.value.row, e.value.field) == (1, "label")


def test_trialgpt_trial_info_json_dict(task, tmp_path):
    """TrialGPT `trial_info.json`: {NCT id: record}; one bad record is reported, the others are read."""
    (tmp_path / "topics2021.xml").write_text(TOPICS_XML)
    (tmp_path / "qrels2021.txt").write_text("1 0 NCT00000003 1\n1 0 NCT00000007 0\n")
    info = {k: v for k, v in TRIAL_INFO.items() if k != "nct_id"}
    (tmp_path / "trial_info.json").write_text(
        json.dumps({"NCT00000003": info, "NCT00000007": {"phase": "2"}})
    )
    examples, report = task.load_with_report(tmp_path)
    assert [e.id for e in examples] == ["trec-20211::NCT00000003"]
    assert examples[0].input["inclusion"] == ["Lung resection", "Adults"]
    assert [s["trial_id"] for s in report.skipped] == ["NCT00000007"]
    assert any(
        "trial_info.json [NCT00000007]" in p and "not a trial record" in p for p in report.trial_problems
    )
