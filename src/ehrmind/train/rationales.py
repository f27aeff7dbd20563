"""`ehrmind rationales`: verified reasoning for the SFT warm-up, from a teacher or from the model itself.

Two modes, one output folder:

- **teacher** — the task's normal prompt plus a note that gives the gold answer and asks for the reasoning
  a clinician would write to reach it from the patient and the criteria (not from the note), in the output
  contract. Sent to any OpenAI-compatible endpoint (`OpenAICompatGenerator`).
- **self** — rejection sampling: the unchanged prompt, `samples` completions from the model being trained
  (`HFGenerator`, or the model behind an endpoint).

Either way a completion is kept only if `Task.verify` finds it correct and well formatted, its reasoning is
not empty, (teacher mode) it does not cite the given answer, and it is not a duplicate; at most
`keep_per_example` are kept per example (0: all). Files in `out_dir`:

- `rationales.jsonl` — kept rationales as Example rows: same `input` and `target`, `metadata.explanation` =
  the `<think>` text (what `ehrmind.train.data.sft_rows` puts inside `<think>`), `rationale_source`
  (teacher or model name), `rationale_mode`, `rationale_sample`, `source_id`; a reference explanation
  already present moves to `original_explanation`. `get_task(task).load(path)` reads it, so
  `ehrmind sft --set data=DIR/rationales.jsonl` trains on it. The first rationale of an example keeps the
  example's id; further ones get `ID#SAMPLE`.
- `attempts.jsonl` — one line per attempt: id, sample, kept, reason (and the verdict and completion).
  Appended per batch (flushed, fsynced): a killed run started again with the same command skips the
  examples whose attempts are all recorded and drops half-written ones.
- `summary.json` — attempts, kept, dropped by reason, by gold label (label tasks) and by category.
- `run.json` — the settings; a rerun into the folder with other settings is refused.

Warm-up options (the EHRMind paper's TREC recipe, `docs/trec_ct.md`): `balanced_sample` takes the same number
of examples per gold label (`--per-label`); `outline=True` asks the teacher for the paper's three-part
reasoning (overview, reasoning, conclusion); `min_confidence` asks it to end the reasoning with a
`Confidence: …` line on the paper's five-point scale and keeps only rationales at or above that level (the
line is removed from the kept text); `prepare_examples` builds the split snapshot from raw data first, so one
command goes from raw data to `rationales.jsonl`.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from ehrmind import __version__
from ehrmind.errors import ConfigError, DataError
from ehrmind.generate.settings import require_sampling
from ehrmind.io import JsonlAppender, atomic_write_json, atomic_write_jsonl, read_jsonl, sample_index
from ehrmind.runs import RunFolder
from ehrmind.snapshot import examples_hash
from ehrmind.tasks.base import Task, scorable
from ehrmind.trained import prompt_options
from ehrmind.types import Example

log = logging.getLogger(__name__)

Mode = Literal["teacher", "self"]
RATIONALES = "rationales.jsonl"
ATTEMPTS = "attempts.jsonl"
SUMMARY = "summary.json"
RESUME_KEYS = (
    "task",
    "mode",
    "source",
    "samples",
    "keep_per_example",
    "prompt_mode",
    "prefill",
    "temperature",
    "top_p",
    "max_new_tokens",
    "task_options",
    "min_confidence",
    "outline",
)
"""Settings that must match for a rerun into the same folder to continue it (the data may grow: --limit)."""

KEPT = "kept"
BAD_FORMAT = "bad format"
WRONG = "wrong answer"
EMPTY = "empty reasoning"
CITES_ANSWER = "cites the given answer"
DUPLICATE = "duplicate"
OVER_LIMIT = "over keep limit"
NO_CONFIDENCE = "no confidence stated"
LOW_CONFIDENCE = "low confidence"
REASONS = (
    KEPT, BAD_FORMAT, WRONG, EMPTY, NO_CONFIDENCE, LOW_CONFIDENCE, CITES_ANSWER, DUPLICATE, OVER_LIMIT
)  # fmt: skip

CONFIDENCE_LEVELS = ("very not confident", "not confident", "neutral", "confident", "very confident")
"""The paper's teacher scale (linjc16/EHRMind gen_reasoning_data.py:94), lowest first."""

TEACHER_NOTE = (
    "Note for writing a worked example (do not mention this note): the correct answer to this case is "
    "{answer}. Write the reasoning a careful clinician would write to reach it independently. Go through "
    "{evidence}; name the specific facts that decide the case, and let {answer} follow as the conclusion. "
    "Argue only from the case itself; never refer to a given, expected or reference answer. Reply in exactly "
    "{answer_format}"
)

_CITES = re.compile(
    r"\b(given|provided|supplied|stated|reference|expected|gold|target) (answer|label)s?\b"
    r"|\banswer key\b|\b(the|this) note (says|states|gives|tells)\b|\bworked example\b"
    r"|\bI (was|am|have been) (told|given)\b",
    re.IGNORECASE,
)
"""Phrases that show a teacher rationale leans on the answer it was given instead of the case."""

TEACHER_OUTLINE = (
    "Structure the reasoning in three parts: 1. Overview: the key facts of the patient and of the criteria. "
    "2. Reasoning towards the prediction: weigh each criterion against those facts. 3. Conclusion: sum up "
    "and state the prediction."
)
TEACHER_CONFIDENCE = (
    "Then review your reasoning and end it, still inside <think>, with one line 'Confidence: LEVEL', LEVEL "
    "one of Very Confident, Confident, Neutral, Not Confident, Very Not Confident."
)
_CONFIDENCE = re.compile(
    r"(?:^|\n)[#*\s]*confidence[#*:\s-]*\[?\s*"
    r"(very not confident|not confident|very confident|confident|neutral)\s*\]?[.*\s]*$",
    re.IGNORECASE,
)
"""The confidence at the very end of a reasoning: `Confidence: Neutral`, or the paper's `# Confidence #`
heading with the level on the next line."""


# ------------------------------------------------------------------ prompts and verdicts
def teacher_messages(
    task: Task, example: Example, *, outline: bool = False, confidence: bool = False
) -> list[dict[str, str]]:
    """The task's prompt with the teacher note appended to the (last) user turn; a prefill stays last.
    `outline` adds the paper's three-part structure, `confidence` the request for a closing confidence line."""
    messages = [dict(m) for m in task.render(example)]
    i = max(j for j, m in enumerate(messages) if m["role"] == "user")
    gold = task.gold_value(example)
    note = TEACHER_NOTE.format(
        answer=json.dumps(gold, ensure_ascii=False),
        evidence=task.contract.wording.evidence,
        answer_format=task.contract.teacher_format(gold),
    )
    extra = [TEACHER_OUTLINE] * outline + [TEACHER_CONFIDENCE] * confidence
    messages[i]["content"] = "\n\n".join([messages[i]["content"], *extra, note])
    return messages


def split_confidence(reasoning: str) -> tuple[str, str | None]:
    """The reasoning without its closing confidence line, and the level (lower case; None when not stated)."""
    m = _CONFIDENCE.search(reasoning)
    if m is None:
        return reasoning, None
    return reasoning[: m.start()].rstrip(), m.group(1).lower()


def _check_confidence(min_confidence: str | None) -> None:
    if min_confidence is not None and min_confidence not in CONFIDENCE_LEVELS:
        raise ConfigError(
            f"--min-confidence must be one of {', '.join(CONFIDENCE_LEVELS)}; got {min_confidence!r}"
        )


def balanced_sample(
    task: Task, examples: Sequence[Example], per_label: int, *, seed: int = 0
) -> list[Example]:
    """`per_label` scorable examples of each gold label, drawn with `seed`, in the data's order (the paper's
    `sample_balanced_triplet`, linjc16/EHRMind src/dataset/matching/utils.py:5-32). A label with fewer
    examples stops the run, as the paper's code does; value tasks (no labels) are refused."""
    if per_label < 1:
        raise ConfigError(f"--per-label must be >= 1, got {per_label}")
    groups: dict[str, list[Example]] = defaultdict(list)
    for ex in examples:
        if not scorable(task, ex):
            continue
        label = label_of(task, ex)
        if label is None:
            raise ConfigError(f"--per-label needs a label task; {task.name} answers are values, not labels")
        groups[label].append(ex)
    short = {label: len(m) for label, m in sorted(groups.items()) if len(m) < per_label}
    if short or not groups:
        raise ConfigError(
            f"--per-label {per_label}: too few training examples for label(s) {short or 'any'}; lower "
            "--per-label or add data"
        )
    rng = random.Random(seed)
    keep = {ex.id for label in sorted(groups) for ex in rng.sample(groups[label], per_label)}
    return [ex for ex in examples if ex.id in keep]


def prepare_examples(
    task: Task,
    data: str | Path,
    *,
    split: str | None = None,
    build_data: str | Path | None = None,
    data_options: dict[str, Any] | None = None,
    per_label: int | None = None,
    seed: int = 0,
    limit: int | None = None,
) -> list[Example]:
    """The examples a rationale run sees. With `build_data`, `data` is raw data: the task's split snapshot is
    written there first (`Task.build_data`, as `ehrmind data`) and its `train.jsonl` is used, so rationales
    never come from validation or test patients. Then `per_label` balancing, then `limit`."""
    if build_data is not None:
        if split is not None:
            raise ConfigError("--build-data writes the splits and uses train.jsonl; drop --split")
        task.build_data(data, build_data, seed=seed, **(data_options or {}))
        data, split = Path(build_data) / "train.jsonl", None
    examples = task.load(data, split)
    if per_label is not None:
        examples = balanced_sample(task, examples, per_label, seed=seed)
    return list(examples[:limit])


def cites_answer(reasoning: str) -> bool:
    return bool(_CITES.search(reasoning))


def label_of(task: Task, example: Example) -> str | None:
    """The gold label for label tasks (trec_ct, ehrshot), None for value tasks (medcalc)."""
    gold = task.gold_value(example)
    return gold if isinstance(gold, str) else None


def judge_attempts(
    task: Task,
    example: Example,
    completions: Sequence[str],
    *,
    mode: Mode,
    source: str,
    keep_per_example: int = 1,
    first_sample: int = 0,
    min_confidence: str | None = None,
) -> tuple[list[dict[str, Any]], list[Example]]:
    """Attempt rows (one per completion) and the kept rationales as Examples. With `min_confidence`, a
    rationale must end with a confidence at or above it; the confidence line is not kept."""
    rows: list[dict[str, Any]] = []
    kept: list[Example] = []
    seen: set[str] = set()
    for k, completion in enumerate(completions):
        sample = first_sample + k
        score = task.verify(example, completion)
        reasoning, confidence = (score.think or "").strip(), None
        if min_confidence is not None:
            reasoning, confidence = split_confidence(reasoning)
        norm = " ".join(reasoning.split()).lower()
        if not score.format_ok:
            reason = BAD_FORMAT
        elif not score.correct:
            reason = WRONG
        elif not reasoning:
            reason = EMPTY
        elif min_confidence is not None and confidence is None:
            reason = NO_CONFIDENCE
        elif min_confidence is not None and (
            CONFIDENCE_LEVELS.index(confidence) < CONFIDENCE_LEVELS.index(min_confidence)
        ):
            reason = LOW_CONFIDENCE
        elif mode == "teacher" and cites_answer(reasoning):
            reason = CITES_ANSWER
        elif norm in seen:
            reason = DUPLICATE
        elif keep_per_example and len(kept) >= keep_per_example:
            reason = OVER_LIMIT
        else:
            reason = KEPT
        seen.add(norm)
        if reason == KEPT:
            kept.append(_rationale_example(example, reasoning, sample, len(kept), mode=mode, source=source))
        rows.append(
            {
                "id": example.id,
                "sample": sample,
                "kept": reason == KEPT,
                "reason": reason,
                "detail": score.reason,
                "label": label_of(task, example),
                "category": example.metadata.get("category"),
                "parsed": score.parsed,
                "format_ok": score.format_ok,
                "correct": score.correct,
                "confidence": confidence,
                "completion": completion,
            }
        )
    return rows, kept


def _rationale_example(
    ex: Example, reasoning: str, sample: int, nth: int, *, mode: Mode, source: str
) -> Example:
    meta = dict(ex.metadata)
    if meta.get("explanation"):
        meta["original_explanation"] = meta["explanation"]
    meta.update(
        explanation=reasoning,
        rationale_source=source,
        rationale_mode=mode,
        rationale_sample=sample,
        source_id=ex.id,
    )
    return Example(
        id=ex.id if nth == 0 else f"{ex.id}#{sample}",
        task=ex.task,
        input=ex.input,
        target=ex.target,
        metadata=meta,
    )


# ------------------------------------------------------------------ the run
def run_rationales(
    task: Task,
    examples: Sequence[Example],
    generator: Any,
    out_dir: str | Path,
    *,
    samples: int = 1,
    mode: Mode = "teacher",
    keep_per_example: int = 1,
    batch_size: int = 8,
    info: dict[str, Any] | None = None,
    progress: bool = True,
    min_confidence: str | None = None,
    outline: bool = False,
) -> dict[str, Any]:
    """Generate `samples` attempts per scorable example, keep the verified ones; returns the summary.

    `generator` has `name`, `settings` (GenerationSettings) and `generate(prompts, n)`. Examples whose gold
    answer cannot be scored (SIGIR pairs) are counted in `n_unscorable` and never sent."""
    if mode not in ("teacher", "self"):
        raise ConfigError(f"mode must be 'teacher' or 'self', got {mode!r}")
    if task.contract.mode != "reasoning":
        raise ConfigError("rationales are <think> text: use the task's reasoning prompt mode, not direct")
    _check_confidence(min_confidence)
    if mode == "self" and (min_confidence is not None or outline):
        raise ConfigError(
            "--min-confidence and --outline instruct a teacher; --self samples the unchanged prompt"
        )
    if samples < 1 or batch_size < 1 or keep_per_example < 0:
        raise ConfigError("need --samples >= 1, --batch-size >= 1 and --keep-per-example >= 0 (0 = all)")
    settings = generator.settings
    temperature = settings.temperature if settings is not None else None
    require_sampling(samples, temperature)
    source = str(generator.name)
    folder = RunFolder(out_dir, RESUME_KEYS, what="rationales made")
    out = folder.path
    run = {
        "task": task.name,
        "task_version": task.version,
        "mode": mode,
        "source": source,
        "samples": samples,
        "keep_per_example": keep_per_example,
        "prompt_mode": task.contract.mode,
        "prefill": task.contract.prefill,
        **prompt_options(task),
        "temperature": temperature,
        "top_p": settings.top_p if settings is not None else None,
        "max_new_tokens": settings.max_new_tokens if settings is not None else None,
        "min_confidence": min_confidence,
        "outline": outline or None,  # None, as in folders written before the option: they still resume
        "data_sha256": examples_hash(examples),
        "n_examples": len(examples),
        "ehrmind_version": __version__,
        **(info or {}),
    }
    scorable_examples = [ex for ex in examples if scorable(task, ex)]
    with folder.run(run, [ATTEMPTS, RATIONALES]):
        _attempt(
            task, examples, scorable_examples, generator, out, samples, mode, source, keep_per_example, batch_size,
            progress, min_confidence, outline,
        )  # fmt: skip
    summary = _finish(task, out, examples, scorable_examples, run)
    log.info(
        "rationales: kept %d of %d attempts; %d of %d examples have one; dropped %s",
        summary["kept"],
        summary["attempts"],
        summary["examples_with_rationale"],
        summary["n_scorable"],
        summary["dropped_by_reason"],
    )
    return summary


def _attempt(
    task: Task,
    examples: Sequence[Example],
    scorable: Sequence[Example],
    generator: Any,
    out: Path,
    samples: int,
    mode: Mode,
    source: str,
    keep_per_example: int,
    batch_size: int,
    progress: bool,
    min_confidence: str | None = None,
    outline: bool = False,
) -> None:
    """Attempt the examples not yet attempted, appending each batch's attempts and kept rationales."""
    by_id = {ex.id: ex for ex in examples}
    done = _recover(out, by_id, samples)
    todo = [ex for ex in scorable if ex.id not in done]
    if done:
        log.info("resuming: %d of %d examples already attempted in %s", len(done), len(scorable), out)
    from ehrmind.eval.runner import ProgressBar

    # Batches sit at fixed positions over the scorable examples, and a generator that takes a `call_seed`
    # (a local model) gets the batch's position: a resumed run samples the missing batches as an
    # uninterrupted run did (eval seeded so before issue #30; it now seeds each row alone). Endpoints are
    # seeded by their settings, whatever the batch.
    seeded = generator.capabilities.seeds_calls
    with (
        JsonlAppender(out / RATIONALES) as kept_sink,
        JsonlAppender(out / ATTEMPTS) as attempt_sink,
        ProgressBar(progress, len(scorable), len(scorable) - len(todo)) as advance,
    ):
        for position, start in enumerate(range(0, len(scorable), batch_size)):
            batch = [ex for ex in scorable[start : start + batch_size] if ex.id not in done]
            if not batch:
                continue
            prompts = [
                teacher_messages(task, ex, outline=outline, confidence=min_confidence is not None)
                if mode == "teacher"
                else task.render(ex)
                for ex in batch
            ]
            completions = (
                generator.generate(prompts, n=samples, call_seed=position)
                if seeded
                else generator.generate(prompts, n=samples)
            ).completions
            attempt_rows, kept_rows = [], []
            for ex, outs in zip(batch, completions, strict=True):
                if len(outs) != samples:
                    raise RuntimeError(f"generator returned {len(outs)} completions, expected {samples}")
                rows, kept = judge_attempts(
                    task, ex, outs, mode=mode, source=source, keep_per_example=keep_per_example,
                    min_confidence=min_confidence,
                )  # fmt: skip
                attempt_rows += rows
                kept_rows += [k.to_dict() for k in kept]
            kept_sink.write(kept_rows)  # rationales first: a kill before the attempts are written
            attempt_sink.write(attempt_rows)  # leaves them orphaned, and the next run drops them
            advance(len(batch))


def _recover(out: Path, by_id: dict[str, Example], samples: int) -> set[str]:
    """Ids whose attempts are all on disk; lines of half-finished examples and rationales without their
    attempts (a kill between the two writes) are removed, so the rerun cannot duplicate them."""
    attempts_path, kept_path = out / ATTEMPTS, out / RATIONALES
    attempts = read_jsonl(attempts_path, repair_tail=True) if attempts_path.exists() else []
    kept = read_jsonl(kept_path, repair_tail=True) if kept_path.exists() else []
    by_example: dict[str, set[int]] = defaultdict(set)
    for lineno, row in enumerate(attempts, start=1):
        ex_id = str(row.get("id"))
        if ex_id not in by_id:
            raise DataError(
                "id not in the data (another dataset, or a smaller --limit than before?); use the same data or a new --out",
                file=attempts_path,
                row=lineno,
                field="id",
            )
        by_example[ex_id].add(sample_index(row.get("sample", 0), file=attempts_path, row=lineno))
    done = {i for i, s in by_example.items() if s >= set(range(samples))}
    good_attempts = [r for r in attempts if str(r.get("id")) in done]
    good_kept = [r for r in kept if str((r.get("metadata") or {}).get("source_id")) in done]
    if len(good_attempts) != len(attempts):
        atomic_write_jsonl(attempts_path, good_attempts)
        log.info("dropped %d attempt line(s) of unfinished examples", len(attempts) - len(good_attempts))
    if len(good_kept) != len(kept):
        atomic_write_jsonl(kept_path, good_kept)
        log.info("dropped %d rationale(s) of unfinished examples", len(kept) - len(good_kept))
    return done


def _finish(
    task: Task, out: Path, examples: Sequence[Example], scorable: Sequence[Example], run: dict[str, Any]
) -> dict[str, Any]:
    """Rewrite both files in dataset order without duplicates; write and return the summary."""
    order = {ex.id: i for i, ex in enumerate(examples)}
    attempts = {(str(r["id"]), int(r["sample"])): r for r in read_jsonl(out / ATTEMPTS)}
    attempt_rows = sorted(attempts.values(), key=lambda r: (order[str(r["id"])], int(r["sample"])))
    kept = {str(r["id"]): r for r in read_jsonl(out / RATIONALES)}
    kept_rows = sorted(
        kept.values(),
        key=lambda r: (order[str(r["metadata"]["source_id"])], r["metadata"]["rationale_sample"]),
    )
    atomic_write_jsonl(out / ATTEMPTS, attempt_rows)
    atomic_write_jsonl(out / RATIONALES, kept_rows)
    summary = summarize(attempt_rows)
    attempted = {str(r["id"]) for r in attempt_rows}
    summary = {
        "task": task.name,
        "mode": run["mode"],
        "source": run["source"],
        "n_examples": len(examples),
        "n_unscorable": len(examples) - len(scorable),
        "n_scorable": len(scorable),
        "n_attempted": len(attempted),
        **summary,
        "files": {"rationales": str(out / RATIONALES), "attempts": str(out / ATTEMPTS)},
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    atomic_write_json(out / SUMMARY, summary)
    return summary


def summarize(attempt_rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Counts over attempt rows: total, kept, dropped by reason, examples with a rationale; the same by gold
    label (label tasks only) and by category."""

    def block(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        reasons = Counter(r["reason"] for r in rows if not r["kept"])
        kept = sum(1 for r in rows if r["kept"])
        return {
            "attempts": len(rows),
            "kept": kept,
            "dropped": len(rows) - kept,
            "yield": round(kept / len(rows), 4) if rows else None,
            "examples": len({r["id"] for r in rows}),
            "examples_with_rationale": len({r["id"] for r in rows if r["kept"]}),
            "dropped_by_reason": {k: reasons[k] for k in REASONS if reasons[k]},
        }

    out = block(attempt_rows)
    for key, field in (("by_label", "label"), ("by_category", "category")):
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in attempt_rows:
            if r.get(field) is not None:
                groups[str(r[field])].append(r)
        if groups:
            out[key] = {name: block(rows) for name, rows in sorted(groups.items())}
    return out


# ------------------------------------------------------------------ the command line's set-up
def teacher_generator(
    *,
    teacher_url: str | None,
    teacher_model: str | None,
    api_key_env: str | None,
    model: str | None,
    self_mode: bool,
    settings: Any,
    device: str = "cpu",
    timeout: float = 120.0,
    max_retries: int = 5,
    concurrency: int = 1,
    backend: str | None = None,
) -> tuple[Any, Mode]:
    """The generator and mode for `ehrmind rationales`: a teacher endpoint (`--teacher-url/--teacher-model`),
    or `--self` with a local/Hub `--model` (transformers, or vLLM with `--backend vllm`) or with an endpoint
    serving the model being trained."""
    from ehrmind.generate.backends import Backend
    from ehrmind.generate.backends import make_generator as build

    if bool(teacher_url) != bool(teacher_model):
        raise ConfigError("--teacher-url and --teacher-model go together (the endpoint and its model name)")
    if teacher_url and model:
        raise ConfigError(
            "give either an endpoint (--teacher-url/--teacher-model) or a local --model, not both"
        )
    if model and not self_mode:
        raise ConfigError("a local --model is the model being trained: add --self for rejection sampling")
    if not teacher_url and not model:
        raise ConfigError(
            "say where completions come from: --teacher-url URL --teacher-model NAME (teacher), or --model "
            "PATH_OR_ID --self (rejection sampling from the model being trained)"
        )
    if api_key_env and not teacher_url:
        raise ConfigError("--api-key-env only applies to an endpoint (--teacher-url)")
    if teacher_url and backend not in (None, "openai"):
        raise ConfigError(f"--teacher-url is an endpoint (--backend openai), not --backend {backend}")
    mode: Mode = "self" if self_mode else "teacher"
    chosen = Backend.choose(
        backend,
        url=teacher_url,
        api_key_env=api_key_env,
        concurrency=concurrency,
        device=device,
        timeout=timeout,
        max_retries=max_retries,
    )
    if model:
        chosen = chosen.for_model(str(model))  # the template variables it was trained with
    return build(str(teacher_model or model), settings, chosen), mode
