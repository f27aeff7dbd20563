"""`ehrmind eval`, `score` and `export-predictions`: one model's predictions, made here or elsewhere, scored
by the task's verifier."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ehrmind.cli.common import fail, flag_groups, setup_logging, task_option_values
from ehrmind.cli.options import (
    ANY_BACKEND,
    GREEDY,
    BackendFlags,
    DataOpt,
    DeviceOpt,
    LimitOpt,
    ModelOpt,
    ModeOpt,
    OutOpt,
    OverwriteOpt,
    PrefillOpt,
    Sampling,
    SplitOpt,
    TaskOpt,
    TaskOptionOpt,
)


def summary(metrics: dict, out: Path, task: str | None = None) -> None:
    """What eval and score print: accuracy with its interval, each analysis's headline (the task's main metric:
    balanced accuracy and AUROC for EHRSHOT, balanced accuracy and NDCG@10 for TREC CT; for MedCalc,
    MedCalc-Bench's official accuracy leads and `accuracy` is printed as ehrmind's extraction), and where the
    results went."""
    from ehrmind.registry import get_task
    from ehrmind.tasks.analysis import ACCURACY, headlines

    # the first headline carries n and format errors (MedCalc: MedCalc-Bench's official accuracy, issue #29)
    heads = headlines(get_task(task)) if task else [ACCURACY]
    acc, ci = heads[0].read(metrics)
    acc_s = "—" if acc is None else f"{100 * acc:.1f}%"
    ci_s = "" if not ci else f" (95% CI {100 * ci[0]:.1f}–{100 * ci[1]:.1f})"
    typer.echo(
        f"{heads[0].label} {acc_s}{ci_s} over n={metrics.get('n')}; "
        f"format errors {metrics.get('format_error_rate')}"
    )
    for headline in heads[1:]:  # each analysis's: the task's main metric
        line = headline.line(metrics)
        if line is not None:
            typer.echo(line)
    typer.echo(f"wrote {out / 'predictions.jsonl'}, {out / 'metrics.json'}, {out / 'report.md'}")


def _check_export_target(source: Path, out: Path, overwrite: bool) -> None:
    """An export never replaces its own input, nor an existing file without --overwrite, nor a folder."""
    from ehrmind.errors import ConfigError

    if out.exists() and source.exists() and out.resolve() == source.resolve():
        raise ConfigError(f"--out {out} is the predictions file being exported; give another path")
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give a file path")
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} exists; use another --out, or --overwrite to replace it")


def _check_run_task(source: Path, task: str) -> None:
    """Predictions of another task than --task (the run record beside them says) are refused."""
    from ehrmind.errors import DataError
    from ehrmind.runs import RunFolder

    folder = RunFolder(source.parent, ())
    try:
        made_by = (folder.stored() or {}).get("task")
    except DataError:  # an unreadable record: the rows are checked on their own
        return
    if made_by not in (None, task):
        raise DataError(
            f"these predictions are of task {made_by!r}, not {task!r}", file=folder.info_path, field="task"
        )


@flag_groups
def eval_cmd(
    task: TaskOpt,
    data: DataOpt,
    model: ModelOpt,
    out: OutOpt,
    limit: LimitOpt = None,
    sampling: Sampling = GREEDY,
    split: SplitOpt = None,
    mode: ModeOpt = None,
    prefill: PrefillOpt = None,
    device: DeviceOpt = "cpu",
    task_option: TaskOptionOpt = None,
    backend_flags: BackendFlags = ANY_BACKEND,
    logprobs: Annotated[
        bool,
        typer.Option(
            "--logprobs",
            help="With --url: ask the endpoint for the answer token's top log-probabilities, so a yes/no "
            "task's AUROC ranks by the model's P(yes) (vLLM or ehrmind serve; one more request per answer).",
        ),
    ] = False,
) -> None:
    """Generate with a model (transformers, vLLM or an endpoint) and score with the task's verifier
    (resumable)."""
    setup_logging()
    from ehrmind.api import evaluate

    backend = backend_flags.choose(device, logprobs=logprobs)
    metrics = evaluate(
        task,
        data,
        model,
        out,
        split=split,
        limit=limit,
        mode=mode,
        prefill=prefill,
        task_options=task_option_values(task, task_option),
        backend=backend,
        generation=sampling.settings(),
    )
    summary(metrics, out, task)


def score_cmd(
    task: TaskOpt,
    data: DataOpt,
    predictions: Annotated[
        Path, typer.Option("--predictions", help='JSONL lines {"id": …, "completion": …}.')
    ],
    out: OutOpt,
    split: SplitOpt = None,
    mode: ModeOpt = None,
    prefill: PrefillOpt = None,
    task_option: TaskOptionOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Score completions produced elsewhere (an API model, another framework)."""
    setup_logging()
    from ehrmind.api import score

    metrics = score(
        task,
        data,
        predictions,
        out,
        split=split,
        mode=mode,
        prefill=prefill,
        task_options=task_option_values(task, task_option),
        overwrite=overwrite,
    )
    summary(metrics, out, task)


def export_predictions_cmd(
    task: TaskOpt,
    predictions: Annotated[
        Path,
        typer.Option(
            "--predictions", help="An eval or score folder, or its predictions.jsonl (scored rows)."
        ),
    ],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="meds (ehrshot: meds-evaluation parquet), trec (trec_ct: a run file) or trec-qrels "
            "(trec_ct: the qrels of the same pairs).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Output file.")],
    run_name: Annotated[
        str, typer.Option("--run-name", help="The run's name in a TREC run file.")
    ] = "ehrmind",
    overwrite: OverwriteOpt = False,
) -> None:
    """Write scored predictions in a format other tools read: MEDS-DEV / meds-evaluation, trec_eval."""
    setup_logging()
    from ehrmind.errors import DataError
    from ehrmind.io import read_jsonl
    from ehrmind.registry import get_task
    from ehrmind.tasks.analysis import Exports, attached

    t = get_task(task)
    exporter = next((e for e in attached(t, Exports) if fmt in e.formats), None)
    if exporter is None:
        formats = [f for e in attached(t, Exports) for f in e.formats]
        fail(ValueError(f"task {task} exports {', '.join(formats) or 'no format'}, not {fmt!r}"))
    path = predictions / "predictions.jsonl" if predictions.is_dir() else predictions
    _check_export_target(path, out, overwrite)
    _check_run_task(path, task)
    rows = read_jsonl(path)
    seen: dict[tuple[str, Any], int] = {}
    for i, r in enumerate(rows, 1):
        if "correct" not in r:
            raise DataError(
                "not a scored prediction row: score completions first (ehrmind score)", file=path, row=i
            )
        first = seen.setdefault((str(r.get("id")), r.get("sample", 0)), i)
        if first != i:
            raise DataError(
                f"repeats id {r.get('id')!r} sample {r.get('sample', 0)} (first at row {first})",
                file=path,
                row=i,
            )
    counts = exporter.export(t, fmt, rows, out, run_name=run_name)
    typer.echo(f"wrote {out} ({', '.join(f'{k} {v}' for k, v in counts.items())})")
