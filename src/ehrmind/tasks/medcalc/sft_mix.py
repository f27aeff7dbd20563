"""The EHRMind paper's SFT warm-up mix for MedCalc-Bench: a share of the training rows, capped per category so
that the small categories are not drowned by the large ones.

From linjc16/EHRMind@3bdde9f `src/dataset/medcalc/sft/data_preprocess.py` `construct_data` (lines 46-117):
the target is `int(len(train) * fraction)` rows; every category but risk is capped at target // 7; the four
small categories (diagnosis, severity, date, dosage conversion) are taken first, then risk fills what is left
minus two caps (the space kept for lab and physical), then lab and physical up to their cap. Rows within a
category are a seeded random sample (the paper's pandas `random_state=42`: other rows, same counts). One
departure, documented in docs/diagnosis.md: the paper's final 100-row validation hold-out from the mix
(`get_balanced_validation_set`, line 117) is not taken (ehrmind evaluates on its own splits).
"""

from __future__ import annotations

SMALL_FIRST = ("diagnosis", "severity", "date", "dosage")
"""data_preprocess.py:64, `base_minorities` (our `dosage` is the paper's "dosage conversion")."""
FILLER = "risk"
"""data_preprocess.py:65, `mid_priority`: no cap, it takes what the others leave."""
LARGE_LAST = ("physical", "lab")
"""data_preprocess.py:66, `majorities` (our `lab` is the paper's "lab test")."""
N_SHARES = 7
"""data_preprocess.py:71-78: every capped category gets total // 7."""


def paper_sft_counts(category_sizes: dict[str, int], fraction: float) -> dict[str, int]:
    """Rows per category (keys as in `category_sizes`); categories the paper does not name keep `fraction` of
    their rows (at least one), as with the per-category rule."""
    total = int(sum(category_sizes.values()) * fraction)  # data_preprocess.py:69
    cap = total // N_SHARES
    counts = {c: min(cap, category_sizes[c]) for c in SMALL_FIRST if c in category_sizes}  # lines 83-87
    remaining = total - sum(counts.values())
    if FILLER in category_sizes:  # lines 93-96: what is left, less the room kept for the two large categories
        counts[FILLER] = min(remaining - 2 * cap, category_sizes[FILLER])  # >= 0: the smalls take <= 4 caps
    for c in LARGE_LAST:  # lines 104-108
        if c in category_sizes:
            counts[c] = min(cap, category_sizes[c])
    for c, n in category_sizes.items():
        if c not in counts:
            counts[c] = max(1, round(fraction * n)) if n else 0
    return counts
