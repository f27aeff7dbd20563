"""Trial documents → `Trial`: ClinicalTrials.gov XML, TrialGPT JSONL/JSON records, CT.gov API v2 JSON.

Every reader returns the same `Trial` (title, conditions, inclusion and exclusion criteria as lists of
criteria, sex and age limits when the source has them) or raises `DataError` naming the file (and line for
malformed XML or JSONL).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ehrmind.errors import DataError

NCT_RE = re.compile(r"NCT\d{8}")


@dataclass(frozen=True)
class Trial:
    """One clinical trial as the prompt needs it."""

    trial_id: str
    """NCT id."""
    title: str
    """Brief title (official title when there is no brief title)."""
    conditions: tuple[str, ...] = ()
    """Conditions the trial studies (CT.gov `condition`, TrialGPT `diseases_list`)."""
    inclusion: tuple[str, ...] = ()
    """Inclusion criteria, one string per criterion, in source order."""
    exclusion: tuple[str, ...] = ()
    """Exclusion criteria, one string per criterion, in source order."""
    unsplit: bool = False
    """The source does not separate inclusion from exclusion: all criteria are in `inclusion`."""
    gender: str | None = None
    """Eligible sex as the registry states it (All, Female, Male)."""
    minimum_age: str | None = None
    """e.g. '18 Years'; None when there is no limit."""
    maximum_age: str | None = None
    source: str = field(default="", compare=False)
    """Where the record was read (file, and line for JSONL)."""

    @property
    def has_criteria(self) -> bool:
        return bool(self.inclusion or self.exclusion)


# ---------------------------------------------------------------- criteria text

_BULLET = re.compile(r"^\s*(?:[-*•·▪◦]|\d{1,2}[.)](?!\d))\s+")
_HEADING = re.compile(
    r"^\s*(?:[-*•]\s*)?(?:(?:key|main|general|other|additional|major|minor)\s+)?"
    r"(?P<kind>inclusion|exclusion)\s+criteria\b(?:(?P<rest>[^:\n]{0,60}):(?P<after>.*)|\s*)$",
    re.I,
)
_SECTION_HEADER = re.compile(r"^[^:\n]{0,60}criteria\s*:?$|^:?$", re.I)


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", _BULLET.sub("", text)).strip()


def _items(lines: list[str]) -> list[str]:
    """Criteria from the lines of one blank-line-separated chunk: a bulleted or numbered line starts a new
    criterion, other lines continue the current one."""
    out: list[str] = []
    for line in lines:
        if not line.strip():
            continue
        if _BULLET.match(line) or not out:
            out.append(line)
        else:
            out[-1] += " " + line
    return [c for c in (_clean(x) for x in out) if re.search(r"[A-Za-z0-9]", c)]


def criteria_list(text: str | None) -> list[str]:
    """One section of criteria (TrialGPT `inclusion_criteria` style: criteria separated by blank lines, a
    first chunk that is only a header such as 'inclusion criteria:' or ':') → list of criteria."""
    if not text or not text.strip():
        return []
    chunks = [c for c in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if c.strip()]
    if chunks and _SECTION_HEADER.match(re.sub(r"\s+", " ", chunks[0]).strip()):
        chunks = chunks[1:]
    out: list[str] = []
    for chunk in chunks:
        out.extend(_items(chunk.split("\n")))
    return out


def split_eligibility(text: str | None) -> tuple[list[str], list[str], bool]:
    """A whole eligibility text block (CT.gov `criteria/textblock`, API v2 `eligibilityCriteria`) →
    (inclusion, exclusion, unsplit).

    Lines such as 'Inclusion Criteria:', 'KEY EXCLUSION CRITERIA', 'Exclusion criteria: pregnancy' switch
    section (a heading with extra words, e.g. 'Inclusion Criteria for Part B:', is kept as an item). Text
    before the first heading counts as inclusion. Without any heading the block is returned whole as
    inclusion with `unsplit=True`, so the prompt can say the registry does not separate the two."""
    if not text or not text.strip():
        return [], [], False
    sections: dict[str, list[str]] = {"inclusion": [], "exclusion": []}
    current, found, chunk = "inclusion", False, []

    def flush() -> None:
        sections[current].extend(_items(chunk))
        chunk.clear()

    for line in text.replace("\r\n", "\n").split("\n"):
        m = _HEADING.match(line)
        if m:
            flush()
            current, found = m.group("kind").lower(), True
            if (m.group("rest") or "").strip(" -–"):
                sections[current].append(_clean(line))
            elif (m.group("after") or "").strip():
                chunk.append(m.group("after"))
        elif not line.strip():
            flush()
        else:
            chunk.append(line)
    flush()
    return sections["inclusion"], sections["exclusion"], not found and bool(sections["inclusion"])


def _str_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    if isinstance(value, str) and value.strip():
        s = value.strip()
        if s.startswith("[") and s.endswith("]"):  # TrialGPT's stringified lists: "['A', 'B']"
            from ehrmind.parsing import python_literal

            try:
                parsed = python_literal(s)  # a Python literal only: nothing is executed
            except ValueError:
                return [s]
            return _str_list(parsed) if isinstance(parsed, list) else [s]
        return [s]
    return []


def _age(value: Any) -> str | None:
    s = str(value or "").strip()
    return None if s.upper() in ("", "N/A", "NA", "NONE") else s


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


# ---------------------------------------------------------------- ClinicalTrials.gov legacy XML


def parse_xml_bytes(data: bytes, where: str | Path) -> Any:
    """Parse XML with defusedxml (no entity expansion, no external resources); DataError names the line."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, fromstring

    try:
        return fromstring(data)
    except ParseError as e:
        line, col = getattr(e, "position", (None, None))
        raise DataError(f"malformed XML at line {line}, column {col} ({e})", file=where) from None
    except DefusedXmlException as e:
        raise DataError(f"XML refused for safety ({type(e).__name__}: {e})", file=where) from None


def trial_from_ctgov_xml(data: bytes, where: str | Path) -> Trial:
    """One `<clinical_study>` document (the legacy ClinicalTrials.gov XML of the TREC 2021/2022 snapshot)."""
    root = parse_xml_bytes(data, where)
    if root.tag != "clinical_study":
        raise DataError(f"expected a <clinical_study> document, found <{root.tag}>", file=where)

    def text(path: str) -> str:
        el = root.find(path)
        return "" if el is None else "".join(el.itertext()).strip()

    nct = text("id_info/nct_id")
    if not nct:
        raise DataError("no id_info/nct_id", file=where, field="nct_id")
    inclusion, exclusion, unsplit = split_eligibility(text("eligibility/criteria/textblock"))
    gender = text("eligibility/gender")
    return Trial(
        trial_id=nct,
        title=text("brief_title") or text("official_title"),
        conditions=tuple(
            c for c in ("".join(el.itertext()).strip() for el in root.findall("condition")) if c
        ),
        inclusion=tuple(inclusion),
        exclusion=tuple(exclusion),
        unsplit=unsplit,
        gender=gender or None,
        minimum_age=_age(text("eligibility/minimum_age")),
        maximum_age=_age(text("eligibility/maximum_age")),
        source=str(where),
    )


# ---------------------------------------------------------------- JSON records


def record_kind(rec: dict[str, Any]) -> str | None:
    """Which trial record schema `rec` follows: 'ctgov_v2', 'corpus' (TrialGPT/BEIR corpus.jsonl),
    'trial_info' (TrialGPT trial_info), or None."""
    if isinstance(rec.get("protocolSection"), dict):
        return "ctgov_v2"
    if "_id" in rec and "title" in rec and "text" in rec:
        return "corpus"
    if "nct_id" in rec or (
        "brief_title" in rec and ("inclusion_criteria" in rec or "exclusion_criteria" in rec)
    ):
        return "trial_info"
    return None


def trial_from_record(rec: dict[str, Any], where: str | Path, trial_id: str | None = None) -> Trial:
    """A trial from one JSON object in any supported schema (see `record_kind`); `trial_id` is used when the
    record itself has no id (TrialGPT trial_info.json is a dict keyed by NCT id)."""
    kind = record_kind(rec)
    if kind == "ctgov_v2":
        return _from_ctgov_v2(rec["protocolSection"], where)
    if kind == "corpus":
        meta = rec.get("metadata") if isinstance(rec.get("metadata"), dict) else {}
        tid = _text(rec.get("_id"))
        if "inclusion_criteria" in meta or "exclusion_criteria" in meta:
            inclusion, exclusion = (
                criteria_list(meta.get("inclusion_criteria")),
                criteria_list(meta.get("exclusion_criteria")),
            )
            unsplit = False
        else:
            inclusion, exclusion, unsplit = split_eligibility(_text(rec.get("text")))
        conditions = _str_list(meta.get("diseases_list")) or _str_list(meta.get("diseases"))
        title = _text(rec.get("title")) or _text(meta.get("brief_title"))
    elif kind == "trial_info":
        tid = _text(rec.get("nct_id")) or (trial_id or "")
        inclusion, exclusion = (
            criteria_list(rec.get("inclusion_criteria")),
            criteria_list(rec.get("exclusion_criteria")),
        )
        unsplit = False
        conditions = _str_list(rec.get("diseases_list")) or _str_list(rec.get("diseases"))
        title = _text(rec.get("brief_title")) or _text(rec.get("official_title"))
    else:
        raise DataError(
            "not a trial record: expected TrialGPT fields (nct_id, brief_title, inclusion_criteria, "
            "exclusion_criteria), a corpus line (_id, title, text, metadata) or a ClinicalTrials.gov API "
            "study (protocolSection)",
            file=where,
        )
    tid = tid or (trial_id or "")
    if not tid:
        raise DataError(
            "record has no trial id", file=where, field="nct_id" if kind == "trial_info" else "_id"
        )
    return Trial(
        trial_id=tid,
        title=title,
        conditions=tuple(conditions),
        inclusion=tuple(inclusion),
        exclusion=tuple(exclusion),
        unsplit=unsplit,
        gender=_text(rec.get("gender")) or None,
        minimum_age=_age(rec.get("minimum_age")),
        maximum_age=_age(rec.get("maximum_age")),
        source=str(where),
    )


def _from_ctgov_v2(ps: dict[str, Any], where: str | Path) -> Trial:
    """ClinicalTrials.gov API v2 study JSON (`protocolSection`)."""

    def module(name: str) -> dict[str, Any]:
        m = ps.get(name)
        return m if isinstance(m, dict) else {}

    ident, elig = module("identificationModule"), module("eligibilityModule")
    nct = _text(ident.get("nctId"))
    if not nct:
        raise DataError("no protocolSection.identificationModule.nctId", file=where, field="nctId")
    inclusion, exclusion, unsplit = split_eligibility(_text(elig.get("eligibilityCriteria")))
    sex = _text(elig.get("sex"))
    return Trial(
        trial_id=nct,
        title=_text(ident.get("briefTitle")) or _text(ident.get("officialTitle")),
        conditions=tuple(_str_list(module("conditionsModule").get("conditions"))),
        inclusion=tuple(inclusion),
        exclusion=tuple(exclusion),
        unsplit=unsplit,
        gender=sex.capitalize() if sex else None,
        minimum_age=_age(elig.get("minimumAge")),
        maximum_age=_age(elig.get("maximumAge")),
        source=str(where),
    )


def trial_from_json_file(data: bytes, where: str | Path) -> Trial:
    """One per-trial JSON file (any schema of `trial_from_record`); the file name is the fallback id."""
    try:
        rec = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        line = getattr(e, "lineno", None)
        raise DataError(f"invalid JSON{f' at line {line}' if line else ''} ({e})", file=where) from None
    if not isinstance(rec, dict):
        raise DataError("a per-trial JSON file must hold one object", file=where)
    m = NCT_RE.search(Path(str(where)).name)
    return trial_from_record(rec, where, trial_id=m.group(0) if m else None)
