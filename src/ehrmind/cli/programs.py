"""`ehrmind demo`: the whole job (and with --study, the study) on the embedded data, on a laptop."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ehrmind.cli.common import fail, setup_logging


def demo_cmd(
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder (runs/demo, or runs/study).")
    ] = None,
    study: Annotated[
        bool,
        typer.Option("--study", help="Missing vs misapplied knowledge: SFT→RL vs either alone (longer)."),
    ] = False,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed", help="Model and training seed (with --study: the general model's). Default 0."
        ),
    ] = None,
    seeds: Annotated[
        str | None,
        typer.Option("--seeds", help="With --study: training seeds, comma-separated (default 0,1,2)."),
    ] = None,
    dev: Annotated[
        bool,
        typer.Option(
            "--dev",
            help="Compare stages on the development split, not the held-out one (for choosing settings).",
        ),
    ] = False,
    data_seed: Annotated[
        int,
        typer.Option(
            "--data-seed",
            help="Seed of the synthetic notes of every split: a fresh value gives fresh held-out items. Default 0.",
        ),
    ] = 0,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Run the demo on this pretrained model (a folder or Hub id, e.g. models/smollm2-135m-instruct "
            "from `make real-model`) with recipes/pretrained.yaml, instead of the small random model.",
        ),
    ] = None,
) -> None:
    """The main job on the embedded default: CPU, a small local model, no network."""
    setup_logging()
    from ehrmind.errors import ConfigError
    from ehrmind.io import output_folder

    split = "dev" if dev else "heldout"
    out = out or Path("runs/study" if study else "runs/real" if model else "runs/demo")
    output_folder(out, create=False)
    if study and model:
        fail(
            ConfigError(
                "--model runs the demo on a pretrained model; the study builds its own (drop --study)"
            )
        )
    if study:
        from ehrmind.programs.study import StudySettings, run_study

        try:
            chosen = tuple(int(x) for x in seeds.split(",")) if seeds else (0, 1, 2)
        except ValueError:
            fail(ConfigError(f"--seeds expects comma-separated integers, got {seeds!r}"))
        settings = StudySettings(
            seeds=chosen, general_seed=0 if seed is None else seed, evaluate_on=split, data_seed=data_seed
        )
        report = run_study(out, settings)
    else:
        from ehrmind.programs.demo import DemoSettings, run_demo

        chosen_settings = (
            DemoSettings.pretrained(model, evaluate_on=split, data_seed=data_seed)
            if model
            else DemoSettings(evaluate_on=split, data_seed=data_seed)
        )
        report = run_demo(out, chosen_settings, seed=0 if seed is None else seed)
    typer.echo(f"finished; report: {report}")
