"""What the demo and the study share: synthetic splits that do not leak, evaluation of a model on a split,
paired comparisons between stages, and a learning curve over RL checkpoints.

Every number a program reports comes from here, so the demo and the study measure the same way: greedy
held-out accuracy (strict: correct and in the output contract; lenient: the benchmark's rule applied to the
extracted answer whatever the format), compared on the same items with a paired 95% interval.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ehrmind.io import read_jsonl
from ehrmind.tasks.base import Task
from ehrmind.types import Example

REPORTED_DIAGNOSIS = {"reliable_rule": "ehrmind", "min_items": 1, "format_threshold": None}
"""The diagnosis rules the demo and the study were chosen and reported with (before the paper's reliable
rule became the default and the format / too-few-items verdicts existed): `DiagnosisSettings(**…)`."""

log = logging.getLogger(__name__)


def synthetic_split(
    task: Task,
    out_dir: Path,
    name: str,
    calculators: Sequence[int],
    n: int,
    seed: int,
    *,
    max_distractors: int | None = None,
    reasoning: str = "full",
    exclude_notes: Iterable[str] = (),
) -> tuple[Path, list[Example]]:
    """`n` synthetic notes spread over `calculators` (interleaved, so any prefix mixes them), written as an
    Example snapshot under `out_dir/name`. Notes whose text is in `exclude_notes` (e.g. the training notes,
    for a held-out split) are dropped and replaced, so no evaluation item repeats a training item."""
    from ehrmind.snapshot import EXAMPLES, write_snapshot
    from ehrmind.tasks.medcalc.notes import make_examples

    excluded = set(exclude_notes)
    per_calc = -(-n // len(calculators))
    pools: list[list[Example]] = []
    dropped = 0
    for cid in calculators:
        need = per_calc  # each calculator has its own random stream: asking for more keeps the prefix
        while True:
            batch = make_examples([cid], need, seed, max_distractors=max_distractors, reasoning=reasoning)
            pool = [ex for ex in batch if ex.input["note"] not in excluded]
            if len(pool) >= per_calc:
                break
            need += per_calc - len(pool)
        dropped += len(batch) - len(pool)
        pools.append(pool[:per_calc])
    examples = [ex for group in zip(*pools, strict=True) for ex in group][:n]
    if dropped:
        log.info("%s: %d note(s) identical to excluded ones were replaced", name, dropped)
    manifest = write_snapshot(
        task,
        examples,
        f"synthetic:calculators={','.join(map(str, calculators))}:seed={seed}",
        out_dir / name,
        calculators=list(calculators),
        seed=seed,
        max_distractors=max_distractors,
        reasoning=reasoning,
        replaced_overlapping_notes=dropped,
    )
    log.debug("wrote %s (%d examples)", out_dir / name, manifest["n"])
    return out_dir / name / EXAMPLES, examples


def evaluate_stage(
    task: Task,
    examples: Sequence[Example],
    data: Path,
    model: Path,
    out: Path,
    *,
    max_new_tokens: int,
    samples: int = 1,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = True,
    backend: Any = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Generate, verify and write an evaluation folder (resumable); returns its metrics and prediction rows.
    `backend` (a `generate.backends.Backend`; default transformers on the CPU) says where it generates."""
    from ehrmind.eval.runner import PREDICTIONS, evaluate_examples
    from ehrmind.generate.backends import make_generator
    from ehrmind.generate.settings import GenerationSettings

    settings = GenerationSettings(
        samples=samples, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
        batch_size=batch_size, seed=seed,
    )  # fmt: skip
    metrics = evaluate_examples(
        task, examples, str(data), make_generator(str(model), settings, backend), out, model=str(model),
        settings=settings, progress=progress, backend=backend,
    )  # fmt: skip
    return metrics, read_jsonl(out / PREDICTIONS)


def item_scores(rows: Iterable[dict[str, Any]], *, strict: bool) -> dict[str, float]:
    """Per item: the share of its samples that are correct (strict: correct *and* in the output format).
    Items whose gold cannot be scored are left out."""
    per: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if r.get("correct") is None:
            continue
        ok = bool(r["correct"]) and (bool(r.get("format_ok")) or not strict)
        per[str(r["id"])].append(float(ok))
    return {i: sum(v) / len(v) for i, v in per.items()}


def compare(after: Any, before: Any, *, seed: int = 0) -> dict[str, Any]:
    """Paired difference `after − before` in strict accuracy (top level) and lenient accuracy (`lenient`).

    Each side is a list of prediction rows (one run) or {run name: rows} (several seeds)."""
    from ehrmind.metrics import paired_difference

    def scores(side: Any, strict: bool) -> Any:
        if isinstance(side, dict):
            return {k: item_scores(v, strict=strict) for k, v in side.items()}
        return item_scores(side, strict=strict)

    out = paired_difference(scores(after, True), scores(before, True), seed=seed)
    out["lenient"] = paired_difference(scores(after, False), scores(before, False), seed=seed)
    return out


def checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """The `checkpoint-N` folders of a training run that hold a model, by step."""
    from ehrmind.train.run import checkpoint_dirs

    return [(step, p) for step, p in checkpoint_dirs(run_dir) if (p / "config.json").exists()]


def learning_curve(
    task: Task,
    examples: Sequence[Example],
    data: Path,
    run_dir: Path,
    out: Path,
    *,
    start: Sequence[dict[str, Any]] = (),
    max_new_tokens: int,
    batch_size: int = 64,
    progress: bool = False,
    backend: Any = None,
) -> list[dict[str, Any]]:
    """Greedy accuracy on `examples` at every checkpoint of an RL run; `start` (prediction rows of the model
    the run started from, on any superset of the items) gives step 0."""
    ids = {ex.id for ex in examples}
    points = []
    if start:
        points.append(_point(0, [r for r in start if str(r["id"]) in ids]))
    for step, path in checkpoints(run_dir):
        _, rows = evaluate_stage(
            task,
            examples,
            data,
            path,
            out / f"step-{step}",
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            progress=progress,
            backend=backend,
        )
        points.append(_point(step, rows))
        log.info("learning curve: step %d, strict accuracy %.1f%%", step, 100 * points[-1]["strict_accuracy"])
    return points


def _point(step: int, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    strict, lenient = item_scores(rows, strict=True), item_scores(rows, strict=False)
    n = len(lenient)
    return {
        "step": step,
        "n": n,
        "strict_accuracy": sum(strict.values()) / n if n else None,
        "accuracy": sum(lenient.values()) / n if n else None,
    }


def fmt_diff(c: dict[str, Any]) -> str:
    """'+12.3 points [5.1, 19.0]' for a paired difference of shares."""
    lo, hi = c["ci95"]
    return f"{100 * c['difference']:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}]"


def verdict(c: dict[str, Any]) -> str:
    """What a paired interval supports: a gain, a loss, or no detectable difference."""
    lo, hi = c["ci95"]
    if lo > 0:
        return "gain (95% interval above 0)"
    if hi < 0:
        return "loss (95% interval below 0)"
    return "no detectable difference (95% interval includes 0)"
