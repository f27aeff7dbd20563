"""`ehrmind data` and `audit`: a task's data as canonical Examples, and its labels checked against the
task's knowledge base."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ehrmind.cli.common import fail, key_values, setup_logging
from ehrmind.cli.options import DataOpt, OutOpt, SplitOpt, TaskOpt


def data_cmd(
    task: TaskOpt,
    source: Annotated[
        str, typer.Option("--source", help="Local file or folder, or a Hugging Face dataset id.")
    ],
    out: OutOpt,
    split: SplitOpt = None,
    labeler: Annotated[
        str | None, typer.Option("--labeler", help="Labeler name (tasks that build labels).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed for splits and sampling.")] = None,
    option: Annotated[
        list[str] | None, typer.Option("--set", help="Task-specific option key=value (repeatable).")
    ] = None,
) -> None:
    """Write the task's canonical Examples as JSONL plus a manifest."""
    setup_logging()
    from ehrmind.registry import get_task
    from ehrmind.snapshot import MANIFEST

    options = key_values(option)
    for key, value in (("split", split), ("labeler", labeler), ("seed", seed)):
        if value is not None:
            options[key] = value
    manifest = get_task(task).build_data(source, out, **options)
    files = ", ".join(str(out / name) for name in manifest["files"])
    typer.echo(f"{manifest['n']} examples; wrote {files} and {out / MANIFEST}")


def audit_cmd(
    data: DataOpt,
    out: OutOpt,
    task: Annotated[
        str | None,
        typer.Option(
            "--task",
            help="A task with a knowledge base to recompute labels with (default: the one that has one).",
        ),
    ] = None,
    corrected: Annotated[
        Path | None,
        typer.Option("--corrected", help="Physician-corrected labels (Unique ID, Ground Truth Answer, …)."),
    ] = None,
) -> None:
    """Recompute every row with the task's knowledge base (MedCalc's calculators); report agreement and
    disagreement causes."""
    setup_logging()
    from ehrmind.errors import ConfigError
    from ehrmind.registry import get_task, list_tasks, task_class
    from ehrmind.tasks.analysis import LabelAudit, attached

    # families that declare an audit themselves (not subclasses that inherit one)
    able = [
        n for n in list_tasks() if "analyses" in vars(task_class(n)) and attached(get_task(n), LabelAudit)
    ]
    if task is None and len(able) != 1:
        fail(ConfigError(f"give --task: tasks with a knowledge base to audit labels with: {', '.join(able)}"))
    task = task or able[0]
    audits = attached(get_task(task), LabelAudit)
    if not audits:
        fail(
            ConfigError(
                f"task {task!r} has no knowledge base to recompute its labels with (tasks that have one: "
                f"{', '.join(able) or 'none'})"
            )
        )
    written = audits[0].audit(data, out, corrected=corrected)
    typer.echo(f"wrote {', '.join(str(p) for p in written)}")
