"""From an event dataset to Examples: stream subjects, label them (or take labels from a file), serialize the
timeline at each prediction time, and write `examples.jsonl` + `manifest.json`.

Memory: one subject's events, the examples' text as they are written, and small counters. Examples are
written to a temporary file and moved into place at the end (never half a file), with the content hash
`ehrmind.snapshot.examples_hash` would compute, so `ehrmind eval` runs can name the data they used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ehrmind.errors import ConfigError, DataError
from ehrmind.io import output_folder
from ehrmind.tasks.ehrshot.codes import CodeSet, Vocabulary
from ehrmind.tasks.ehrshot.labelers import (
    LabConfig,
    Labeler,
    LabelerConfig,
    LabelResult,
    NewDiagnosisConfig,
    default_config,
    make_labeler,
    rule_overrides,
)
from ehrmind.tasks.ehrshot.readers import (
    BIRTH_CODES,
    MIMIC_TIMED_CODES,
    FileLabel,
    ReadStats,
    Timeline,
    iter_timelines,
    read_label_file,
    read_splits,
    resolve_source,
)
from ehrmind.tasks.ehrshot.serialize import SerializerConfig, TimelineSerializer
from ehrmind.types import Example

if TYPE_CHECKING:
    from ehrmind.tasks.base import Task

log = logging.getLogger(__name__)

EXAMPLES = "examples.jsonl"
MANIFEST = "manifest.json"
LABEL_NAMES = {True: "yes", False: "no"}
"""The one place the label names live: target.label_name and the answer JSON use these."""

BUILD_OPTIONS: dict[str, str] = {
    "labeler": "labeler name (required), e.g. new_hypertension",
    "rules": "ehrshot (default): the benchmark's definitions; ehrmind: ehrmind's earlier rules (new diagnoses "
    "drop censored prediction times and open the window 1 minute after; dates read at 00:00). Explicit "
    "options win",
    "move_to_day_end": "events stamped exactly at midnight (date-only) are moved to 23:59 of their day, as "
    "EHRSHOT's ETL does (default true; rules=ehrmind: false)",
    "timed_codes": "codes whose midnight is a real time, kept at 00:00 by move_to_day_end (a code equal to one "
    "or starting with it and //); default: MIMIC-IV MEDS's codes read from datetime columns (LAB, MEDICATION, "
    "HOSPITAL_ADMISSION, …); [] moves every midnight event, as femr's ETL does",
    "labels": "an existing label file used as is (EHRSHOT labeled_patients.csv or MEDS labels parquet)",
    "question": "with a label file: the question its labels answer (its task, e.g. the ACES config's), asked "
    "for every label; {prediction_time} is replaced by the time. Needed unless --labeler names the labeler "
    "that made the file",
    "name": "with a label file and a question: the task's name in reports (default: the file's name)",
    "config": "YAML file of labeler settings (code sets, windows, thresholds)",
    "vocabulary": "code descriptions: OMOP CONCEPT.csv, MEDS codes.parquet or a code,description table",
    "ontology": "OMOP vocabulary folder (CONCEPT.csv, CONCEPT_ANCESTOR.csv) to expand root codes",
    "splits": "subject splits file (MEDS subject_splits.parquet, EHRSHOT person_id_map.csv)",
    "split": "keep only subjects of this split",
    "seed": "seed for max_examples_per_subject sampling",
    "max_examples_per_subject": "keep at most this many examples per subject (seeded sample)",
    "limit": "stop after this many examples",
    "min_age": "drop prediction times before this age in years (EHRSHOT's one-label sampling used 18)",
    "strict_codes": "an ICD (or user-vocabulary) code missing from its vocabulary is an error",
    "sort": "sort the events by subject in memory (for unsorted data that fits in memory)",
    "batch_rows": "rows per read batch",
    "reader": "columnar (default): numpy columns, Python objects only for the events a labeler looks at and the "
    "prompts written; rows: one Python object per event as it is read (the reference, 20-40x slower)",
    "max_tokens": "token budget of the serialized timeline",
    "tables": "event tables to include, comma-separated, or a preset: default, all, paper",
    "lab_history": "values shown per lab or vital",
    "tokenizer": "Hugging Face tokenizer to count tokens (default: 4 characters a token)",
    "show_codes": "show codes next to descriptions",
    "skip_unnamed": "leave out events known only by a numeric item id",
}
SERIALIZER_KEYS = ("max_tokens", "tables", "lab_history", "tokenizer", "show_codes", "skip_unnamed")


def _option_types() -> dict[str, Any]:
    """The type of each build option's value (None always means the default). Issue #31: `--set seed=1.5`,
    `sort=maybe`, `strict_codes=3`, `min_age=true` were taken, `min_age=nan` dropped every example,
    `batch_rows=-1` and `tables=3` were tracebacks."""
    from typing import Annotated, Literal

    from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr

    count = Annotated[StrictInt, Field(ge=1)]
    names = StrictStr | list[StrictStr]
    path = StrictStr | Path
    return {
        "labeler": StrictStr,
        "rules": Literal["ehrshot", "ehrmind"],
        **dict.fromkeys(
            ("move_to_day_end", "strict_codes", "sort", "show_codes", "skip_unnamed"), StrictBool
        ),
        "seed": Annotated[StrictInt, Field(ge=0)],
        **dict.fromkeys(
            ("max_examples_per_subject", "limit", "batch_rows", "max_tokens", "lab_history"), count
        ),
        "min_age": Annotated[StrictInt | StrictFloat, Field(ge=0, allow_inf_nan=False)],
        **dict.fromkeys(("labels", "config", "ontology", "splits", "tokenizer"), path),
        **dict.fromkeys(("split", "question", "name"), StrictStr),
        "reader": Literal["columnar", "rows"],
        **dict.fromkeys(("tables", "timed_codes"), names),
        "vocabulary": path | list[path],
    }


def check_build_options(options: dict[str, Any]) -> None:
    """ConfigError naming the first build option whose value has the wrong type or range."""
    from pydantic import TypeAdapter, ValidationError

    from ehrmind.errors import excerpt

    types = _option_types()
    for key, value in options.items():
        if value is None or key not in types:
            continue
        try:
            TypeAdapter(types[key]).validate_python(value)
        except ValidationError as e:
            first = e.errors()[0]
            raise ConfigError(f"ehrshot option {key}: {first['msg'].lower()}, got {excerpt(value)}") from None


@dataclass
class BuildStats:
    subjects: int = 0
    subjects_with_examples: int = 0
    examples: int = 0
    positives: int = 0
    truncated: int = 0
    exclusions: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {
            "subjects_read": self.subjects,
            "subjects_with_examples": self.subjects_with_examples,
            "examples": self.examples,
            "positives": self.positives,
            "negatives": self.examples - self.positives,
            "truncated": self.truncated,
            "exclusions": dict(sorted(self.exclusions.items())),
        }


class ExampleBuilder:
    """Configured once from options; `examples()` streams the Examples."""

    def __init__(self, task_name: str, source: str | Path, **options: Any):
        _check_option_names(options)
        check_build_options(options)
        _check_label_source(options)
        self.question: str | None = options.get("question")
        self.task_name = task_name
        self.source = resolve_source(source)
        self.options = options
        self._set_labeler(options)
        self.vocab = _vocabulary(options.get("vocabulary"), self.source.codes_file)
        self.serializer_config = SerializerConfig(
            **{k: options[k] for k in SERIALIZER_KEYS if options.get(k) is not None}
        )
        self.serializer = TimelineSerializer(self.serializer_config, self.vocab)
        self._set_subjects(options)
        self.read_stats = ReadStats()
        self.stats = BuildStats()
        self.unmatched_label_subjects = 0

    def _set_labeler(self, options: dict[str, Any]) -> None:
        """The rules, the labeler's settings (its defaults, the rules', a config file's, then options), its
        codes and the labeler."""
        # a label file with its own question: no labeler labels or asks anything; a neutral config keeps the
        # plumbing (serializer, manifest) uniform and is recorded as not used
        config = default_config(str(options.get("labeler") or "guo_los"))
        self.rules = str(options.get("rules") or "ehrshot")
        overrides: dict[str, Any] = rule_overrides(config, self.rules)
        self.move_to_day_end: bool = _day_end(options.get("move_to_day_end"), self.rules)
        self.timed_codes = _timed_codes(options.get("timed_codes"))
        if options.get("config"):
            overrides.update(_read_yaml(Path(options["config"])))
        overrides.update({k: v for k, v in options.items() if k in _labeler_fields()})
        self.labeler_config: LabelerConfig = config.with_overrides(overrides) if overrides else config
        codes, self.ontology_info = _labeler_codes(self.labeler_config, options.get("ontology"))
        self.labeler: Labeler = make_labeler(self.labeler_config, codes)

    def _set_subjects(self, options: dict[str, Any]) -> None:
        """Which subjects and labels are used: splits, a label file, sampling and limits."""
        splits_path = options.get("splits") or self.source.splits_file
        self.splits = read_splits(splits_path) if splits_path else {}
        self.split = options.get("split")
        if self.split and not self.splits:
            raise ConfigError(
                f"split={self.split!r} needs subject splits: none found beside the data; pass --set splits=PATH"
            )
        self.labels: dict[Any, list[FileLabel]] | None = (
            read_label_file(options["labels"]) if options.get("labels") else None
        )
        self.seed = int(options.get("seed") or 0)
        self.per_subject: int | None = options.get("max_examples_per_subject")  # >= 1: check_build_options
        self.limit: int | None = options.get("limit")
        self.min_age = options.get("min_age")

    def examples(self) -> Iterator[Example]:
        opts = self.options
        timelines = iter_timelines(
            self.source,
            vocab=self.vocab,
            strict_codes=bool(opts.get("strict_codes")),
            sort=bool(opts.get("sort")),
            batch_rows=int(opts.get("batch_rows") or 65_536),
            stats=self.read_stats,
            day_end=self.move_to_day_end,
            timed_codes=self.timed_codes,
            reader=str(opts.get("reader") or "columnar"),
            wanted=self.labeler.wanted if self.labels is None else _no_events,
        )
        finished = False
        try:
            for tl in timelines:
                self.stats.subjects += 1
                split = self.splits.get(tl.subject_id)
                if self.split and split != self.split:
                    continue
                for made, ex in enumerate(self._subject_examples(tl, split)):
                    self.stats.subjects_with_examples += made == 0
                    self.stats.examples += 1
                    self.stats.positives += bool(ex.target["label"])
                    self.stats.truncated += bool(ex.metadata["truncated"])
                    yield ex
                    if self.limit and self.stats.examples >= self.limit:
                        return
            finished = True
        finally:
            timelines.close()
            self._report(finished)

    def _report(self, finished: bool) -> None:
        """Counts for the manifest and warnings; label-file leftovers only mean something after a full pass."""
        if self.labels is not None:
            self.unmatched_label_subjects = len(self.labels)
            if self.labels and finished:
                log.warning(
                    "%d label-file subjects have no events in %s; their labels were skipped",
                    len(self.labels),
                    self.source.path,
                )
        if self.read_stats.untimed_events:
            log.warning(
                "%d rows of %d codes have no time and were read as static facts (MEDS's rule), so they are never "
                "a prediction time or an outcome, e.g. %s",
                sum(self.read_stats.untimed_events.values()),
                len(self.read_stats.untimed_events),
                ", ".join(self.read_stats.untimed_examples[:3]),
            )
        if self.read_stats.unknown_codes:
            log.warning(
                "%d distinct codes (%d rows) are not in their vocabulary, e.g. %s; shown as they are",
                len(self.read_stats.unknown_codes),
                sum(self.read_stats.unknown_codes.values()),
                ", ".join(self.read_stats.unknown_examples[:3]),
            )

    def _labels(self, tl: Timeline) -> list[LabelResult]:
        if self.labels is not None:
            rows = self.labels.pop(tl.subject_id, [])
            return [LabelResult(r.prediction_time, r.value, r.label_class) for r in rows]
        return self.labeler.label(tl.for_labels, self.stats.exclusions)

    def _subject_examples(self, tl: Timeline, split: str | None) -> Iterator[Example]:
        results = self._labels(tl)
        if self.min_age is not None and results:
            birth = next((e.time for e in tl.for_labels.timed if e.code in BIRTH_CODES), None)
            kept = [
                r for r in results if birth is None or _age(birth, r.prediction_time) >= float(self.min_age)
            ]
            self.stats.exclusions["excluded: younger than min_age"] += len(results) - len(kept)
            results = kept
        seen: set[datetime] = set()
        unique = []
        for r in results:
            if r.prediction_time in seen:
                self.stats.exclusions["excluded: duplicate prediction time"] += 1
                continue
            seen.add(r.prediction_time)
            unique.append(r)
        results = unique
        if self.per_subject and len(results) > self.per_subject:
            ranked = sorted(results, key=lambda r: _rank(self.seed, tl.subject_id, r.prediction_time))
            keep = set(id(r) for r in ranked[: self.per_subject])
            self.stats.exclusions["excluded: over max_examples_per_subject"] += len(results) - len(keep)
            results = [r for r in results if id(r) in keep]
        for r in results:
            yield self.example(tl, r, split)

    @property
    def label_name(self) -> str:
        """The task's name in metadata and reports: the labeler, or a label file's own name."""
        if self.question is None:
            return self.labeler.name
        return str(self.options.get("name") or Path(str(self.options["labels"])).stem)

    def example(self, tl: Timeline, r: LabelResult, split: str | None) -> Example:
        ex = make_example(self.task_name, self.labeler, self.serializer, tl, r, split)
        if self.question is None:
            return ex
        asked = self.question.replace("{prediction_time}", f"{r.prediction_time:%Y-%m-%d %H:%M}")
        name = self.label_name
        return dataclasses.replace(
            ex,
            input={**ex.input, "question": asked},
            metadata={**ex.metadata, "labeler": name, "category": name},
        )

    def manifest(self, n: int, sha: str, counts: dict[str, Any]) -> dict[str, Any]:
        from ehrmind import __version__
        from ehrmind.io import sha256_file

        src = self.source.path
        return {
            "n": n,
            "files": {EXAMPLES: {"n": n, "sha256": sha, "counts": counts}},
            "source": str(src),
            "source_sha256": sha256_file(src) if src.is_file() else None,
            "source_files": [str(f) for f in self.source.files],
            "labeler": self.label_name,
            "question": self.question,
            "rules": self.rules,
            "move_to_day_end": self.move_to_day_end,
            "timed_codes": list(self.timed_codes),
            "labeler_config": None
            if self.question is not None and not self.options.get("labeler")
            else _jsonable(dataclasses.asdict(self.labeler_config)),
            "labels_file": str(self.options["labels"]) if self.options.get("labels") else None,
            "label_file_subjects_without_events": self.unmatched_label_subjects
            if self.labels is not None
            else None,
            "ontology": self.ontology_info,
            "serializer": _jsonable(dataclasses.asdict(self.serializer_config)),
            "vocabularies": self.vocab.sources,
            "splits": str(self.options.get("splits") or self.source.splits_file or "") or None,
            "read": self.read_stats.to_dict(),
            "stats": self.stats.to_dict(),
            "options": _jsonable({k: v for k, v in self.options.items()}),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "ehrmind_version": __version__,
        }


def make_example(
    task_name: str,
    labeler: Labeler,
    serializer: TimelineSerializer,
    tl: Timeline,
    r: LabelResult,
    split: str | None = None,
) -> Example:
    """One Example: the timeline serialized up to the label's prediction time, the labeler's question, the
    label as target (`LABEL_NAMES`), and metadata for reports (never for the prompt)."""
    ser = serializer.serialize(tl, r.prediction_time)
    pt = r.prediction_time.isoformat()
    target: dict[str, Any] = {"label": bool(r.value), "label_name": LABEL_NAMES[bool(r.value)]}
    metadata: dict[str, Any] = {
        "subject_id": tl.subject_id,
        "prediction_time": pt,
        "label": bool(r.value),
        "labeler": labeler.name,
        "category": labeler.name,
        "n_events_before": ser.n_events_before,
        "n_events_used": ser.n_events_used,
        "truncated": ser.truncated,
        "approx_tokens": ser.approx_tokens,
    }
    if r.label_class is not None:
        target["label_class"] = r.label_class
        metadata["label_class"] = r.label_class
    if split is not None:
        metadata["split"] = split
    return Example(
        id=f"{tl.subject_id}@{pt}",
        task=task_name,
        input={"timeline": ser.text, "question": labeler.question(r.prediction_time, r.detail)},
        target=target,
        metadata=metadata,
    )


def build_snapshot(task: Task, source: str | Path, out_dir: str | Path, **options: Any) -> dict[str, Any]:
    """`ehrmind data --task ehrshot`: stream Examples into `examples.jsonl` (each line an Example plus
    top-level id, subject_id, prediction_time and label) and write `manifest.json`."""
    from ehrmind.io import atomic_write_json

    builder = ExampleBuilder(task.name, source, **options)
    created = not Path(out_dir).exists()
    out = output_folder(out_dir)
    h = hashlib.sha256()
    counts: dict[str, Counter[str]] = {"category": Counter(), "label": Counter(), "split": Counter()}
    n = 0
    fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{EXAMPLES}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for ex in builder.examples():
                d = ex.to_dict()
                h.update(json.dumps(d, sort_keys=True, ensure_ascii=False, default=str).encode())
                h.update(b"\n")
                line = {
                    **d,
                    "subject_id": ex.metadata["subject_id"],
                    "prediction_time": ex.metadata["prediction_time"],
                    "label": ex.target["label"],
                }
                fh.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
                n += 1
                counts["category"][ex.metadata["category"]] += 1
                counts["label"][ex.target["label_name"]] += 1
                counts["split"][str(ex.metadata.get("split", ""))] += 1
            fh.flush()
            os.fsync(fh.fileno())
        if n == 0:
            raise DataError(_no_examples(builder), file=source)
        os.replace(tmp, out / EXAMPLES)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if created:  # a failed run leaves no empty folder behind (issue #16, cause 14)
            with contextlib.suppress(OSError):
                out.rmdir()
        raise
    manifest = {
        "task": task.name,
        "task_version": task.version,
        **builder.manifest(n, h.hexdigest(), {k: dict(sorted(v.items())) for k, v in counts.items()}),
    }
    atomic_write_json(out / MANIFEST, manifest)
    return manifest


def _no_examples(builder: ExampleBuilder) -> str:
    """Why a source gave no example at all: an empty source, or every prediction time excluded."""
    if builder.read_stats.rows == 0:
        return "no events: the source has no rows"
    excluded = dict(builder.stats.exclusions.most_common(4))
    return (
        f"no examples from {builder.read_stats.rows:,} rows of {builder.read_stats.subjects:,} subjects: "
        f"the labeler's events never occur or every prediction time was excluded ({excluded or 'none'})"
    )


def build_examples(task_name: str, source: str | Path, **options: Any) -> list[Example]:
    """All Examples in memory (for `Task.load` on raw event data)."""
    return list(ExampleBuilder(task_name, source, **options).examples())


# ---------------------------------------------------------------------------------------------- helpers


def _check_option_names(options: dict[str, Any]) -> None:
    """ConfigError naming the options that are neither build nor labeler options."""
    unknown = sorted(set(options) - set(BUILD_OPTIONS) - set(_labeler_fields()))
    if unknown:
        raise ConfigError(
            f"unknown ehrshot option(s): {', '.join(unknown)}; build options: {', '.join(BUILD_OPTIONS)}; "
            f"labeler options: {', '.join(sorted(_labeler_fields()))}"
        )


def _check_label_source(options: dict[str, Any]) -> None:
    """Labels come from a labeler, or from a label file with the question its labels answer."""
    question, labels = options.get("question"), options.get("labels")
    if question is not None:
        if not labels:
            raise ConfigError("question applies to a label file (--set labels=PATH); a labeler asks its own")
        if not isinstance(question, str) or not question.strip():
            raise ConfigError("question must be the text asked with every label of the file")
    elif options.get("labeler"):
        return
    elif labels:
        raise ConfigError(
            "a label file needs the question its labels answer: --set question='Will … ?' (its task, e.g. "
            "the ACES config's), or --labeler NAME if ehrmind's labeler NAME made the file"
        )
    else:
        raise ConfigError(
            "ehrshot needs a labeler: --labeler NAME (e.g. new_hypertension); see docs/ehrshot.md"
        )


def _day_end(value: bool | None, rules: str) -> bool:
    """The move_to_day_end option (its type checked by `check_build_options`); by default on, except with
    rules=ehrmind."""
    return rules != "ehrmind" if value is None else value


def _timed_codes(value: str | list[str] | None) -> tuple[str, ...]:
    """The timed_codes option (its type checked by `check_build_options`): a list, or comma-separated text,
    of code prefixes; default MIMIC's."""
    if value is None:
        return MIMIC_TIMED_CODES
    prefixes = value.split(",") if isinstance(value, str) else value
    if isinstance(value, list) and not all(v.strip() for v in value):
        raise ConfigError(
            f"timed_codes must be a list of code prefixes, e.g. [LAB, MEDICATION], got {value!r}"
        )
    return tuple(v.strip() for v in prefixes if v.strip())


def _labeler_codes(config: LabelerConfig, ontology: Any) -> tuple[CodeSet | None, dict[str, Any] | None]:
    """The code set of a labeler that has one, expanded to its descendants with an ontology, and what the
    expansion did (None without an ontology)."""
    if not isinstance(config, (NewDiagnosisConfig, LabConfig)):
        return None, None
    codes = CodeSet.parse(config.codes)
    if not ontology:
        return codes, None
    from ehrmind.tasks.ehrshot.ontology import expand_descendants

    return expand_descendants(codes, ontology)


def _vocabulary(files: Any, codes_file: Path | None) -> Vocabulary:
    """The code descriptions: the dataset's own codes file first, then the vocabulary option's file(s)."""
    files = files or []
    files = [files] if isinstance(files, (str, Path)) else list(files)
    if codes_file is not None:
        files = [codes_file, *files]
    return Vocabulary.load(files)


def _labeler_fields() -> set[str]:
    from ehrmind.tasks.ehrshot.labelers import (
        LabConfig,
        LongStayConfig,
        NewDiagnosisConfig,
        ReadmissionConfig,
        VisitConfig,
    )

    names: set[str] = set()
    for cls in (NewDiagnosisConfig, ReadmissionConfig, LongStayConfig, LabConfig, VisitConfig):
        names |= {f.name for f in dataclasses.fields(cls)}
    return names - {"name"}


def _read_yaml(path: Path) -> dict[str, Any]:
    from ehrmind.io import read_yaml

    data = read_yaml(path, "labeler config") or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of labeler settings")
    return data


def _no_events(code: str, canonical: str) -> bool:
    """With a label file no labeler reads events (births are kept for `min_age` whatever this says)."""
    return False


def _age(birth: datetime, t: datetime) -> float:
    return (t - birth).days / 365.25


def _rank(seed: int, subject: Any, t: datetime) -> str:
    """A deterministic pseudo-random rank per (seed, subject, time), independent of other subjects."""
    return hashlib.sha256(f"{seed}|{subject}|{t.isoformat()}".encode()).hexdigest()


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))
