"""`ehrmind eval` and `ehrmind score`: one prediction row per (example, sample), verified by `Task.verify`.

`eval` appends finished batches to `predictions.jsonl` as it goes (flushed and fsynced), so a run that is
killed and started again with the same command generates only what is missing. At the end the file is
rewritten in dataset order (atomically) and the metrics and report are computed from it.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ehrmind import __version__
from ehrmind.errors import ConfigError, DataError, excerpt
from ehrmind.generate.base import Generator as Generator  # what generates, for callers
from ehrmind.generate.settings import GenerationSettings, require_sampling
from ehrmind.io import JsonlAppender, atomic_write_json, atomic_write_jsonl, read_jsonl, sample_index
from ehrmind.runs import RUN_INFO as RUN_INFO  # where eval's record is, for callers
from ehrmind.runs import RunFolder
from ehrmind.snapshot import examples_hash
from ehrmind.tasks.analysis import (
    ChoicePoint,
    attached,
    report_sections,
    row_fields,
    task_metrics,
    verdict_names,
)
from ehrmind.tasks.base import Task
from ehrmind.trained import prompt_options
from ehrmind.types import Example, Prediction

log = logging.getLogger(__name__)

PREDICTIONS = "predictions.jsonl"
METRICS = "metrics.json"
# Settings that must match for a rerun into the same folder to count as a resume.
RESUME_KEYS = (
    "task", "data_sha256", "model", "prompt_mode", "prefill", "samples", "temperature", "top_p",
    "max_new_tokens", "seed", "batch_size", "logprobs", "chat_template_kwargs", "revision", "task_options",
    "seeding",
)  # fmt: skip  # batch_size: a batch pads together (fp32 left padding); seeding: how rows are seeded

Answer = tuple[Example, int, str, str | None]
"""One generated completion: (example, sample index, completion, finish reason)."""


def run_info(task: Task, examples: Sequence[Example], data: str, **extra: Any) -> dict[str, Any]:
    """What every output folder records so its numbers stay comparable; `data_revision` is the data file's
    sha256 or the Hub dataset's commit (`ehrmind.revisions.data_revision`)."""
    from ehrmind.revisions import data_revision

    return {
        "task": task.name,
        "task_version": task.version,
        "data": data,
        "data_revision": data_revision(data),
        "data_sha256": examples_hash(examples),
        "n_examples": len(examples),
        "prompt_mode": task.contract.mode,
        "prefill": task.contract.prefill,
        **prompt_options(task),
        "ehrmind_version": __version__,
        **extra,
    }


def run_record(
    task: Task,
    examples: Sequence[Example],
    data: str,
    *,
    model: str | None = None,
    settings: GenerationSettings | None = None,
    backend: Any = None,
    **extra: Any,
) -> dict[str, Any]:
    """The run record of an eval folder: `run_info`, the generation `settings` and the `backend` choice
    when a model generates (`model`), else only what scoring depends on. The one builder of eval records
    (eval, score, diagnose, matrix, the demo and the study)."""
    generation: dict[str, Any] = {}
    if model is not None:
        settings = settings or GenerationSettings()
        generation = {"model": model, **settings.record()}
        generation.pop("batch_size")  # recorded by `run_eval`, which uses it
    return run_info(
        task, examples, data, **generation, **extra, **(backend.record() if backend is not None else {})
    )


def environment(generator: Generator | None = None) -> dict[str, Any]:
    """Package versions and what the generator says of itself (`describe()`: the HF backend's dtype, device
    and model revision, …): what a number depends on besides the data and the settings."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    packages = {}
    for name in ("torch", "transformers", "trl", "peft", "accelerate"):
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    from ehrmind.runtime import cpu_facts

    return {
        "python": platform.python_version(),
        "packages": packages,
        **cpu_facts(),
        **(generator.describe() if generator is not None else {}),
    }


def prediction_row(
    task: Task,
    example: Example,
    sample: int,
    completion: str,
    *,
    finish_reason: str | None = None,
    yes_probability: float | None = None,
) -> Prediction:
    """The verdict on one completion, with what reports group and break down by."""
    extra = row_fields(task, example, completion)  # e.g. the benchmark's own extraction
    for field in (*task.groups.by, *task.groups.rows):
        extra[field] = example.metadata.get(field)
    return Prediction(
        id=example.id,
        sample=sample,
        completion=completion,
        score=task.verify(example, completion),
        extra=extra,
        finish_reason=finish_reason,
        yes_probability=yes_probability,
    )


def model_probability(task: Task, generator: Any, example: Example, completion: str) -> float | None:
    """P(yes) / (P(yes) + P(no)) at the point where the completion states its binary answer, from the model
    itself (a `ChoicePoint` analysis of the task, a generator with `choice_logprobs`: the HF backend, or an
    endpoint asked for log-probabilities); None otherwise."""
    points = attached(task, ChoicePoint)
    if not points or not generator.capabilities.choice_logprobs:
        return None
    point = points[0].point(task, example, completion)
    if point is None:
        return None
    scorer = generator.choice_logprobs
    prefix, choices = point
    got = scorer(task.render(example), prefix, [choices["yes"], choices["no"]])
    if got is None:
        return None
    yes, no = got
    return 1.0 / (1.0 + math.exp(max(-700.0, min(no - yes, 700.0))))


def _check_score_target(folder: RunFolder, info: dict[str, Any], overwrite: bool) -> None:
    if overwrite or not folder.info_path.exists():
        return
    try:
        old = folder.stored() or {}
    except DataError:
        old = {}
    if not old or any(old.get(k) != info.get(k) for k in (*RESUME_KEYS, "predictions")):
        what = "an eval run" if old.get("model") else "other results"
        raise ConfigError(
            f"{folder.path} holds {what}; scoring would replace its predictions and metrics. "
            "Use another --out, or --overwrite to replace them"
        )


def run_eval(
    task: Task,
    examples: Sequence[Example],
    generator: Generator,
    out_dir: str | Path,
    *,
    samples: int = 1,
    batch_size: int = 8,
    info: dict[str, Any],
    progress: bool = True,
) -> dict[str, Any]:
    """Generate `samples` completions per example, verify them, write predictions, metrics and report."""
    if samples < 1:
        raise ConfigError(f"--samples must be >= 1, got {samples}")
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")
    require_sampling(samples, info.get("temperature"))
    info = {
        **info,
        "batch_size": batch_size,
        "seeding": seeding(generator),
        "environment": environment(generator),
    }
    with RunFolder(out_dir, RESUME_KEYS).run(info, [PREDICTIONS]) as folder:
        return _generate_and_finalize(
            task, examples, generator, folder.path, samples, batch_size, info, progress
        )


def evaluate_examples(
    task: Task,
    examples: Sequence[Example],
    data: str,
    generator: Generator,
    out_dir: str | Path,
    *,
    model: str,
    settings: GenerationSettings,
    backend: Any = None,
    progress: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """The generate-and-verify run every program sits on (`ehrmind eval`, diagnose, matrix, the demo and the
    study): the run record (`run_record`: the generation `settings` and the `backend` choice), then the
    resumable `run_eval`. `extra` goes into the run record (e.g. limit)."""
    info = run_record(task, examples, data, model=model, settings=settings, backend=backend, **extra)
    return run_eval(
        task,
        examples,
        generator,
        out_dir,
        samples=settings.samples,
        batch_size=settings.batch_size,
        info=info,
        progress=progress,
    )


def _generate_and_finalize(
    task: Task,
    examples: Sequence[Example],
    generator: Generator,
    out: Path,
    samples: int,
    batch_size: int,
    info: dict[str, Any],
    progress: bool,
) -> dict[str, Any]:
    """Generate the predictions `out` lacks, batch by batch (appended as they come), then rewrite them in
    dataset order and compute the metrics and report."""
    pred_path = out / PREDICTIONS
    done = _done_predictions(pred_path, examples, samples)
    per_prompt = generator.capabilities.samples_per_request
    per_row = seeding(generator) == "row"
    if per_row:
        batches = _length_batches(task, generator, examples, samples, batch_size, done)
    else:
        batches = _missing_batches(examples, samples, batch_size, done, per_prompt)
    if done:
        log.info(
            "resuming: %d of %d predictions already in %s", len(done), len(examples) * samples, pred_path
        )
    seed = int(info.get("seed") or 0)
    with (
        JsonlAppender(pred_path) as sink,
        ProgressBar(progress, len(examples) * samples, len(done)) as advance,
    ):
        for position, batch in batches:
            if per_prompt:
                answers = _generate_per_prompt(task, generator, examples, batch, samples, done, seed)
            elif per_row:
                answers = _generate_per_row(task, generator, examples, batch, seed)
            else:
                answers = _generate_per_call(task, generator, batch, position)
            rows = _new_rows(task, generator, answers, done)
            sink.write(rows)
            advance(len(rows))
    return _rewrite_in_order(task, examples, pred_path, out, info)


def _done_predictions(pred_path: Path, examples: Sequence[Example], samples: int) -> set[tuple[str, int]]:
    """The (id, sample) pairs `pred_path` already holds (a torn last line repaired); an id that is not in
    the data is a DataError (predictions from another dataset)."""
    done: set[tuple[str, int]] = set()
    if not pred_path.exists():
        return done
    ids = {ex.id for ex in examples}
    for lineno, row in enumerate(read_jsonl(pred_path, repair_tail=True), start=1):
        sample = sample_index(row.get("sample", 0), file=pred_path, row=lineno, samples=samples)
        key = (str(row.get("id")), sample)
        if key[0] not in ids:
            raise DataError(
                "id not in the evaluation data: predictions from another dataset?",
                file=pred_path,
                row=lineno,
                field="id",
            )
        done.add(key)
    return done


def _missing_batches(
    examples: Sequence[Example],
    samples: int,
    batch_size: int,
    done: set[tuple[str, int]],
    per_prompt: bool,
) -> list[tuple[int, list[tuple[Example, int]]]]:
    """(position, [(example, sample), …]) of each batch with a prediction missing.

    Batches sit at fixed positions, and a generator that takes a `call_seed` gets the batch's position: a
    resumed run regenerates exactly the batches that are missing, with the seeds an uninterrupted run used,
    and writes only the rows it lacks (byte-identical output). A generator that takes all samples of a
    prompt in one request (`samples_per_request`: endpoints, vLLM) gets batches of examples, each asked
    for `samples` completions with the seed of its position in the data (`seed + index`), and only the
    examples with a missing sample are asked again."""
    if per_prompt:
        units = [[(ex, s) for s in range(samples)] for ex in examples]
    else:
        units = [[(ex, s)] for ex in examples for s in range(samples)]
    batches = []
    for i in range(0, len(units), batch_size):
        batch = [pair for unit in units[i : i + batch_size] for pair in unit]
        if any((ex.id, s) not in done for ex, s in batch):
            batches.append((i // batch_size, batch))
    return batches


def seeding(generator: Generator) -> str:
    """How a run's rows are seeded and batched, recorded in run.json and compared on resume (a folder begun
    under another scheme samples other text: it is not continued). "row": each (example, sample) row seeded
    alone, batches by prompt length (`_length_batches`, the `hf` backend since issue #30); "prompt": all
    samples of a prompt in one request with its seed (endpoints, vLLM); "call": each batch seeded by its
    position."""
    caps = generator.capabilities
    return "prompt" if caps.samples_per_request else "row" if caps.seeds_prompts else "call"


def _length_batches(
    task: Task,
    generator: Generator,
    examples: Sequence[Example],
    samples: int,
    batch_size: int,
    done: set[tuple[str, int]],
) -> list[tuple[int, list[tuple[Example, int]]]]:
    """(position, [(example, sample), …]) batches of the missing pairs, shortest prompts first, for a
    generator that seeds each row (`seeds_prompts`: the `hf` backend): a batch pads to its longest prompt, so
    prompts of like length batched together pad little, and what a row samples depends on its own seed, not
    on its batch (`_generate_per_row`). Lengths are the prompt's tokens where the generator counts them
    (`token_usage`), else its characters; the sort is stable (ties keep data order), so a run's batches are a
    function of the data and the pairs already done."""
    missing = [(ex, s) for ex in examples for s in range(samples) if (ex.id, s) not in done]
    lengths: dict[str, int] = {}
    for ex, _ in missing:
        if ex.id not in lengths:
            lengths[ex.id] = _prompt_length(task, generator, ex)
    missing.sort(key=lambda pair: lengths[pair[0].id])
    return [(i // batch_size, missing[i : i + batch_size]) for i in range(0, len(missing), batch_size)]


def _prompt_length(task: Task, generator: Generator, example: Example) -> int:
    """The length `_length_batches` orders by: the rendered prompt's tokens, or its characters."""
    messages = task.render(example)
    if generator.capabilities.token_usage:
        return int(generator.token_usage(messages, [])["prompt_tokens"])  # type: ignore[attr-defined]
    return sum(len(m.get("content") or "") for m in messages)


def example_row_seed(seed: int, index: int, sample: int) -> int:
    """The seed of sample `sample` of the example at `index` in the data, run with `--seed seed`, where each
    row is seeded alone (`_generate_per_row`): a function of these three only, so a row samples the same
    text whatever its batch, batch size or order, in a resumed run as in an uninterrupted one, and sample 0
    is the same with `--samples 1` or 4."""
    from ehrmind.generate.hf import row_seed

    return row_seed(seed + index, sample)


def _generate_per_row(
    task: Task,
    generator: Generator,
    examples: Sequence[Example],
    batch: list[tuple[Example, int]],
    seed: int,
) -> list[Answer]:
    """One completion for each (example, sample) of `batch` in one call, each row with its own seed
    (`example_row_seed`), so the call's other rows do not change what it samples."""
    index = {ex.id: i for i, ex in enumerate(examples)}
    got = generator.generate(
        [task.render(ex) for ex, _ in batch],
        n=1,
        seeds=[example_row_seed(seed, index[ex.id], s) for ex, s in batch],
    )
    return [
        (ex, s, outs[0], why[0])
        for (ex, s), outs, why in zip(batch, got.completions, got.finish_reasons, strict=True)
    ]


def _generate_per_prompt(
    task: Task,
    generator: Generator,
    examples: Sequence[Example],
    batch: list[tuple[Example, int]],
    samples: int,
    done: set[tuple[str, int]],
    seed: int,
) -> list[Answer]:
    """All `samples` of each example of `batch` with a missing one, in one request per example seeded by
    its position in the data: a prompt's samples depend on its own seed only."""
    index = {ex.id: i for i, ex in enumerate(examples)}
    heads = [ex for ex, s in batch if s == 0 and any((ex.id, k) not in done for k in range(samples))]
    got = generator.generate(
        [task.render(ex) for ex in heads], n=samples, seeds=[seed + index[ex.id] for ex in heads]
    )
    return [
        (ex, s, outs[s], why[s])
        for ex, outs, why in zip(heads, got.completions, got.finish_reasons, strict=True)
        for s in range(samples)
    ]


def _generate_per_call(
    task: Task, generator: Generator, batch: list[tuple[Example, int]], position: int
) -> list[Answer]:
    """One completion for each (example, sample) of `batch` in one call, seeded by the batch's position
    where the generator takes a `call_seed`."""
    prompts = [task.render(ex) for ex, _ in batch]
    if generator.capabilities.seeds_calls:
        got = generator.generate(prompts, n=1, call_seed=position)
    else:
        got = generator.generate(prompts, n=1)
    return [
        (ex, s, outs[0], why[0])
        for (ex, s), outs, why in zip(batch, got.completions, got.finish_reasons, strict=True)
    ]


def _new_rows(
    task: Task, generator: Generator, answers: list[Answer], done: set[tuple[str, int]]
) -> list[dict[str, Any]]:
    """The prediction rows of the answers not yet written, each with its finish reason ("length": the
    truncation rate) and the model's P(yes) where it gives one."""
    return [
        prediction_row(
            task,
            ex,
            s,
            text,
            finish_reason=why,
            yes_probability=model_probability(task, generator, ex, text),
        ).to_dict()
        for ex, s, text, why in answers
        if (ex.id, s) not in done
    ]


def _rewrite_in_order(
    task: Task, examples: Sequence[Example], pred_path: Path, out: Path, info: dict[str, Any]
) -> dict[str, Any]:
    """Rewrite the predictions in dataset order (atomically), then compute the metrics and report."""
    by_id = {ex.id: ex for ex in examples}
    rows = read_jsonl(pred_path)
    order = {ex.id: i for i, ex in enumerate(examples)}
    unique = {
        (r["id"], int(r["sample"])): r for r in rows
    }  # a crash between write and fsync cannot duplicate,
    rows = sorted(unique.values(), key=lambda r: (order[r["id"]], int(r["sample"])))  # but be safe
    # rows written before an analysis added its fields (a run resumed after an upgrade) get them now
    keys = set(row_fields(task, by_id[rows[0]["id"]], rows[0].get("completion") or "")) if rows else set()
    for r in rows:
        if not keys <= r.keys():
            r.update(row_fields(task, by_id[r["id"]], r.get("completion") or ""))
    atomic_write_jsonl(pred_path, rows)
    return finalize(task, rows, out, info, examples)


def run_score(
    task: Task,
    examples: Sequence[Example],
    predictions: str | Path,
    out_dir: str | Path,
    *,
    info: dict[str, Any],
    overwrite: bool = False,
) -> dict[str, Any]:
    """Score completions produced elsewhere: lines `{"id": …, "completion": …}` (ids may repeat).

    An `out_dir` holding other results (an eval run, or the scores of another file or data) is refused
    unless `overwrite`: scoring rewrites its predictions, run.json and metrics."""
    predictions = Path(predictions)
    folder = RunFolder(out_dir, RESUME_KEYS)
    _check_score_target(folder, {**info, "predictions": str(predictions)}, overwrite)
    lines = read_jsonl(predictions)
    if not lines:
        raise DataError("file has no predictions", file=predictions)
    by_id = {ex.id: ex for ex in examples}
    if len(by_id) < len(examples):  # predictions would be scored against whichever row came last
        repeated = next(i for i, k in Counter(ex.id for ex in examples).items() if k > 1)
        raise DataError(
            f"id {repeated!r} appears more than once; ids must be unique", file=info.get("data"), field="id"
        )
    counts: Counter[str] = Counter()
    first_row: dict[tuple[str, int], int] = {}
    rows = []
    for lineno, line in enumerate(lines, start=1):
        if "id" not in line:
            raise DataError("missing field", file=predictions, row=lineno, field="id")
        if not isinstance(line.get("completion"), str):
            raise DataError("missing or not a string", file=predictions, row=lineno, field="completion")
        ex_id = str(line["id"])
        if ex_id not in by_id:
            raise DataError(
                f"id {excerpt(ex_id)} is not in the data", file=predictions, row=lineno, field="id"
            )
        sample = counts[ex_id] if line.get("sample") is None else line["sample"]
        sample_index(sample, file=predictions, row=lineno)
        if (ex_id, sample) in first_row:
            raise DataError(
                f"repeats id {ex_id!r} sample {sample} (first at row {first_row[ex_id, sample]})",
                file=predictions,
                row=lineno,
                field="sample",
            )
        first_row[ex_id, sample] = lineno
        counts[ex_id] += 1
        rows.append(prediction_row(task, by_id[ex_id], sample, line["completion"]).to_dict())
    atomic_write_jsonl(folder.create() / PREDICTIONS, rows)
    info = {**info, "predictions": str(predictions), "n_examples_scored": len(counts)}
    folder.write_info(info)
    return finalize(task, rows, folder.path, info, examples)


def finalize(
    task: Task,
    rows: list[dict[str, Any]],
    out: Path,
    info: dict[str, Any],
    examples: Sequence[Example] = (),
) -> dict[str, Any]:
    """metrics.json (the task's metrics and its analyses' blocks, the error analysis, the run record) and
    report.md (with each analysis's section) from the prediction rows."""
    from ehrmind.eval.analysis import analyse
    from ehrmind.eval.analysis import report_lines as error_report_lines
    from ehrmind.eval.report import write_report

    metrics = task_metrics(task, rows, examples)
    metrics["errors"] = errors = analyse(rows)
    metrics["run"] = {**info, "finished": datetime.now(UTC).isoformat(timespec="seconds")}
    atomic_write_json(out / METRICS, metrics)
    sections, failure_lines = report_sections(task, metrics), error_report_lines(errors)
    extra = [*sections, *([""] if sections and failure_lines else []), *failure_lines]
    write_report(out, metrics, task.groups.by, extra=extra, verdicts=verdict_names(task), rows=rows)
    return metrics


class ProgressBar:
    """A rich progress bar (or nothing), exposing `advance(k)`."""

    def __init__(self, enabled: bool, total: int, completed: int):
        self.enabled, self.total, self.completed = enabled, total, completed
        self._bar: Any = None

    def __enter__(self):
        if not self.enabled:
            return lambda k: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("generating"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        self._bar.start()
        task_id = self._bar.add_task("gen", total=self.total, completed=self.completed)
        return lambda k: self._bar.advance(task_id, k)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
