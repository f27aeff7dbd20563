"""Patients and judgments: TREC topics XML, BEIR-style queries.jsonl, TREC qrels and TrialGPT qrels TSV.

Patient ids follow TrialGPT: `trec-<year><topic>` (trec-20211 is topic 1 of 2021) and `sigir-<year><topic>`;
other ids are kept as they are. The cohort (`trec_2021`, `trec_2022`, `sigir`, or `custom`) is read from
the id, and for files that only carry topic numbers (official topics XML and qrels) from the year in the
XML `task` attribute, the file name (`qrels2021.txt`) or a folder name (`trec_2021/`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ehrmind.errors import DataError, excerpt
from ehrmind.tasks.trec_ct.trials import parse_xml_bytes

_TREC_ID = re.compile(r"^trec-(20\d\d)\d+$")
_COHORT_IN_NAME = [
    (re.compile(r"sigir", re.I), lambda m: "sigir"),
    (re.compile(r"trec[_-]?(20\d\d)", re.I), lambda m: f"trec_{m.group(1)}"),
    (re.compile(r"(?:topics|qrels)[_-]?(20\d\d)", re.I), lambda m: f"trec_{m.group(1)}"),
]
CTGOV_2021 = "clinicaltrials.gov 2021-04-27"
SNAPSHOTS = {"trec_2021": CTGOV_2021, "trec_2022": CTGOV_2021, "sigir": "sigir 2016"}
"""Cohort → the trial-text snapshot its judgments were made on (TREC 2021 and 2022 share one)."""


def cohort_of(patient_id: str) -> str:
    """`trec-20211` → trec_2021, `sigir-20141` → sigir, anything else → custom."""
    m = _TREC_ID.match(patient_id)
    if m:
        return f"trec_{m.group(1)}"
    if patient_id.startswith("sigir-"):
        return "sigir"
    return "custom"


def scale_of(cohort: str) -> str:
    """The label scale of a cohort: SIGIR grades referral, every other cohort uses the TREC labels."""
    return "sigir" if cohort == "sigir" else "trec"


def cohort_from_names(names: Sequence[str]) -> str | None:
    """The cohort named by a file or folder name, checked from the file name up (`qrels2021.txt`,
    `trec_2022/`, `sigir_trial_info.jsonl`); None when no name says."""
    for name in names:
        for pattern, make in _COHORT_IN_NAME:
            m = pattern.search(name)
            if m:
                return make(m)
    return None


def trec_patient_id(cohort: str | None, topic: str, where: str | Path, row: int | None = None) -> str:
    """Patient id for an official topic number; needs the cohort (year) to be known."""
    topic = topic.strip()
    if not topic.isdigit():
        return topic  # already an id such as trec-20211
    if cohort is None or not cohort.startswith("trec_"):
        raise DataError(
            "topic numbers need a year: name the file like qrels2021.txt / topics2022.xml, or put it in a "
            "folder named trec_2021 / trec_2022",
            file=where,
            row=row,
        )
    return f"trec-{cohort[5:]}{int(topic)}"


# ---------------------------------------------------------------- topics


def read_topics_xml(path: Path, names: Sequence[str]) -> dict[str, str]:
    """Official TREC CT topics (`<topics task="2021 TREC Clinical Trials"><topic number="1">…`) → {patient id:
    text}. Malformed XML, a topic without number or text, or a repeated number stops with DataError."""
    root = parse_xml_bytes(path.read_bytes(), path)
    if root.tag != "topics":
        raise DataError(f"expected a <topics> document, found <{root.tag}>", file=path)
    m = re.search(r"(20\d\d)", root.get("task", ""))
    cohort = f"trec_{m.group(1)}" if m else cohort_from_names(names)
    out: dict[str, str] = {}
    for i, topic in enumerate(root.iter("topic"), start=1):
        number = (topic.get("number") or "").strip()
        if not number:
            raise DataError(f"topic #{i} has no number attribute", file=path, field="number")
        text = "".join(topic.itertext()).strip()
        if not text:
            raise DataError(f"topic {number} has no text", file=path, field="topic")
        pid = trec_patient_id(cohort, number, path)
        if pid in out:
            raise DataError(f"topic {number} appears twice", file=path, field="number")
        out[pid] = text
    if not out:
        raise DataError("no <topic> elements", file=path)
    return out


def read_queries_jsonl(path: Path) -> dict[str, str]:
    """BEIR/TrialGPT queries.jsonl (`{"_id": "trec-20211", "text": …}`) → {patient id: text}."""
    from ehrmind.io import read_jsonl

    out: dict[str, str] = {}
    for row_no, row in enumerate(read_jsonl(path), start=1):
        for key in ("_id", "text"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise DataError("missing or empty", file=path, row=row_no, field=key)
        pid = row["_id"].strip()
        if pid in out:
            raise DataError(f"patient {pid} appears twice", file=path, row=row_no, field="_id")
        out[pid] = row["text"].strip()
    return out


# ---------------------------------------------------------------- qrels


@dataclass(frozen=True)
class Judgment:
    """One (patient, trial, label) line of a qrels file."""

    patient_id: str
    trial_id: str
    label: int
    file: str
    line: int


def parse_label(raw: str, path: Path, line: int) -> int:
    s = raw.strip()
    if s not in ("0", "1", "2"):
        raise DataError(
            f"label must be 0, 1 or 2, got {excerpt(raw.strip())}", file=path, row=line, field="label"
        )
    return int(s)


def read_qrels(path: Path, names: Sequence[str]) -> list[Judgment]:
    """TREC qrels (`TOPIC 0 NCTID LABEL`, whitespace-separated) or TrialGPT TSV (`query-id<TAB>corpus-id<TAB>
    score`, header optional; a `.tsv` file, a header or tabs select it). Rows are the file's line numbers. A bad label, a wrong column count or the same pair
    twice with different labels stops with DataError naming the file and line."""
    cohort = cohort_from_names(names)
    try:
        lines = path.read_text(encoding="utf-8-sig").split("\n")
    except UnicodeDecodeError as e:
        raise DataError(f"not UTF-8 text ({e.reason})", file=path) from None
    out: list[Judgment] = []
    seen: dict[tuple[str, str], Judgment] = {}
    first = next((x for x in lines if x.strip()), "")
    header = first.strip().split("\t")[0].strip().lower() in ("query-id", "query_id", "qid")
    tsv = path.suffix.lower() == ".tsv" or header or "\t" in first
    for line_no, raw in enumerate(lines, start=1):
        if not raw.strip() or (header and line_no == 1):
            continue
        cols = [c.strip() for c in (raw.split("\t") if tsv else raw.split())]
        if tsv and len(cols) == 3:
            pid, trial, label_raw = cols
        elif not tsv and len(cols) == 4:
            pid = trec_patient_id(cohort, cols[0], path, line_no)
            trial, label_raw = cols[2], cols[3]
        else:
            raise DataError(
                f"expected {'3 tab-separated columns (query-id corpus-id score)' if tsv else '4 columns (TOPIC 0 NCTID LABEL)'}"
                f", got {len(cols)}",
                file=path,
                row=line_no,
            )
        if not pid or not trial:
            raise DataError("empty patient or trial id", file=path, row=line_no)
        j = Judgment(pid, trial, parse_label(label_raw, path, line_no), str(path), line_no)
        prev = seen.get((pid, trial))
        if prev is not None:
            if prev.label != j.label:
                raise DataError(
                    f"{pid} / {trial} is labelled {prev.label} on line {prev.line} and {j.label} here",
                    file=path,
                    row=line_no,
                    field="label",
                )
            continue
        seen[(pid, trial)] = j
        out.append(j)
    if not out:
        raise DataError("no judgments", file=path)
    return out


def sniff_jsonl(path: Path) -> set[str]:
    """Keys of the first JSON object in a JSONL file (empty when unreadable)."""
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    obj = json.loads(line)
                    return set(obj) if isinstance(obj, dict) else set()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return set()
    return set()
