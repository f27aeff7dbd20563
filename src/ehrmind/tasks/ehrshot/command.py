"""`ehrmind ehrshot-train-data`: raw EHR events to the folders recipes/ehrshot/ train on, in one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ehrmind.cli.common import key_values, setup_logging
from ehrmind.cli.options import (
    ApiKeyEnvOpt,
    BatchSizeOpt,
    DeviceOpt,
    MaxNewTokensOpt,
    OutOpt,
    SamplesOpt,
    TemperatureOpt,
    TopPOpt,
)


def ehrshot_train_data_cmd(
    source: Annotated[str, typer.Option("--source", help="MEDS dataset, EHRSHOT folder or events file.")],
    labeler: Annotated[str, typer.Option("--labeler", help="EHRSHOT labeler, e.g. new_hypertension.")],
    out: OutOpt,
    recipe: Annotated[
        Path | None,
        typer.Option(
            "--recipe",
            help="The model's recipe (recipes/ehrshot/…): its prompt options, and with --self its sft.model.",
        ),
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option("--set", help="`ehrmind data` option key=value, e.g. tables=paper (repeatable)."),
    ] = None,
    per_label: Annotated[
        int, typer.Option("--per-label", help="Warm-up pool: at most this many rows of each label.")
    ] = 150,
    held_out_fraction: Annotated[
        float,
        typer.Option("--held-out-fraction", help="Share of patients held out when the data has no splits."),
    ] = 0.2,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the patient split and the sampling.")] = 0,
    self_mode: Annotated[
        bool, typer.Option("--self", help="Warm-up rationales by rejection sampling from the recipe's model.")
    ] = False,
    model: Annotated[
        str | None, typer.Option("--model", help="With --self: this model instead of the recipe's sft.model.")
    ] = None,
    teacher_url: Annotated[
        str | None, typer.Option("--teacher-url", help="Rationales from this OpenAI-compatible endpoint.")
    ] = None,
    teacher_model: Annotated[str | None, typer.Option("--teacher-model", help="Its model name.")] = None,
    api_key_env: ApiKeyEnvOpt = None,
    samples: SamplesOpt = 4,
    temperature: TemperatureOpt = 0.7,
    top_p: TopPOpt = 1.0,
    max_new_tokens: MaxNewTokensOpt = 800,
    batch_size: BatchSizeOpt = 8,
    device: DeviceOpt = "cpu",
    backend: Annotated[
        str | None, typer.Option("--backend", help="With --self: hf (default) or vllm.")
    ] = None,
) -> None:
    """Label the events, split by patient into train/ and held_out/, sample a label-balanced warmup_pool/,
    and (with --self or --teacher-url) write the verified warm-up rationales to warmup/rationales.jsonl."""
    setup_logging()
    from ehrmind.errors import ConfigError
    from ehrmind.registry import get_task
    from ehrmind.tasks.ehrshot.warmup import WARMUP, build_training_data, make_rationales

    generate = self_mode or teacher_url is not None
    if generate and recipe is None:
        raise ConfigError("warm-up rationales need --recipe (the prompt options the model is trained with)")
    build = {**key_values(option), "labeler": labeler}
    counts = build_training_data(
        get_task("ehrshot"),
        source,
        out,
        per_label=per_label,
        held_out_fraction=held_out_fraction,
        seed=seed,
        build_options=build,
    )
    typer.echo(f"wrote {out}: {counts}")
    if not generate:
        return
    from ehrmind.generate.settings import GenerationSettings
    from ehrmind.train.rationales import teacher_generator
    from ehrmind.train.recipe import load_recipe, recipe_task

    loaded = load_recipe(recipe, stage="sft")  # type: ignore[arg-type]
    settings = GenerationSettings(
        samples=samples,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        seed=seed,
    )
    generator, mode = teacher_generator(
        teacher_url=teacher_url,
        teacher_model=teacher_model,
        api_key_env=api_key_env,
        model=(model or loaded.model) if self_mode and not teacher_url else None,
        self_mode=self_mode,
        settings=settings,
        device=device,
        backend=backend,
    )
    summary = make_rationales(
        recipe_task(loaded), out, generator, mode=mode, samples=samples, batch_size=batch_size
    )
    typer.echo(f"kept {summary['kept']} rationales; SFT set: {out / WARMUP / 'rationales.jsonl'}")
