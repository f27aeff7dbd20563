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
from typing import Any, Protocol

from ehrmind import __version__
from ehrmind.errors import ConfigError, DataError, excerpt
from ehrmind.generate.settings import GenerationSettings, require_sampling
from ehrmind.io import JsonlAppender, atomic_write_json, atomic_write_jsonl, read_jsonl, sample_index
from ehrmind.runs import RUN_INFO as RUN_INFO  # where eval's record is, for callers
from ehrmind.runs import RunFolder
from ehrmind.snapshot import examples_hash
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
)  # fmt: skip  # batch_size: batches are seeded by position and padded together, so it shapes the completions


class Generator(Protocol):
    name: str

    def generate(self, prompts: list[list[dict[str, str]]], n: int = 1) -> list[list[str]]: ...


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
        "prompt_mode": task.mode,
        "prefill": task.prefill_text,
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


def environment(generator: Any = None) -> dict[str, Any]:
    """Package versions and, from a generator that can say (`describe()`: the HF backend), its dtype, device
    and model revision: what a number depends on besides the data and the settings."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    packages = {}
    for name in ("torch", "transformers", "trl", "peft", "accelerate"):
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    from ehrmind.runtime import cpu_facts

    described = getattr(generator, "describe", None)
    return {
        "python": platform.python_version(),
        "packages": packages,
        **cpu_facts(),
        **(described() if callable(described) else {}),
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
    extra = dict(task.verify_extra(example, completion))  # e.g. the benchmark's own extraction
    for field in (*task.group_fields, *task.row_fields):
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
    itself (`Task.choice_point`, a generator with `choice_logprobs`: the HF backend, or an endpoint asked for
    log-probabilities); None otherwise."""
    scorer = getattr(generator, "choice_logprobs", None)
    point = task.choice_point(example, completion) if scorer is not None else None
    if point is None:
        return None
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
    info = {**info, "batch_size": batch_size, "environment": environment(generator)}
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
    by_id = {ex.id: ex for ex in examples}
    pred_path = out / PREDICTIONS
    done: set[tuple[str, int]] = set()
    if pred_path.exists():
        for lineno, row in enumerate(read_jsonl(pred_path, repair_tail=True), start=1):
            sample = sample_index(row.get("sample", 0), file=pred_path, row=lineno, samples=samples)
            key = (str(row.get("id")), sample)
            if key[0] not in by_id:
                raise DataError(
                    "id not in the evaluation data: predictions from another dataset?",
                    file=pred_path,
                    row=lineno,
                    field="id",
                )
            done.add(key)
    # Batches sit at fixed positions, and a generator that takes a `call_seed` gets the batch's position: a
    # resumed run regenerates exactly the batches that are missing, with the seeds an uninterrupted run used,
    # and writes only the rows it lacks (byte-identical output). A generator that takes all samples of a
    # prompt in one request (`samples_per_request`: endpoints, vLLM) gets batches of examples, each asked
    # for `samples` completions with the seed of its position in the data (`seed + index`), and only the
    # examples with a missing sample are asked again.
    per_prompt = getattr(generator, "samples_per_request", False)
    seed = int(info.get("seed") or 0)
    if per_prompt:
        units = [[(ex, s) for s in range(samples)] for ex in examples]
    else:
        units = [[pair] for pair in ((ex, s) for ex in examples for s in range(samples))]
    index = {ex.id: i for i, ex in enumerate(examples)}
    batches = [
        (i // batch_size, [pair for unit in units[i : i + batch_size] for pair in unit])
        for i in range(0, len(units), batch_size)
        if any((ex.id, s) not in done for unit in units[i : i + batch_size] for ex, s in unit)
    ]
    seeded = getattr(generator, "seeds_calls", False)
    if done:
        log.info(
            "resuming: %d of %d predictions already in %s", len(done), len(examples) * samples, pred_path
        )

    with (
        JsonlAppender(pred_path) as sink,
        ProgressBar(progress, len(examples) * samples, len(done)) as advance,
    ):
        for position, batch in batches:
            if per_prompt:  # a prompt's samples depend on its own seed only: ask for the missing ones
                heads = [
                    ex for ex, s in batch if s == 0 and any((ex.id, k) not in done for k in range(samples))
                ]
                batch = [(ex, s) for ex in heads for s in range(samples)]
                got = generator.generate(
                    [task.render(ex) for ex in heads], n=samples, seeds=[seed + index[ex.id] for ex in heads]
                )
                completions = [[outs[s]] for outs in got for s in range(samples)]
                finish = getattr(generator, "last_finish_reasons", None)
                if isinstance(finish, list) and len(finish) == len(heads):
                    finish = [[f[s] if s < len(f) else None] for f in finish for s in range(samples)]
            else:
                prompts = [task.render(ex) for ex, _ in batch]
                completions = (
                    generator.generate(prompts, n=1, call_seed=position)
                    if seeded
                    else generator.generate(prompts, n=1)
                )
                finish = getattr(generator, "last_finish_reasons", None)
            if not isinstance(finish, list) or len(finish) != len(batch):
                finish = [[None]] * len(batch)
            rows = []
            for (ex, s), outs, why in zip(batch, completions, finish, strict=True):
                if (ex.id, s) in done:
                    continue
                rows.append(
                    prediction_row(
                        task,
                        ex,
                        s,
                        outs[0],
                        finish_reason=why[0] if why else None,  # "length": the truncation rate
                        yes_probability=model_probability(task, generator, ex, outs[0]),
                    ).to_dict()
                )
            sink.write(rows)
            advance(len(rows))

    rows = read_jsonl(pred_path)
    order = {ex.id: i for i, ex in enumerate(examples)}
    unique = {
        (r["id"], int(r["sample"])): r for r in rows
    }  # a crash between write and fsync cannot duplicate,
    rows = sorted(unique.values(), key=lambda r: (order[r["id"]], int(r["sample"])))  # but be safe
    for r in rows:  # rows written before the task reported an extra verdict get it now (resume)
        if any(f"{v}_correct" not in r for v in task.extra_verdicts):
            r.update(task.verify_extra(by_id[r["id"]], r.get("completion") or ""))
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
    from ehrmind.eval.analysis import analyse
    from ehrmind.eval.analysis import report_lines as error_report_lines
    from ehrmind.eval.reasoning_checks import report_lines, summarize_reasoning_checks
    from ehrmind.eval.report import write_report

    metrics = task.metrics(rows)
    errors = analyse(rows)
    if examples and errors.get("n"):
        errors.update(task.error_analysis({ex.id: ex for ex in examples}, rows))
    metrics["errors"] = errors
    checks = summarize_reasoning_checks(task, examples, rows) if examples else None
    if checks is not None:  # tasks with reasoning checks (MedCalc): grounding and final-value rates
        metrics["reasoning_checks"] = checks
    metrics["run"] = {**info, "finished": datetime.now(UTC).isoformat(timespec="seconds")}
    atomic_write_json(out / METRICS, metrics)
    sections, check_lines = task.report_sections(metrics), report_lines(checks)
    extra = [*sections, *([""] if sections and check_lines else []), *check_lines]
    failure_lines = error_report_lines(errors)
    extra = [*extra, *([""] if extra and failure_lines else []), *failure_lines]
    write_report(out, metrics, task.group_fields, extra=extra, verdicts=task.extra_verdicts, rows=rows)
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
