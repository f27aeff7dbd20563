"""Find the pieces of a TREC CT source (patients, judgments, trial text) and join them into Examples.

A source folder is searched recursively; each file is recognised by its content, not its place:

| file | recognised as |
|---|---|
| `*.xml` whose root is `<topics>` | TREC topics (patients) |
| `*.jsonl` with `_id` and `text` (no `title`) | BEIR/TrialGPT queries (patients) |
| `*.txt` named `*qrels*`, `*.tsv` with header `query-id corpus-id score` | judgments |
| `*.jsonl` with `query_id`, `corpus_id`, `label` (+ trial fields) | judgments that carry their trial text |
| `NCT########.xml`, `NCT########.json` (any folder depth), `*.zip` of them | one trial each (read lazily) |
| other `*.xml` whose root is `<clinical_study>` | one trial |
| `*.jsonl` with `_id`, `title`, `text` / with `nct_id` | trial corpus (TrialGPT corpus / trial_info) |
| `*.json` holding one trial, or `{NCT id: trial record}` (TrialGPT trial_info.json) | trial(s) |

Problems with labels or patients (malformed topics XML, a bad qrels label, contradicting labels) stop
with a DataError naming the file and line. Problems with one trial (malformed XML, a record without
criteria) are reported and the run goes on: its pairs are skipped and listed, or kept with a warning
(no criteria); `strict=True` makes them stop the run instead. A judged pair without trial or patient
text is skipped, counted by reason, and listed in the report: never silently dropped.
"""

from __future__ import annotations

import json
import logging
import re
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ehrmind.errors import DataError
from ehrmind.io import read_jsonl
from ehrmind.tasks.trec_ct.labels import label_name
from ehrmind.tasks.trec_ct.topics import (
    SNAPSHOTS,
    cohort_from_names,
    cohort_of,
    parse_label,
    read_qrels,
    read_queries_jsonl,
    read_topics_xml,
    scale_of,
    sniff_jsonl,
)
from ehrmind.tasks.trec_ct.trials import (
    NCT_RE,
    Trial,
    record_kind,
    trial_from_ctgov_xml,
    trial_from_json_file,
    trial_from_record,
)
from ehrmind.types import Example

log = logging.getLogger(__name__)

NEARBY_DEPTH = 3
"""A pairs or qrels file given alone: patients and trials are looked for this many folder levels below the
file's grandparent folder (the shared data layout keeps samples/, official/ and trialgpt/ side by side)."""
NEARBY_MAX_FILES = 50_000
BIG_JSON = 8 << 20
DATA_SUFFIXES = (".xml", ".json", ".jsonl", ".tsv", ".txt", ".zip")
PATIENT_TEXT_FIELDS = ("patient", "patient_text", "query_text")

# Skip reasons (stable strings: they are counted in manifests and reports).
NO_TRIAL = "no trial text"
OTHER_SNAPSHOT = "trial text only from another cohort's trial snapshot"
UNREADABLE = "trial record unreadable"
EMPTY_TRIAL = "trial record has no title, conditions or criteria"
NO_PATIENT = "no patient text"


def natural_key(s: str) -> tuple[Any, ...]:
    """'trec-20212' before 'trec-202110'."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", s))


# ---------------------------------------------------------------- inventory


@dataclass
class Inventory:
    """The recognised files under one or more roots."""

    topics: list[Path] = field(default_factory=list)
    queries: list[Path] = field(default_factory=list)
    qrels: list[Path] = field(default_factory=list)
    pairs: list[Path] = field(default_factory=list)
    trial_files: list[Path] = field(default_factory=list)
    lazy_trials: dict[tuple[str | None, str], list[tuple[Path, str | None]]] = field(default_factory=dict)
    snapshots: list[Path] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)
    names: dict[Path, list[str]] = field(default_factory=dict)
    """File → its name and its folders' names up to the root (for cohort hints)."""
    truncated: bool = False

    def scope(self, path: Path) -> str | None:
        """The trial-text snapshot a file belongs to, when its name or folder names a cohort."""
        return SNAPSHOTS.get(cohort_from_names(self.names.get(path, [path.name])) or "")


def _first_tag(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(8192).decode("utf-8", errors="replace")
    except OSError:
        return None
    head = re.sub(r"<\?.*?\?>|<!--.*?-->|<![^>]*>", "", head, flags=re.S)
    m = re.search(r"<([A-Za-z_][\w.-]*)", head)
    return m.group(1) if m else None


def _walk(root: Path, max_depth: int | None, max_files: int | None) -> tuple[list[Path], bool]:
    out: list[Path] = []
    stack: list[tuple[Path, int]] = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            continue
        for p in entries:
            if p.name.startswith("."):
                continue
            if p.is_dir():
                if max_depth is None or depth + 1 < max_depth:
                    stack.append((p, depth + 1))
            elif p.suffix.lower() in DATA_SUFFIXES:
                out.append(p)
                if max_files is not None and len(out) >= max_files:
                    return sorted(out), True
    return sorted(out), False


def scan(root: Path, *, max_depth: int | None = None, max_files: int | None = None) -> Inventory:
    """Recognise the data files under `root` (see the module docstring)."""
    inv = Inventory()
    files, inv.truncated = _walk(root, max_depth, max_files)
    if inv.truncated:
        log.warning("stopped looking for trec_ct files after %d files under %s", len(files), root)
    for path in files:
        rel = path.relative_to(root)
        inv.names[path] = [*reversed(rel.parts)]
        _classify(inv, path)
    return inv


def _classify(inv: Inventory, path: Path) -> None:
    suffix, name = path.suffix.lower(), path.name
    nct = NCT_RE.fullmatch(path.stem)
    if suffix in (".xml", ".json") and nct:
        inv.lazy_trials.setdefault((inv.scope(path), nct.group(0)), []).append((path, None))
    elif suffix == ".xml":
        tag = _first_tag(path)
        if tag == "topics":
            inv.topics.append(path)
        elif tag == "clinical_study":
            inv.trial_files.append(path)
        else:
            inv.ignored.append((str(path), f"XML root <{tag}> is neither <topics> nor <clinical_study>"))
    elif suffix == ".zip":
        _index_zip(inv, path)
    elif suffix == ".jsonl":
        keys = sniff_jsonl(path)
        if {"task", "input", "target"} <= keys:
            inv.snapshots.append(path)
        elif {"query_id", "corpus_id", "label"} <= keys:
            inv.pairs.append(path)
        elif {"_id", "title", "text"} <= keys or "nct_id" in keys or "protocolSection" in keys:
            inv.trial_files.append(path)
        elif {"_id", "text"} <= keys:
            inv.queries.append(path)
        else:
            inv.ignored.append((str(path), "JSONL lines are not queries, pairs or trial records"))
    elif suffix == ".json":
        _classify_json(inv, path)
    elif suffix == ".tsv":
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            header = fh.readline().strip().lower().split("\t")
        if header[:2] in (["query-id", "corpus-id"], ["query_id", "corpus_id"]):
            inv.qrels.append(path)
        else:
            inv.ignored.append((str(path), "TSV without a 'query-id corpus-id score' header"))
    elif suffix == ".txt" and "qrels" in name.lower():
        inv.qrels.append(path)


def _classify_json(inv: Inventory, path: Path) -> None:
    if path.name == "manifest.json":
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            obj = None
        if isinstance(obj, dict) and "task" in obj and "files" in obj:
            inv.snapshots.append(path)
            return
    if path.stat().st_size > BIG_JSON:  # e.g. TrialGPT trial_info.json: classify from its head, read it once
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.read(65536)
        if re.search(r'"(?:nct_id|brief_title|protocolSection)"', head):
            inv.trial_files.append(path)
        else:
            inv.ignored.append((str(path), "large JSON without trial fields near its start"))
        return
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        inv.ignored.append((str(path), f"unreadable JSON ({e})"))
        return
    if isinstance(obj, dict) and record_kind(obj):
        inv.trial_files.append(path)
        return
    first = next(iter(obj.values()), None) if isinstance(obj, dict) else None
    if isinstance(first, dict) and record_kind(first):
        inv.trial_files.append(path)  # TrialGPT trial_info.json: {NCT id: record}
    elif isinstance(first, dict) and "raw" in first:
        inv.ignored.append((str(path), "TrialGPT id2queries (LLM keyword lists): not used"))
    else:
        inv.ignored.append((str(path), "JSON is not a trial record nor {NCT id: trial record}"))


def _index_zip(inv: Inventory, path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            members = zf.namelist()
    except (OSError, zipfile.BadZipFile) as e:
        inv.ignored.append((str(path), f"unreadable zip ({e})"))
        return
    scope, n = inv.scope(path), 0
    for member in members:
        m = NCT_RE.fullmatch(Path(member).stem)
        if m and member.lower().endswith((".xml", ".json")):
            inv.lazy_trials.setdefault((scope, m.group(0)), []).append((path, member))
            n += 1
    if not n:
        inv.ignored.append((str(path), "zip holds no NCT########.xml/.json files"))


def merge(a: Inventory, b: Inventory) -> Inventory:
    out = Inventory(truncated=a.truncated or b.truncated)
    for attr in ("topics", "queries", "qrels", "pairs", "trial_files", "snapshots"):
        setattr(out, attr, sorted(set(getattr(a, attr)) | set(getattr(b, attr))))
    out.ignored = a.ignored + [x for x in b.ignored if x not in a.ignored]
    out.names = {**b.names, **a.names}
    for inv in (a, b):
        for key, locs in inv.lazy_trials.items():
            have = out.lazy_trials.setdefault(key, [])
            have.extend(x for x in locs if x not in have)
    return out


# ---------------------------------------------------------------- report


@dataclass
class LoadReport:
    """What a load found, kept and skipped (written to the manifest and to skipped.jsonl)."""

    inputs: dict[str, list[str]] = field(default_factory=dict)
    n_judgments: int = 0
    n_duplicates: int = 0
    skipped: list[dict[str, Any]] = field(default_factory=list)
    no_criteria: list[dict[str, Any]] = field(default_factory=list)
    trial_problems: list[str] = field(default_factory=list)
    ignored_files: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs,
            "judged_pairs": self.n_judgments,
            "duplicate_judgments": self.n_duplicates,
            "skipped": len(self.skipped),
            "skipped_by_reason": dict(Counter(s["reason"] for s in self.skipped).most_common()),
            "skipped_by_cohort": dict(sorted(Counter(s["cohort"] for s in self.skipped).items())),
            "kept_without_criteria": len(self.no_criteria),
            "trials_without_criteria": sorted({r["trial_id"] for r in self.no_criteria}),
            "trial_problems": self.trial_problems[:100],
            "n_trial_problems": len(self.trial_problems),
            "ignored_files": [{"file": f, "why": w} for f, w in self.ignored_files],
        }

    def log(self, n_examples: int, hint: str) -> None:
        if self.skipped:
            reasons = ", ".join(f"{r}: {n}" for r, n in self.summary()["skipped_by_reason"].items())
            log.warning(
                "trec_ct: kept %d of %d judged pairs; skipped %d (%s)%s",
                n_examples,
                self.n_judgments,
                len(self.skipped),
                reasons,
                hint,
            )
        if self.no_criteria:
            trials = {r["trial_id"]: r["source"] for r in self.no_criteria}
            shown = "; ".join(f"{t} ({src})" for t, src in sorted(trials.items())[:5])
            log.warning(
                "trec_ct: kept %d pair(s) whose trial lists no eligibility criteria (the prompt says so): %s%s",
                len(self.no_criteria),
                shown,
                f"; and {len(trials) - 5} more trials" if len(trials) > 5 else "",
            )
        for f, why in self.ignored_files:
            log.warning("trec_ct: ignored %s: %s", f, why)

    def blame(self) -> str:
        """Files that were not used, for an error saying nothing could be kept: usually the culprit (a
        topics or queries file in an unrecognised shape), otherwise the error would blame the pairs."""
        if not self.ignored_files:
            return ""
        shown = "; ".join(f"{f} ({why})" for f, why in self.ignored_files[:3])
        more = f"; and {len(self.ignored_files) - 3} more" if len(self.ignored_files) > 3 else ""
        return f". Not used, so possibly where the patients or trials were meant to come from: {shown}{more}"


# ---------------------------------------------------------------- trials


class TrialStore:
    """Trial text by (snapshot, NCT id); per-trial files are read only when a pair needs them."""

    def __init__(self, inv: Inventory, needed: set[str], report: LoadReport, strict: bool):
        self.inv, self.report, self.strict = inv, report, strict
        self.trials: dict[tuple[str | None, str], Trial] = {}
        self.problems: dict[tuple[str | None, str], str] = {}
        self._scopes: dict[str, set[str | None]] | None = None
        for path in inv.trial_files:
            for trial in self._read_corpus(path, needed):
                self.trials.setdefault((inv.scope(path), trial.trial_id), trial)

    def _problem(self, e: DataError) -> None:
        if self.strict:
            raise e
        log.warning("trec_ct: %s", e)
        self.report.trial_problems.append(str(e))

    def _read_corpus(self, path: Path, needed: set[str]) -> Iterator[Trial]:
        suffix = path.suffix.lower()
        try:
            if suffix == ".xml":
                trial = trial_from_ctgov_xml(path.read_bytes(), path)
                if trial.trial_id in needed:
                    yield trial
                return
            if suffix == ".json":
                try:
                    obj = json.loads(path.read_text(encoding="utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError) as e:
                    raise DataError(f"invalid JSON ({e})", file=path) from None
                if not isinstance(obj, dict):
                    raise DataError("expected one trial record or {NCT id: record}", file=path)
                if record_kind(obj):
                    records: Iterable[tuple[str | None, Any, str]] = [(None, obj, str(path))]
                else:
                    records = ((k, v, f"{path} [{k}]") for k, v in obj.items() if k in needed)
                for key, rec, where in records:
                    try:
                        trial = trial_from_record(rec, where, trial_id=key)
                    except DataError as e:  # one bad record does not stop the others
                        self._problem(e)
                        continue
                    if trial.trial_id in needed:
                        yield trial
                return
        except DataError as e:
            self._problem(e)
            return
        yield from self._read_jsonl_corpus(path, needed)

    def _read_jsonl_corpus(self, path: Path, needed: set[str]) -> Iterator[Trial]:
        with open(path, encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    self._problem(DataError(f"invalid JSON ({e.msg})", file=path, row=line_no))
                    continue
                if not isinstance(rec, dict):
                    self._problem(DataError("line is not a JSON object", file=path, row=line_no))
                    continue
                tid = str(rec.get("_id") or rec.get("nct_id") or "")
                if tid and tid not in needed:
                    continue
                try:
                    yield trial_from_record(rec, f"{path}:{line_no}")
                except DataError as e:
                    self._problem(DataError(str(e).split(": ", 1)[-1], file=path, row=line_no))

    def _load_lazy(self, key: tuple[str | None, str]) -> Trial | None:
        if key in self.trials:
            return self.trials[key]
        if key in self.problems:
            return None
        for path, member in self.inv.lazy_trials.get(key, []):
            where = f"{path}!{member}" if member else path
            try:
                if member:
                    with zipfile.ZipFile(path) as zf:
                        data = zf.read(member)
                else:
                    data = path.read_bytes()
                name = member or path.name
                if name.lower().endswith(".xml"):
                    trial = trial_from_ctgov_xml(data, where)
                else:
                    trial = trial_from_json_file(data, where)
            except (OSError, zipfile.BadZipFile, KeyError) as e:
                self._problem(DataError(f"cannot read ({e})", file=where))
                self.problems[key] = UNREADABLE
                continue
            except DataError as e:
                self._problem(e)
                self.problems[key] = UNREADABLE
                continue
            self.trials[key] = trial
            return trial
        return None

    def get(self, cohort: str, trial_id: str) -> tuple[Trial | None, str]:
        """The trial text for a pair of `cohort`, or (None, skip reason)."""
        own = SNAPSHOTS.get(cohort)
        for scope in dict.fromkeys([own, None]):
            trial = self._load_lazy((scope, trial_id))
            if trial is not None:
                return trial, ""
        if any(self.problems.get((s, trial_id)) for s in (own, None)):
            return None, UNREADABLE
        if self._scopes is None:
            self._scopes = {}
            for s, t in [*self.trials, *self.inv.lazy_trials]:
                self._scopes.setdefault(t, set()).add(s)
        others = self._scopes.get(trial_id, set()) - {own, None}
        return None, (OTHER_SNAPSHOT if others else NO_TRIAL)


# ---------------------------------------------------------------- assembly


@dataclass
class Pair:
    patient_id: str
    trial_id: str
    label: int
    where: str
    trial: Trial | None = None
    patient: str | None = None


def _read_pairs_file(
    path: Path, scope_store: dict[tuple[str | None, str], Trial], scope: str | None
) -> list[Pair]:
    """Judgments that carry their trial text (`query_id, corpus_id, label, brief_title, inclusion_criteria,
    exclusion_criteria`, optionally the patient text)."""
    return list(pairs_from_rows(enumerate(read_jsonl(path), start=1), path, scope_store, scope))


def pairs_from_rows(
    rows: Iterable[tuple[int, dict[str, Any]]],
    source: str | Path,
    scope_store: dict[tuple[str | None, str], Trial] | None = None,
    scope: str | None = None,
) -> Iterator[Pair]:
    for row_no, row in rows:
        for key in ("query_id", "corpus_id", "label"):
            if row.get(key) is None or str(row[key]).strip() == "":
                raise DataError("missing or empty", file=source, row=row_no, field=key)
        pid, tid = str(row["query_id"]).strip(), str(row["corpus_id"]).strip()
        raw = row["label"]
        if isinstance(raw, float) and raw.is_integer():
            raw = int(raw)  # Parquet/pandas may store labels as floats
        label = parse_label(str(raw), Path(str(source)), row_no)
        patient = next((str(row[k]).strip() for k in PATIENT_TEXT_FIELDS if row.get(k)), None)
        trial = None
        if record_kind(row) or any(k in row for k in ("brief_title", "inclusion_criteria", "title")):
            fields = {k: v for k, v in row.items() if k not in ("query_id", "label", *PATIENT_TEXT_FIELDS)}
            if "title" in fields and "brief_title" not in fields:
                fields["brief_title"] = fields.pop("title")
            trial = trial_from_record(fields, f"{source}:{row_no}", trial_id=tid)
            if scope_store is not None:
                scope_store.setdefault((scope, tid), trial)
        yield Pair(pid, tid, label, f"{source}:{row_no}", trial, patient)


def assemble(
    pair_sources: Inventory,
    resources: Inventory,
    *,
    task_name: str,
    strict: bool = False,
    extra_pairs: Sequence[Pair] = (),
) -> tuple[list[Example], LoadReport]:
    """Join the judgments of `pair_sources` (and `extra_pairs`) with patients and trial text found in
    `resources`."""
    report = LoadReport(inputs=_inputs(pair_sources, resources), ignored_files=list(resources.ignored))
    patients = _read_patients(resources)
    pairs_text: dict[tuple[str | None, str], Trial] = {}
    pairs = _read_judgments(pair_sources, extra_pairs, pairs_text, report)
    _read_other_pairs_text(pair_sources, resources, pairs_text, report, strict)
    store = _trial_store(resources, pairs, pairs_text, report, strict)
    examples: list[Example] = []
    for key in sorted(pairs, key=_pair_order):
        example = _join(pairs[key], patients, store, report, task_name, strict)
        if example is not None:
            examples.append(example)
    return examples, report


def _inputs(pair_sources: Inventory, resources: Inventory) -> dict[str, list[str]]:
    """The files a load used, by kind (for the manifest)."""
    n_lazy = sum(len(v) for v in resources.lazy_trials.values())
    return {
        "topics": [str(p) for p in resources.topics + resources.queries],
        "qrels": [str(p) for p in pair_sources.qrels],
        "pairs_with_trial_text": [str(p) for p in pair_sources.pairs],
        "trial_corpora": [str(p) for p in resources.trial_files]
        + [str(p) for p in resources.pairs if p not in pair_sources.pairs],
        "per_trial_files": [f"{n_lazy} NCT-named file(s)"] if n_lazy else [],
    }


def _read_patients(resources: Inventory) -> dict[str, str]:
    """Patient text by id: official topics first, then queries.jsonl."""
    patients: dict[str, str] = {}
    for path in resources.topics:
        _add_patients(patients, read_topics_xml(path, resources.names.get(path, [path.name])), path)
    for path in resources.queries:
        _add_patients(patients, read_queries_jsonl(path), path)
    return patients


def _read_judgments(
    pair_sources: Inventory,
    extra_pairs: Sequence[Pair],
    pairs_text: dict[tuple[str | None, str], Trial],
    report: LoadReport,
) -> dict[tuple[str, str], Pair]:
    """The judged pairs of the qrels and pairs files (the trial text those carry goes to `pairs_text`), then
    `extra_pairs`; the same pair from two sources must agree."""
    pairs: dict[tuple[str, str], Pair] = {}
    for path in pair_sources.qrels:
        for j in read_qrels(path, pair_sources.names.get(path, [path.name])):
            _add_pair(pairs, Pair(j.patient_id, j.trial_id, j.label, f"{j.file}:{j.line}"), report)
    for path in pair_sources.pairs:
        for p in _read_pairs_file(path, pairs_text, pair_sources.scope(path)):
            _add_pair(pairs, p, report)
    for p in extra_pairs:
        _add_pair(pairs, p, report)
    return pairs


def _read_other_pairs_text(
    pair_sources: Inventory,
    resources: Inventory,
    pairs_text: dict[tuple[str | None, str], Trial],
    report: LoadReport,
    strict: bool,
) -> None:
    """Trial text carried by pairs files not used as judgment sources still serves other pairs; a bad file
    is a trial problem (an error with `strict`)."""
    for path in resources.pairs:
        if path in pair_sources.pairs:
            continue
        try:
            _read_pairs_file(path, pairs_text, resources.scope(path))
        except DataError as e:
            if strict:
                raise
            report.trial_problems.append(str(e))
            log.warning("trec_ct: %s", e)


def _trial_store(
    resources: Inventory,
    pairs: dict[tuple[str, str], Pair],
    pairs_text: dict[tuple[str | None, str], Trial],
    report: LoadReport,
    strict: bool,
) -> TrialStore:
    """The trial text the pairs without their own need, with the text pairs files carry."""
    needed = {p.trial_id for p in pairs.values() if p.trial is None}
    store = TrialStore(resources, needed, report, strict)
    for key, trial in pairs_text.items():
        store.trials.setdefault(key, trial)
    return store


def _pair_order(key: tuple[str, str]) -> tuple[Any, ...]:
    """Pairs by cohort, patient (natural order) and trial."""
    return (cohort_of(key[0]), natural_key(key[0]), key[1])


def _join(
    p: Pair, patients: dict[str, str], store: TrialStore, report: LoadReport, task_name: str, strict: bool
) -> Example | None:
    """The pair's Example, or None when its patient or trial text is missing (the skip is reported). A trial
    without criteria is kept and reported (an error with `strict`)."""
    cohort = cohort_of(p.patient_id)
    skip = {"patient_id": p.patient_id, "trial_id": p.trial_id, "label": p.label, "cohort": cohort}
    patient = p.patient or patients.get(p.patient_id)
    if not patient:
        report.skipped.append({**skip, "reason": NO_PATIENT, "source": p.where})
        return None
    trial, reason = (p.trial, "") if p.trial is not None else store.get(cohort, p.trial_id)
    if trial is None:
        report.skipped.append({**skip, "reason": reason, "source": p.where})
        return None
    if not (trial.title or trial.conditions or trial.has_criteria):
        report.skipped.append({**skip, "reason": EMPTY_TRIAL, "source": trial.source})
        return None
    if not trial.has_criteria:
        report.no_criteria.append({**skip, "source": trial.source})
        if strict:
            raise DataError(f"trial {trial.trial_id} lists no eligibility criteria", file=trial.source)
    return make_example(task_name, p, patient, trial, cohort)


def _add_patients(patients: dict[str, str], new: dict[str, str], path: Path) -> None:
    differ = 0
    for pid, text in new.items():
        if pid not in patients:
            patients[pid] = text
        elif " ".join(patients[pid].split()) != " ".join(text.split()):
            differ += 1
    if differ:
        log.warning(
            "trec_ct: %d patient text(s) in %s differ from an earlier file; the first is used", differ, path
        )


def _add_pair(pairs: dict[tuple[str, str], Pair], p: Pair, report: LoadReport) -> None:
    report.n_judgments += 1
    key = (p.patient_id, p.trial_id)
    prev = pairs.get(key)
    if prev is None:
        pairs[key] = p
        return
    report.n_judgments -= 1
    report.n_duplicates += 1
    if prev.label != p.label:
        raise DataError(
            f"{p.patient_id} / {p.trial_id} is labelled {prev.label} at {prev.where} but {p.label} here",
            file=p.where,
            field="label",
        )
    if prev.trial is None and p.trial is not None:
        prev.trial = p.trial
    if prev.patient is None and p.patient is not None:
        prev.patient = p.patient


def make_example(task_name: str, p: Pair, patient: str, trial: Trial, cohort: str) -> Example:
    scale = scale_of(cohort)
    name = label_name(p.label, scale)
    inp: dict[str, Any] = {
        "patient": patient,
        "trial_title": trial.title,
        "conditions": list(trial.conditions),
        "inclusion": list(trial.inclusion),
        "exclusion": list(trial.exclusion),
    }
    if trial.unsplit:
        inp["criteria_unsplit"] = True
    for key in ("gender", "minimum_age", "maximum_age"):
        value = getattr(trial, key)
        if value:
            inp[key] = value
    meta: dict[str, Any] = {
        "patient_id": p.patient_id,
        "trial_id": p.trial_id,
        "label": p.label,
        "label_name": name,
        "category": name,
        "cohort": cohort,
        "scale": scale,
        "source": p.where,
        "trial_source": trial.source,
    }
    if not trial.has_criteria:
        meta["criteria_missing"] = True
    return Example(
        id=f"{p.patient_id}::{p.trial_id}",
        task=task_name,
        input=inp,
        target={"label": p.label, "label_name": name, "scale": scale},
        metadata=meta,
    )
