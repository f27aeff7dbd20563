"""`ehrmind matrix`: every model on every task, one table."""

from __future__ import annotations

from typing import Annotated

import typer

from ehrmind.cli.common import flag_groups, setup_logging, task_option_values
from ehrmind.cli.options import (
    ANY_BACKEND,
    GREEDY,
    BackendFlags,
    DeviceOpt,
    LimitOpt,
    ModesOpt,
    OneShotOpt,
    OutOpt,
    Sampling,
    SplitOpt,
)


@flag_groups
def matrix_cmd(
    models: Annotated[list[str], typer.Option("--models", help="Model folders or Hub ids: --models A B …")],
    tasks: Annotated[list[str], typer.Option("--tasks", help="Task names: --tasks medcalc ehrshot …")],
    data: Annotated[list[str], typer.Option("--data", help="Each task's data: --data TASK=PATH …")],
    out: OutOpt,
    limit: LimitOpt = None,
    split: SplitOpt = None,
    mode: ModesOpt = None,
    exemplars: OneShotOpt = None,
    sampling: Sampling = GREEDY,
    device: DeviceOpt = "cpu",
    backend_flags: BackendFlags = ANY_BACKEND,
    task_option: Annotated[
        list[str] | None,
        typer.Option(
            "--task-option", help="TASK:key=value, e.g. trec_ct:prompt_token_budget=1500 (repeatable)."
        ),
    ] = None,
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            help="One of --models (its path or label), e.g. the untrained model: every other model's cells "
            "get the paired difference against it on the same items (accuracy, McNemar, balanced accuracy).",
        ),
    ] = None,
) -> None:
    """Evaluate every model on every task: a table and a heatmap of accuracy and each task's main metric."""
    setup_logging()
    from ehrmind.errors import ConfigError
    from ehrmind.eval.matrix import run_matrix

    paths = task_pairs(data, "=", "--data TASK=PATH")
    missing = [t for t in tasks if t not in paths]
    extra = [t for t in paths if t not in tasks]
    if missing or extra:
        raise ConfigError(
            f"--data must give one path per --tasks entry (missing: {missing or 'none'}; not in --tasks: "
            f"{extra or 'none'})"
        )
    options: dict[str, dict[str, object]] = {}
    for t, kv in task_pairs(task_option or [], ":", "--task-option TASK:key=value", unique=False):
        options.setdefault(t, {}).update(task_option_values(t, [kv]))
    run_matrix(
        models,
        {t: paths[t] for t in tasks},
        out,
        modes=mode or None,
        limit=limit,
        split=split,
        backend=backend_flags.choose(device),
        generation=sampling.settings(),
        task_options=options,
        exemplars=exemplars,
        baseline=baseline,
    )
    typer.echo(
        f"wrote {out / 'matrix.md'}, {out / 'matrix.json'}, {out / 'matrix.png'} (runs in {out / 'runs'})"
    )


def task_pairs(items: list[str], sep: str, form: str, unique: bool = True):  # type: ignore[no-untyped-def]
    """`TASK<sep>value` strings to a dict (unique) or a list of pairs."""
    from ehrmind.errors import ConfigError

    pairs = []
    for item in items:
        name, found, value = item.partition(sep)
        if not found or not name.strip() or not value.strip():
            raise ConfigError(f"expected {form}, got {item!r}")
        pairs.append((name.strip(), value.strip()))
    if not unique:
        return pairs
    names = [n for n, _ in pairs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{form}: task(s) given twice: {', '.join(dupes)}")
    return dict(pairs)
