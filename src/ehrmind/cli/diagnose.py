"""`ehrmind diagnose`: pass@k by group tells missing from misapplied knowledge, and plans the SFT rows."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ehrmind.cli.common import flag_groups, setup_logging, task_option_values
from ehrmind.cli.options import (
    ANY_BACKEND,
    BackendFlags,
    DataOpt,
    DeviceOpt,
    LimitOpt,
    MaybeModelOpt,
    ModesOpt,
    OneShotOpt,
    OutOpt,
    PrefillOpt,
    Sampling,
    SplitOpt,
    TaskOpt,
    TaskOptionOpt,
)

ROLLOUT = Sampling(samples=None, temperature=0.6, top_p=0.95)
"""Sampled as the GRPO recipes' rollouts are, --k of them per item: the pass@k RL would rely on."""


@flag_groups
def diagnose_cmd(
    task: TaskOpt,
    data: DataOpt,
    out: OutOpt,
    k: Annotated[int, typer.Option("--k", help="The k of pass@k (and the default samples per item).")] = 8,
    model: MaybeModelOpt = None,
    predictions: Annotated[
        Path | None,
        typer.Option("--predictions", help="Diagnose existing samples (an eval predictions.jsonl) instead."),
    ] = None,
    limit: LimitOpt = None,
    sampling: Sampling = ROLLOUT,
    split: SplitOpt = None,
    mode: ModesOpt = None,
    prefill: PrefillOpt = None,
    device: DeviceOpt = "cpu",
    backend_flags: BackendFlags = ANY_BACKEND,
    task_option: TaskOptionOpt = None,
    exemplars: OneShotOpt = None,
    threshold: Annotated[
        float, typer.Option("--threshold", help="Verdict: misapplied when (reliable) pass@k >= this.")
    ] = 0.5,
    reliable_rule: Annotated[
        str,
        typer.Option(
            "--reliable-rule",
            help="Reliable pass@k: 'paper' (the EHRMind paper's categories, thresholds, answer strings and "
            "correctness, as its code), 'paper-thresholds' (its categories and thresholds on ehrmind's verdicts "
            "and normalised answers) or 'ehrmind' (--min-correct, --max-entropy, --max-distinct, --guessable).",
        ),
    ] = "paper",
    min_correct: Annotated[
        int, typer.Option("--min-correct", help="Reliable pass@k (ehrmind rule): correct samples per item.")
    ] = 2,
    max_entropy: Annotated[
        float, typer.Option("--max-entropy", help="Reliable pass@k: highest answer entropy (bits) per item.")
    ] = 0.9,
    max_distinct: Annotated[
        int, typer.Option("--max-distinct", help="Guessable groups: at most this many distinct gold answers.")
    ] = 10,
    guessable: Annotated[
        list[str] | None, typer.Option("--guessable", help="Name the guessable groups instead (repeatable).")
    ] = None,
    plan_by: Annotated[
        str | None, typer.Option("--plan-by", help="category or calculator_name (default: the finest).")
    ] = None,
    plan_examples: Annotated[
        int, typer.Option("--plan-examples", help="SFT rows per group with missing knowledge.")
    ] = 20,
    misapplied_examples: Annotated[
        int, typer.Option("--misapplied-examples", help="SFT rows per group with misapplied knowledge.")
    ] = 0,
    min_items: Annotated[
        int, typer.Option("--min-items", help="Groups with fewer items get 'too few items' and no plan rows.")
    ] = 5,
    format_threshold: Annotated[
        float,
        typer.Option(
            "--format-threshold",
            help="Below --threshold, a group with at least this share of unreadable samples gets the verdict "
            "'format' (cannot follow the output format), planned as format rows; 0 turns it off.",
        ),
    ] = 0.5,
) -> None:
    """pass@k per category (and calculator): missing vs misapplied knowledge, a report and an SFT plan."""
    setup_logging()
    from ehrmind.eval.diagnose import DiagnosisSettings, run_diagnose

    settings = DiagnosisSettings(
        k=k,
        threshold=threshold,
        reliable_rule=reliable_rule,
        min_correct=min_correct,
        max_entropy=max_entropy,
        max_distinct=max_distinct,
        guessable=guessable,
        plan_by=plan_by,
        plan_examples=plan_examples,
        misapplied_examples=misapplied_examples,
        min_items=min_items,
        format_threshold=format_threshold or None,
    )
    diagnosis = run_diagnose(
        task,
        data,
        out,
        settings,
        model=model,
        predictions=predictions,
        modes=mode or None,
        split=split,
        limit=limit,
        backend=backend_flags.choose(device),
        generation=sampling.settings(samples=sampling.samples or k),
        prefill=prefill,
        task_options=task_option_values(task, task_option),
        exemplars=exemplars,
    )
    overall, by = diagnosis["overall"], diagnosis["plan_by"]
    from collections import Counter

    verdicts = Counter(b["verdict"] for b in diagnosis[f"by_{by}"].values())
    extra = "".join(
        f"; {what} in {verdicts[v]}"
        for v, what in (("format", "cannot follow the output format"), ("too few items", "too few items"))
        if verdicts[v]
    )
    typer.echo(
        f"pass@1 {100 * overall['pass_at_1']:.1f}%, pass@{k} {100 * overall['pass_at_k']:.1f}% over "
        f"n={overall['n']}; knowledge missing in {verdicts['missing']} group(s) by {by}{extra}"
    )
    typer.echo(f"wrote {out / 'diagnosis.json'}, {out / 'report.md'}, {out / 'sft_plan.yaml'}")
