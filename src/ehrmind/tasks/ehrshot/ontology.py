"""Expand root concepts to their descendants with an OMOP vocabulary (Athena download), as EHRSHOT does.

EHRSHOT's labelers match a root concept and all its children in FEMR's ontology (e.g. every descendant of
SNOMED 59621000 "Essential hypertension"). With `--set ontology=DIR`, where DIR holds Athena's
`CONCEPT.csv` and `CONCEPT_ANCESTOR.csv`, the roots of a code set (its exact `VOCAB/CODE` entries outside
the ICD vocabularies, which are matched by prefix) get the same expansion. The files are streamed: three
passes (concept ids of the roots, their descendants, the descendants' codes), holding only the ids found.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ehrmind.errors import DataError
from ehrmind.tasks.ehrshot.codes import ICD_VOCABS, CodeSet, canonical_code, split_code
from ehrmind.tasks.ehrshot.tables import iter_table_batches, table_columns

log = logging.getLogger(__name__)


def _find(folder: Path, stem: str) -> Path:
    for name in (f"{stem}.csv", f"{stem}.csv.gz", f"{stem}.tsv", f"{stem.lower()}.csv", f"{stem}.parquet"):
        if (folder / name).is_file():
            return folder / name
    raise DataError(
        f"no {stem}.csv in the ontology folder (an OMOP vocabulary download from Athena)", file=folder
    )


def expand_descendants(codes: CodeSet, folder: str | Path) -> tuple[CodeSet, dict[str, Any]]:
    """`codes` plus every descendant (CONCEPT_ANCESTOR) of its exact non-ICD entries."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("ontology must be a folder holding CONCEPT.csv and CONCEPT_ANCESTOR.csv", file=folder)
    concept, ancestor = _find(folder, "CONCEPT"), _find(folder, "CONCEPT_ANCESTOR")
    for path, needed in (
        (concept, ("concept_id", "vocabulary_id", "concept_code")),
        (ancestor, ("ancestor_concept_id", "descendant_concept_id")),
    ):
        cols = table_columns(path)
        missing = [c for c in needed if c not in cols]
        if missing:
            raise DataError(f"missing column(s): {', '.join(missing)}", file=path, row=1, field=missing[0])
    roots = {c for c in codes.exact if split_code(c)[0] and split_code(c)[0] not in ICD_VOCABS}
    root_ids: set[str] = set()
    for ids, vocabs, values in iter_table_batches(concept, ["concept_id", "vocabulary_id", "concept_code"]):
        for cid, v, c in zip(ids, vocabs, values, strict=True):
            if v and c and canonical_code(f"{v}/{c}") in roots:
                root_ids.add(str(cid))
    desc_ids: set[str] = set()
    for anc, desc in iter_table_batches(ancestor, ["ancestor_concept_id", "descendant_concept_id"]):
        for a, d in zip(anc, desc, strict=True):
            if str(a) in root_ids:
                desc_ids.add(str(d))
    new: set[str] = set()
    for ids, vocabs, values in iter_table_batches(concept, ["concept_id", "vocabulary_id", "concept_code"]):
        for cid, v, c in zip(ids, vocabs, values, strict=True):
            if str(cid) in desc_ids and v and c:
                new.add(canonical_code(f"{v}/{c}"))
    info = {
        "ontology": str(folder),
        "roots": len(roots),
        "roots_found": len(root_ids),
        "descendants_added": len(new - codes.exact),
    }
    if len(root_ids) < len(roots):
        log.warning(
            "ontology: %d of %d root codes not found in %s", len(roots) - len(root_ids), len(roots), concept
        )
    return codes.union(new), info
