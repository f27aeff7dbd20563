"""The one label map of patient–trial matching, and the rule that reads a model's label.

TREC Clinical Trials 2021/2022 qrels: 0 = not relevant, 1 = excluded, 2 = eligible. This module is the only
place these names are written down; a test pins them against the official qrels (topic 70 / NCT03586427 is 1
= excluded in qrels2021.txt). The research code this task replaces swapped the names of 0 and 1, which is why
numeric answers are not accepted from the model (see `parse_prediction`).

SIGIR 2016 (Koopman & Zuccon) grades *referral*, not eligibility, on the same 0/1/2 numbers; it has no
"excluded" class. Its pairs keep their own scale (`SIGIR_LABELS`) and are used for ranking only.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Final

from ehrmind.parsing import MAX_ANSWER_CHARS

NOT_RELEVANT: Final = "not relevant"
EXCLUDED: Final = "excluded"
ELIGIBLE: Final = "eligible"

LABELS: Final[dict[int, str]] = {0: NOT_RELEVANT, 1: EXCLUDED, 2: ELIGIBLE}
"""TREC CT qrels label → name. Defined once; every other module reads it from here."""
LABEL_IDS: Final[dict[str, int]] = {name: i for i, name in LABELS.items()}

SIGIR_LABELS: Final[dict[int, str]] = {
    0: "would not refer",
    1: "would consider referring",
    2: "highly likely to refer",
}
"""SIGIR 2016 qrels label → name: a referral grade, not an eligibility class."""

SCALES: Final[dict[str, dict[int, str]]] = {"trec": LABELS, "sigir": SIGIR_LABELS}
"""Label scale → label map. `trec` pairs are classified and ranked; `sigir` pairs are ranked only."""

SYNONYMS: Final[dict[str, str]] = {
    # not relevant: the trial is not about the patient's condition
    "not relevant": NOT_RELEVANT,
    "irrelevant": NOT_RELEVANT,
    "non relevant": NOT_RELEVANT,
    "nonrelevant": NOT_RELEVANT,
    "unrelated": NOT_RELEVANT,
    "not related": NOT_RELEVANT,
    # excluded: the patient has the targeted condition but the criteria rule them out
    "excluded": EXCLUDED,
    "exclude": EXCLUDED,
    "exclusion": EXCLUDED,
    # eligible
    "eligible": ELIGIBLE,
    "included": ELIGIBLE,
    "include": ELIGIBLE,
}
"""Accepted answer (after normalisation: case, spaces, `_`, `-`, surrounding quotes/punctuation) → label."""

AMBIGUOUS: Final[dict[str, str]] = {
    "not eligible": "could mean excluded or not relevant",
    "ineligible": "could mean excluded or not relevant",
    "relevant": "could mean excluded or eligible",
    "yes": "not a label",
    "no": "not a label",
}
"""Answers that are refused because they do not name one class (they count as no valid answer)."""

_EDGE = " \t\n\r.,;:!?\"'`*()[]{}<>"


def normalize_label_text(text: str) -> str:
    """Lower case, NFKC, `_`/`-`/`/` as spaces, whitespace collapsed, quotes and punctuation at the ends removed."""
    s = unicodedata.normalize("NFKC", text).lower()
    s = re.sub(r"[_\-/\u2010-\u2015]+", " ", s)
    s = re.sub(r"\s+", " ", s)
    return s.strip(_EDGE).strip()


def parse_prediction(value: Any) -> tuple[str | None, str]:
    """Read the model's label from the answer JSON value; returns (label name, problem).

    Accepted: the three names and the synonyms in `SYNONYMS`, case- and spacing-tolerant, as a string or a
    one-element list. Refused: numbers (0/1/2 as int or text: the very confusion of label indices this task
    guards against), ambiguous words (`AMBIGUOUS`), anything else.
    """
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or value is None:
        return None, "prediction is not a label name"
    if isinstance(value, (int, float)):
        return (
            None,
            f"numeric label {value!r} refused: answer with the name (not relevant, excluded, eligible)",
        )
    if not isinstance(value, str):
        return None, "prediction is not a string"
    if len(value) > MAX_ANSWER_CHARS:  # never normalised: bounded work on model text
        return None, "prediction too long for a label"
    s = normalize_label_text(value)
    if s in SYNONYMS:
        return SYNONYMS[s], ""
    if re.fullmatch(r"[-+]?\d+(?:\.\d+)?", s):
        return None, f"numeric label {s!r} refused: answer with the name (not relevant, excluded, eligible)"
    if s in AMBIGUOUS:
        return None, f"ambiguous prediction {s!r}: {AMBIGUOUS[s]}"
    shown = s if len(s) <= 40 else s[:37] + "..."
    return None, f"unknown prediction {shown!r}; expected not relevant, excluded or eligible"


def label_name(label: int, scale: str = "trec") -> str:
    """The name of `label` on `scale`; raises ValueError for a label or scale that does not exist."""
    try:
        return SCALES[scale][label]
    except KeyError:
        raise ValueError(f"label {label!r} is not on the {scale!r} scale (0, 1 or 2)") from None
