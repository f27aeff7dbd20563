"""The `trec_ct` task: TREC Clinical Trials 2021/2022 (and SIGIR 2016) patient–trial matching.

Given a patient note and a trial's title, conditions and criteria, answer `{"prediction": "not relevant" |
"excluded" | "eligible"}`. See docs/trec_ct.md for the data layout, the answer rules and the metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from ehrmind.errors import ConfigError, DataError, excerpt
from ehrmind.registry import register_task
from ehrmind.tasks.analysis import Groups
from ehrmind.tasks.base import Task, TaskOptions, scorable
from ehrmind.tasks.trec_ct.analyses import Classification, Paper, Ranking, TrecRun
from ehrmind.tasks.trec_ct.labels import LABELS, SCALES, SIGIR_LABELS, parse_prediction
from ehrmind.tasks.trec_ct.prompts import (
    CONTRACT,
    TASK_TEXT,
    TokenCounter,
    approx_tokens,
    build_user_prompt,
)
from ehrmind.tasks.trec_ct.sources import (
    NEARBY_DEPTH,
    NEARBY_MAX_FILES,
    Inventory,
    LoadReport,
    assemble,
    merge,
    pairs_from_rows,
    scan,
)
from ehrmind.tasks.trec_ct.splits import SPLITS, balance_classes, split_by_patient
from ehrmind.tasks.trec_ct.topics import sniff_jsonl
from ehrmind.types import Example

log = logging.getLogger(__name__)

SKIPPED = "skipped.jsonl"
BUILD_DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "val_frac": 0.1,
    "test_frac": 0.2,
    "balance": False,
    "cohorts": None,
    "strict": False,
}
"""`ehrmind data --task trec_ct` options (`--seed`, `--set key=value`)."""
LINE_FIELDS = ("patient_id", "trial_id", "label", "label_name", "cohort", "scale")
"""Metadata repeated at the top level of each train/val/test line, for tools that read lines directly."""


def _file_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".tsv", ".txt"):
        return "qrels"
    if suffix == ".jsonl":
        keys = sniff_jsonl(path)
        if {"task", "input", "target"} <= keys:
            return "snapshot"
        if {"query_id", "corpus_id", "label"} <= keys:
            return "pairs"
    return "table"


def _nearby(path: Path) -> tuple[Path, Inventory]:
    """Patients and trials for a file given alone: searched under the file's grandparent folder."""
    root = path.resolve().parent
    if root.parent != root.parent.parent and root.parent != Path.home():
        root = root.parent
    return root, scan(root, max_depth=NEARBY_DEPTH, max_files=NEARBY_MAX_FILES)


class TrecCtOptions(TaskOptions):
    prompt_token_budget: int = Field(
        3072,
        ge=256,
        description="Tokens the system + user prompt must fit in: the trial's criteria are shortened to fit, "
        "never the patient note.",
    )
    token_counter: TokenCounter | None = Field(
        None, description="Counts a text's tokens for the budget (default: characters / 4); Python only."
    )

    renamed: ClassVar[dict[str, str]] = {
        "max_prompt_tokens": "use prompt_token_budget (the criteria are shortened to fit it); a recipe's "
        "top-level max_prompt_tokens drops longer training prompts instead"
    }


@register_task("trec_ct")
class TrecCtTask(Task):
    """TREC Clinical Trials patient–trial matching (Roberts et al., TREC 2021/2022; Koopman & Zuccon,
    SIGIR 2016): classify a (patient, trial) pair as not relevant, excluded or eligible."""

    version = "2"
    """2: the direct-mode instruction written by the output contract ("Give only the final decision …")."""
    contract = CONTRACT
    groups = Groups(
        by=("category", "cohort"), rows=("patient_id", "trial_id", "label", "scale"), split=("patient_id",)
    )
    analyses = (Classification(), Ranking(), TrecRun(), Paper())
    Options = TrecCtOptions

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.prompt_token_budget: int = self.options.prompt_token_budget
        """Budget for system + user prompt; criteria are shortened (never the note) to fit it."""
        self.count_tokens: TokenCounter = self.options.token_counter or approx_tokens
        """Token counter for the budget; default: characters / 4. Pass `lambda s: len(tok(s).input_ids)`."""

    # ------------------------------------------------------------------ loading
    def load(self, source: str | Path, split: str | None = None) -> list[Example]:
        """Examples from an `ehrmind data` snapshot (train/val/test.jsonl), a source folder (see
        docs/trec_ct.md), a qrels file or a pairs JSONL file (patients and trials then come from the folders
        around it), or a table of pairs with patient and trial text."""
        return self.load_with_report(source, split)[0]

    def load_with_report(
        self, source: str | Path, split: str | None = None, *, strict: bool = False
    ) -> tuple[list[Example], LoadReport | None]:
        """`load`, plus what was found, kept and skipped (None for snapshots and Hub datasets)."""
        path = Path(source)
        if path.is_dir():
            if (path / "manifest.json").exists() and any((path / f"{s}.jsonl").exists() for s in SPLITS):
                raise DataError(
                    "this is an `ehrmind data` output folder; pass one of its files (train.jsonl, val.jsonl, "
                    "test.jsonl)",
                    file=path,
                )
            inv = scan(path)
            for snap in inv.snapshots:
                log.warning("trec_ct: ignored %s: an ehrmind snapshot inside a source folder", snap)
            if not inv.qrels and not inv.pairs:
                raise DataError(
                    "no judgments found: expected qrels (*qrels*.txt, a query-id/corpus-id/score TSV) or a "
                    "pairs JSONL (query_id, corpus_id, label, trial fields) somewhere in this folder",
                    file=path,
                )
            return self._finish(*assemble(inv, inv, task_name=self.name, strict=strict), where=path)
        if path.is_file():
            kind = _file_kind(path)
            if kind in ("qrels", "pairs"):
                root, nearby = _nearby(path)
                resolved = path.resolve()
                own = Inventory(names={resolved: list(reversed(resolved.relative_to(root).parts))})
                (own.qrels if kind == "qrels" else own.pairs).append(resolved)
                resources = merge(own, nearby)
                return self._finish(*assemble(own, resources, task_name=self.name, strict=strict), where=path)
            return self._load_file(path), None
        return super().load(source, split), None

    def _finish(
        self, examples: list[Example], report: LoadReport, where: Path
    ) -> tuple[list[Example], LoadReport]:
        report.log(len(examples), f"; `ehrmind data --source {where}` lists them in {SKIPPED}")
        if not examples:
            raise DataError(
                f"no judged pair has both patient and trial text ({report.summary()['skipped_by_reason']})"
                + report.blame(),
                file=where,
            )
        return examples, report

    def _load_file(self, path: Path) -> list[Example]:
        examples = super()._load_file(path)
        for row_no, ex in enumerate(examples, start=1):
            check_target(ex, path, row_no)
        return examples

    def records_to_examples(
        self, rows: Iterable[tuple[int, dict[str, Any]]], source: str | Path
    ) -> Iterator[Example]:
        """Rows of (query_id, corpus_id, label, brief_title, inclusion_criteria, exclusion_criteria[, patient])
        from a CSV/Parquet/JSON table or a Hub dataset; patient text missing from a row is looked up in the
        topics found around a local file."""
        pairs = list(pairs_from_rows(rows, source))
        local = Path(str(source))
        resources = (
            _nearby(local)[1] if local.is_file() and any(p.patient is None for p in pairs) else Inventory()
        )
        examples, report = assemble(Inventory(), resources, task_name=self.name, extra_pairs=pairs)
        yield from self._finish(examples, report, local)[0]

    def build_data(self, source: str | Path, out_dir: str | Path, **options: Any) -> dict[str, Any]:
        """`ehrmind data --task trec_ct`: patient-disjoint train.jsonl / val.jsonl / test.jsonl, skipped.jsonl
        (judged pairs left out, with the reason) and manifest.json. SIGIR pairs (ranking only) all go to
        test. Options: seed (0), val_frac (0.1),
        test_frac (0.2), balance (false: down-sample training pairs to the rarest class), cohorts (all; e.g.
        [trec_2021, trec_2022]), strict (false: a bad trial record stops the run instead of being skipped)."""
        opts = _build_options(options)
        examples, report = self.load_with_report(source, strict=opts["strict"])
        if opts["cohorts"]:
            present = sorted({str(ex.metadata.get("cohort")) for ex in examples})
            missing = [c for c in opts["cohorts"] if c not in present]
            if missing:
                raise ConfigError(f"cohorts {missing} not in the data; present: {present}")
            examples = [ex for ex in examples if ex.metadata.get("cohort") in opts["cohorts"]]
        # SIGIR pairs have no eligibility label to train on: all their patients go to test, for ranking
        classifiable = [ex for ex in examples if scorable(self, ex)]
        splits = split_by_patient(
            classifiable, seed=opts["seed"], val_frac=opts["val_frac"], test_frac=opts["test_frac"]
        )
        splits["test"] += [ex for ex in examples if not scorable(self, ex)]
        balance_info = None
        if opts["balance"]:
            splits["train"], balance_info = balance_classes(splits["train"], seed=opts["seed"])
        files = {
            f"{name}.jsonl": [replace(ex, metadata={**ex.metadata, "split": name}) for ex in rows]
            for name, rows in splits.items()
        }
        return write_split_snapshot(self, files, source, out_dir, opts, report, balance_info)

    # ------------------------------------------------------------------ prompting
    def task_text(self) -> str:
        return TASK_TEXT

    def user_prompt(self, example: Example) -> str:
        return self.fit_prompt(example)[0]

    def fit_prompt(self, example: Example) -> tuple[str, dict[str, Any]]:
        """The user turn and what the token budget left out (criteria omitted or cut, over budget)."""
        system = self.options.system_prompt or self.task_text() + self.contract.sentence()
        text, fitted = build_user_prompt(example.input, system, self.prompt_token_budget, self.count_tokens)
        return text, fitted.stats()

    # ------------------------------------------------------------------ scoring
    def _can_score(self, example: Example) -> bool:
        """TREC-scale pairs only: SIGIR grades referral (no "excluded" class), so its pairs are ranked, and
        their verdicts are None, never a silent 0."""
        t = example.target
        return t.get("scale", "trec") == "trec" and t.get("label") in LABELS

    def gold_value(self, example: Example) -> Any:
        if not self._can_score(example):
            raise ValueError(
                f"{example.id}: a SIGIR referral grade ({example.target.get('label_name')}) has no eligibility "
                "answer; SIGIR pairs are for ranking evaluation only (filter with ehrmind.tasks.base.scorable)"
            )
        return LABELS[int(example.target["label"])]

    def judge(self, example: Example, value: Any) -> tuple[bool | None, Any, str]:
        """Correct when the prediction names the gold class (synonyms and spacing tolerated; numbers and
        ambiguous words such as "not eligible" refused — see labels.parse_prediction)."""
        name, problem = parse_prediction(value)
        if name is None:
            return False, None, problem
        gold = LABELS[int(example.target["label"])]
        ok = name == gold
        return ok, name, "correct" if ok else f"expected {gold}"

    def _read_unscored(
        self, example: Example, answer: dict[str, Any] | None, problem: str
    ) -> tuple[Any, str]:
        """SIGIR pairs: no verdict, but the stated label is kept for ranking."""
        name, why = (
            (None, problem or "no answer found")
            if answer is None
            else parse_prediction(answer[self.contract.answer_key])
        )
        return name, f"ranking only (SIGIR referral grade); {why or 'parsed'}"


def check_target(ex: Example, path: str | Path, row: int) -> None:
    """A snapshot row's label, name and scale must agree with the one label map (catches swapped names)."""
    t = ex.target
    scale = t.get("scale", "trec")
    if scale not in SCALES:
        raise DataError(f"unknown label scale {excerpt(scale)}", file=path, row=row, field="target.scale")
    label = t.get("label")
    if label not in SCALES[scale] or isinstance(label, bool):
        raise DataError(
            f"label must be 0, 1 or 2, got {excerpt(label)}", file=path, row=row, field="target.label"
        )
    if t.get("label_name") != SCALES[scale][label]:
        raise DataError(
            f"label {label} is {SCALES[scale][label]!r} on the {scale} scale, but the row says "
            f"{t.get('label_name')!r}",
            file=path,
            row=row,
            field="target.label_name",
        )


def _build_options(options: dict[str, Any]) -> dict[str, Any]:
    if options.get("split") is not None:
        raise ConfigError(
            "trec_ct writes its own patient-disjoint train/val/test files; drop --split "
            "(set the sizes with --set val_frac=… --set test_frac=…)"
        )
    if options.get("labeler") is not None:
        raise ConfigError("trec_ct has no labelers: the labels are the qrels; drop --labeler")
    unknown = sorted(set(options) - set(BUILD_DEFAULTS) - {"split", "labeler"})
    if unknown:
        raise ConfigError(f"unknown trec_ct option(s) {unknown}; known: {sorted(BUILD_DEFAULTS)}")
    opts = {**BUILD_DEFAULTS, **{k: v for k, v in options.items() if k in BUILD_DEFAULTS and v is not None}}
    if not isinstance(opts["seed"], int) or isinstance(opts["seed"], bool):
        raise ConfigError(f"seed must be an integer, got {opts['seed']!r}")
    for key in ("balance", "strict"):
        if not isinstance(opts[key], bool):
            raise ConfigError(f"{key} must be true or false, got {opts[key]!r}")
    cohorts = opts["cohorts"]
    if isinstance(cohorts, str):
        cohorts = [c.strip() for c in cohorts.split(",") if c.strip()]
    if cohorts is not None and (
        not isinstance(cohorts, list) or not all(isinstance(c, str) for c in cohorts)
    ):
        raise ConfigError(f"cohorts must be a list of names such as [trec_2021, sigir], got {cohorts!r}")
    opts["cohorts"] = cohorts or None
    return opts


def write_split_snapshot(
    task: Task,
    files: dict[str, Sequence[Example]],
    source: str | Path,
    out_dir: str | Path,
    options: dict[str, Any],
    report: LoadReport | None,
    balance_info: dict[str, Any] | None,
) -> dict[str, Any]:
    """Write the split files (Example rows plus `LINE_FIELDS` at the top level), skipped.jsonl and a
    manifest in the format of `ehrmind.snapshot.write_snapshot` with trec_ct's own additions."""
    from ehrmind.io import atomic_write_json, atomic_write_jsonl, sha256_file
    from ehrmind.snapshot import MANIFEST, file_entry, manifest_head

    seen: dict[str, str] = {}
    for name, rows in files.items():
        for ex in rows:
            pid = str(ex.metadata["patient_id"])
            if seen.setdefault(pid, name) != name:  # split_by_patient guarantees this; never write a leak
                raise RuntimeError(f"patient {pid} is in both {seen[pid]} and {name}")
    out = Path(out_dir)
    written: dict[str, Any] = {}
    for name, rows in files.items():
        atomic_write_jsonl(
            out / name, ({**ex.to_dict(), **{k: ex.metadata.get(k) for k in LINE_FIELDS}} for ex in rows)
        )
        written[name] = {
            **file_entry(task, rows),
            "n_patients": len({ex.metadata["patient_id"] for ex in rows}),
        }
    skipped = report.skipped if report else []
    atomic_write_jsonl(out / SKIPPED, skipped)
    inputs = report.inputs if report else {}
    hashes = {
        f: sha256_file(f)
        for kind in ("topics", "qrels", "pairs_with_trial_text")
        for f in inputs.get(kind, [])
        if Path(f).is_file()
    }
    manifest = {
        **manifest_head(task, source, written, options),
        "label_map": {
            "trec": {str(k): v for k, v in LABELS.items()},
            "sigir": {str(k): v for k, v in SIGIR_LABELS.items()},
        },
        "split_unit": "patient (topic), within each cohort; SIGIR (ranking only) all in test",
        "balance": balance_info,
        "skipped_file": SKIPPED,
        "load": report.summary() if report else None,
        "input_sha256": hashes,
    }
    atomic_write_json(out / MANIFEST, manifest)
    return manifest
