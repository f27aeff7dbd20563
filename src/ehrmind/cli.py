"""The `ehrmind` command line. Subcommands parse options, call one function, and say where outputs went."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="ehrmind",
    help="Adapt LLMs to clinical reasoning over EHRs: SFT warm-up, then RL with verifiable rewards.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

TaskOpt = Annotated[str, typer.Option("--task", help="Registered task name, e.g. medcalc.")]
DataOpt = Annotated[
    str, typer.Option("--data", help="Local CSV/Parquet/JSONL file or a Hugging Face dataset id.")
]
OutOpt = Annotated[Path, typer.Option("--out", help="Output folder.")]
SplitOpt = Annotated[str | None, typer.Option("--split", help="Split of a Hub dataset (default: test).")]
ModeOpt = Annotated[str, typer.Option("--mode", help="Prompt mode: reasoning (think + answer) or direct.")]
PrefillOpt = Annotated[
    bool, typer.Option("--prefill/--no-prefill", help="Prefill the assistant turn with the paper's opening.")
]
TaskOptionOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--task-option", help="Task-specific option key=value, e.g. max_prompt_tokens=3072 (repeatable)."
    ),
]


def _setup_logging(verbose: bool = False) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(show_path=False, rich_tracebacks=False)],
        force=True,
    )


def _fail(e: Exception) -> None:
    typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _summary(metrics: dict, out: Path) -> None:
    acc, ci = metrics.get("accuracy"), metrics.get("ci95")
    acc_s = "—" if acc is None else f"{100 * acc:.1f}%"
    ci_s = "" if not ci else f" (95% CI {100 * ci[0]:.1f}–{100 * ci[1]:.1f})"
    typer.echo(
        f"accuracy {acc_s}{ci_s} over n={metrics.get('n')}; format errors {metrics.get('format_error_rate')}"
    )
    typer.echo(f"wrote {out / 'predictions.jsonl'}, {out / 'metrics.json'}, {out / 'report.md'}")


@app.command("eval")
def eval_cmd(
    task: TaskOpt,
    data: DataOpt,
    model: Annotated[str, typer.Option("--model", help="Local model folder or Hugging Face model id.")],
    out: OutOpt,
    limit: Annotated[int | None, typer.Option("--limit", help="Evaluate only the first N examples.")] = None,
    samples: Annotated[int, typer.Option("--samples", help="Completions per example (K).")] = 1,
    temperature: Annotated[float, typer.Option("--temperature", help="0 = greedy.")] = 0.0,
    top_p: Annotated[float, typer.Option("--top-p")] = 1.0,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens")] = 1024,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 8,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    split: SplitOpt = None,
    mode: ModeOpt = "reasoning",
    prefill: PrefillOpt = False,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:1, mps …")] = "cpu",
    task_option: TaskOptionOpt = None,
) -> None:
    """Generate with a Hugging Face model and score with the task's verifier (resumable)."""
    _setup_logging()
    from ehrmind.errors import ConfigError, DataError
    from ehrmind.eval.runner import run_eval, run_info
    from ehrmind.generate.hf import GenerationSettings, HFGenerator
    from ehrmind.registry import get_task

    try:
        t = get_task(task, mode=mode, prefill=prefill, **_key_values(task_option or []))
        settings = GenerationSettings(
            max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed
        )
        examples = t.load(data, split)[:limit]
        info = run_info(
            t,
            examples,
            data,
            model=model,
            samples=samples,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            seed=seed,
            limit=limit,
        )
        if samples > 1 and temperature == 0:
            raise ConfigError("several samples with greedy decoding are identical; set --temperature > 0")
        generator = HFGenerator(model, settings, device=device)
        metrics = run_eval(t, examples, generator, out, samples=samples, batch_size=batch_size, info=info)
    except (ConfigError, DataError, KeyError, TypeError) as e:
        _fail(e)
    _summary(metrics, out)


@app.command("score")
def score_cmd(
    task: TaskOpt,
    data: DataOpt,
    predictions: Annotated[
        Path, typer.Option("--predictions", help='JSONL lines {"id": …, "completion": …}.')
    ],
    out: OutOpt,
    split: SplitOpt = None,
    mode: ModeOpt = "reasoning",
    prefill: PrefillOpt = False,
    task_option: TaskOptionOpt = None,
) -> None:
    """Score completions produced elsewhere (an API model, another framework)."""
    _setup_logging()
    from ehrmind.errors import ConfigError, DataError
    from ehrmind.eval.runner import run_info, run_score
    from ehrmind.registry import get_task

    try:
        t = get_task(task, mode=mode, prefill=prefill, **_key_values(task_option or []))
        examples = t.load(data, split)
        metrics = run_score(t, examples, predictions, out, info=run_info(t, examples, data))
    except (ConfigError, DataError, KeyError, TypeError) as e:
        _fail(e)
    _summary(metrics, out)


@app.command("data")
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
    _setup_logging()
    from ehrmind.errors import ConfigError, DataError
    from ehrmind.registry import get_task
    from ehrmind.snapshot import MANIFEST

    try:
        options = _key_values(option or [])
        for key, value in (("split", split), ("labeler", labeler), ("seed", seed)):
            if value is not None:
                options[key] = value
        manifest = get_task(task).build_data(source, out, **options)
    except (ConfigError, DataError, KeyError) as e:
        _fail(e)
    files = ", ".join(str(out / name) for name in manifest["files"])
    typer.echo(f"{manifest['n']} examples; wrote {files} and {out / MANIFEST}")


def _key_values(pairs: list[str]) -> dict[str, object]:
    """`key=value` strings to a dict; values parsed as YAML scalars (numbers, booleans, lists)."""
    from ehrmind.train.recipe import apply_overrides

    return apply_overrides({}, pairs)


RecipeOpt = Annotated[Path, typer.Option("--recipe", help="Recipe YAML (see recipes/).")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a recipe key: key=value or trl.key=value (repeatable)."),
]


def _train(stage: str, recipe: Path, overrides: list[str] | None) -> None:
    _setup_logging()
    from ehrmind.errors import ConfigError, DataError
    from ehrmind.train.recipe import load_recipe

    try:
        r = load_recipe(recipe, overrides or [], stage=stage)  # validated before any model loads
        if stage == "sft":
            from ehrmind.train.sft import run_sft as run
        else:
            from ehrmind.train.rl import run_rl as run
        out = run(r)
    except (ConfigError, DataError, KeyError) as e:
        _fail(e)
    typer.echo(f"wrote model, checkpoints and ehrmind_run.json to {out}")


@app.command("sft")
def sft_cmd(recipe: RecipeOpt, option: SetOpt = None) -> None:
    """SFT warm-up (TRL SFTTrainer); rerun the same command to resume from the last checkpoint."""
    _train("sft", recipe, option)


@app.command("rl")
def rl_cmd(recipe: RecipeOpt, option: SetOpt = None) -> None:
    """GRPO with verifiable rewards (TRL GRPOTrainer); rerun the same command to resume."""
    _train("rl", recipe, option)


@app.command("audit")
def audit_cmd(
    data: DataOpt,
    out: OutOpt,
    task: Annotated[
        str, typer.Option("--task", help="Only medcalc has a calculator knowledge base.")
    ] = "medcalc",
    corrected: Annotated[
        Path | None,
        typer.Option("--corrected", help="Physician-corrected labels (Unique ID, Ground Truth Answer, …)."),
    ] = None,
) -> None:
    """Recompute every row with the calculator knowledge base; report agreement and disagreement causes."""
    _setup_logging()
    from ehrmind.errors import DataError

    if task != "medcalc":
        _fail(ValueError(f"audit supports --task medcalc only, got {task!r}"))
    from ehrmind.tasks.medcalc.audit import run_audit

    try:
        run_audit(data, out, corrected=corrected)
    except (DataError, KeyError) as e:
        _fail(e)
    typer.echo(f"wrote {out / 'audit.csv'} and {out / 'summary.md'}")


@app.command("tiny-model")
def tiny_model_cmd(
    out: OutOpt,
    size: Annotated[str, typer.Option("--size", help="tiny or small")] = "tiny",
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Build a small random causal LM with a chat template, locally (no hub), for tests and the demo."""
    _setup_logging()
    from ehrmind.train.tiny import build_tiny_model

    if size not in ("tiny", "small"):
        _fail(ValueError(f"--size must be tiny or small, got {size!r}"))
    path = build_tiny_model(out, size=size, seed=seed)
    typer.echo(f"wrote model and tokenizer to {path}")


@app.command("demo")
def demo_cmd(out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("runs/demo")) -> None:
    """The main job on the embedded default: CPU, tiny local model, no network."""
    _setup_logging()
    from ehrmind.demo import run_demo

    report = run_demo(out)
    typer.echo(f"demo finished; report: {report}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
