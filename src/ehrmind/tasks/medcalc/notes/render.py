"""A draft as note text: opener, history, vitals and labs (with distractors), closing; pronouns filled in."""

from __future__ import annotations

import random

from ehrmind.tasks.medcalc.notes.draft import Draft, _join
from ehrmind.tasks.medcalc.notes.quantities import DISTRACTORS

DISTRACTOR_HISTORY = (
    "hypothyroidism",
    "osteoarthritis of both knees",
    "gout",
    "gastroesophageal reflux disease",
    "seasonal allergic rhinitis",
    "glaucoma",
    "migraine headaches",
    "chronic low back pain",
    "mild hearing loss",
)
SETTINGS = (  # for a symptom
    "presented to the emergency department with {c}",
    "was admitted to the medical ward with {c}",
    "came to the hospital because of {c}",
    "was seen in the outpatient clinic for {c}",
)
VISIT_SETTINGS = (  # for a reason to be seen ("a preoperative evaluation")
    "was seen in the outpatient clinic for {c}",
    "was referred by the primary care physician for {c}",
    "came to the clinic for {c}",
)
_VISIT_WORDS = ("visit", "evaluation", "review", "assessment", "referral", "follow-up", "check", "consultation",
                "work-up", "admission", "examination")  # fmt: skip


def _setting(rng: random.Random, complaint: str) -> str:
    visit = any(w in complaint for w in _VISIT_WORDS)
    return rng.choice(VISIT_SETTINGS if visit else SETTINGS).format(c=complaint)


def _article(age: int) -> str:
    return "An" if str(age).startswith("8") or age in (11, 18) else "A"


CLOSINGS = (
    "Further workup and management are ongoing.",
    "The patient was admitted for observation and further management.",
    "A treatment plan was discussed with the patient and family.",
    "Follow-up was arranged with the primary care team.",
    "",
)


_PRONOUNS = {
    "Male": {"He": "He", "he": "he", "His": "His", "his": "his", "him": "him"},
    "Female": {"He": "She", "he": "she", "His": "Her", "his": "her", "him": "her"},
}


def _add_distractors(d: Draft) -> None:
    pool = [q for q in DISTRACTORS if q.key not in d.keys and q.key not in d.no_distractors]
    cap = d.max_distractors
    k = min(len(pool), d.rng.randint(3, 6))
    if cap is not None:  # drawn only with a cap, so uncapped notes are the same as before caps existed
        k = min(k, d.rng.randint(0, cap))
    for qty in d.rng.sample(pool, k):
        canonical = d.rng.uniform(*qty.normal)
        unit = d.rng.choice(qty.units)
        shown = unit.convert(canonical)
        text = unit.render(shown)
        d.items[qty.section].append((qty.names[0], qty.names[1], text))
        d.distractors.append({"key": qty.key, "text": text})
    if "bp" not in d.keys and "bp" not in d.no_distractors and (cap is None or k < cap):
        k += 1
        s = d.rng.randint(108, 138)
        text = f"{s}/{d.rng.randint(62, min(88, s - 25))} mmHg"
        d.items["vitals"].append(("blood pressure", "BP", text))
        d.distractors.append({"key": "bp", "text": text})
    n_hist = d.rng.choice([0, 1, 1, 2]) if (d.age or 99) >= 18 else 0  # adult conditions only for adults
    if cap is not None:
        n_hist = min(n_hist, max(0, cap - k))
    for phrase in d.rng.sample(DISTRACTOR_HISTORY, n_hist):
        d.history_pos.append(phrase)
        d.distractors.append({"key": "history", "text": phrase})


def _items_text(rng: random.Random, items: list[tuple[str, str, str]], kind: str) -> str:
    if not items:
        return ""
    items = list(items)
    rng.shuffle(items)
    short = rng.random() < 0.4
    parts = [f"{s} {t}" if short else f"{n} {t}" for n, s, t in items]
    if kind == "vitals":
        if short:
            return f"Vitals: {', '.join(parts)}."
        lead = rng.choice(["On examination, ", "On arrival, ", "Vital signs showed ", "Vital signs were: "])
        return f"{lead}{_join(parts)}."
    if kind == "body":
        if short:
            return f"{', '.join(parts)}."
        return f"{rng.choice(['Anthropometrics: ', 'Measured ', 'Body measurements: '])}{_join(parts)}."
    if kind == "ecg":
        return f"A 12-lead ECG showed {_join(parts)}."
    if short:
        return f"Labs: {', '.join(parts)}."
    lead = rng.choice(["Laboratory studies showed ", "Admission labs revealed ", "Blood tests showed "])
    return f"{lead}{_join(parts)}."


def _history_text(d: Draft) -> list[str]:
    out = []
    pos = list(d.history_pos)
    neg = list(d.history_neg)
    d.rng.shuffle(pos)
    if pos:
        lead = d.rng.choice(
            ["{His} past medical history is notable for ", "{He} has a history of ", "Past history includes "]
        )
        out.append(f"{lead}{_join(pos)}.")
    if neg:
        lead = d.rng.choice(["There is no history of ", "{He} denies any history of ", "{He} has no known "])
        out.append(f"{lead}{_join(neg, 'or')}.")
    return out


def render_note(d: Draft) -> str:
    """The note text for a draft (pronouns filled in)."""
    rng = d.rng
    sections: list[str] = []
    if not d.template_only:
        _add_distractors(d)
        complaint = rng.choice(list(d.complaints))
        age = d.age if d.age is not None else rng.randint(25, 88)
        sex_word = "man" if d.sex == "Male" else "woman"
        if age < 18:
            sex_word = "boy" if d.sex == "Male" else "girl"
        opener = rng.choice(
            [
                f"{_article(age)} {age}-year-old {sex_word} {_setting(rng, complaint)}.",
                f"The patient is {_article(age).lower()} {age}-year-old {sex_word} who {_setting(rng, complaint)}.",
            ]
        )
        sections.append(opener)
    sections += d.sentences.get("presentation", [])
    sections += _history_text(d)
    sections += d.sentences.get("history", [])
    sections += d.sentences.get("history_text", [])
    sections += d.sentences.get("social", [])
    sections += d.sentences.get("meds", [])
    for kind in ("vitals", "body"):
        t = _items_text(rng, d.items.get(kind, []), kind)
        if t:
            sections.append(t)
    sections += d.sentences.get("exam", [])
    ecg = _items_text(rng, d.items.get("ecg", []), "ecg")
    if ecg:
        sections.append(ecg)
    sections += d.sentences.get("ecg", [])
    labs = _items_text(rng, d.items.get("labs", []), "labs")
    if labs:
        sections.append(labs)
    sections += d.sentences.get("labs_text", [])
    sections += d.sentences.get("other", [])
    if not d.template_only:
        closing = rng.choice(CLOSINGS)
        if closing:
            sections.append(closing)
    text = " ".join(s for s in sections if s)
    return text.format(**_PRONOUNS[d.sex or "Male"])
