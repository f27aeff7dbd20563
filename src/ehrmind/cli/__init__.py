"""The `ehrmind` command line. Subcommands parse options, call one function, and say where outputs went.

Each module holds a group of commands (options shared between them in `options.py`); this one builds the
app and lists the commands in the order `ehrmind --help` shows them."""

from __future__ import annotations

from typing import Annotated

import typer

from ehrmind.cli import data, diagnose, evaluate, matrix, programs, serve, train
from ehrmind.cli.common import Commands, ListOptions

app = typer.Typer(
    cls=Commands,
    name="ehrmind",
    help="Adapt LLMs to clinical reasoning over EHRs: SFT warm-up, then RL with verifiable rewards.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _everywhere(
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            envvar="EHRMIND_THREADS",
            help="Threads for torch's CPU kernels (default: one per core). On a machine other jobs share, "
            "1 can be several times faster (docs/BENCHMARKS.md).",
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Debug logs, and other libraries' info logs.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Warnings and errors only.")] = False,
) -> None:
    """Options for every command: `ehrmind --threads 1 eval …`."""
    import logging

    from ehrmind.cli.common import LOG_LEVEL

    ours = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    LOG_LEVEL.update(ehrmind=ours, others=logging.INFO if verbose else logging.WARNING)
    if threads is not None:
        from ehrmind.runtime import set_threads

        set_threads(threads)


COMMANDS = (
    ("eval", evaluate.eval_cmd),
    ("score", evaluate.score_cmd),
    ("diagnose", diagnose.diagnose_cmd),
    ("matrix", matrix.matrix_cmd),
    ("data", data.data_cmd),
    ("sft", train.sft_cmd),
    ("rl", train.rl_cmd),
    ("import-recipe", train.import_recipe_cmd),
    ("rationales", train.rationales_cmd),
    ("serve", serve.serve_cmd),
    ("audit", data.audit_cmd),
    ("export-predictions", evaluate.export_predictions_cmd),
    ("export-verl", train.export_verl_cmd),
    ("tiny-model", train.tiny_model_cmd),
    ("get-model", train.get_model_cmd),
    ("demo", programs.demo_cmd),
)
LISTS = {"diagnose", "matrix"}
"""Commands that take several values after one flag (`--models A B`, `--mode reasoning direct`)."""

for _name, _command in COMMANDS:
    app.command(_name, cls=ListOptions if _name in LISTS else None)(_command)

FAMILY_COMMANDS = "ehrmind.commands"
"""The entry-point group through which a task family (built in or from another package) adds a command:
`[project.entry-points."ehrmind.commands"] ehrshot-train-data = "ehrmind.tasks.ehrshot.command:…"`."""


def _family_commands() -> None:
    """Register the families' commands; one that fails to load is skipped with a warning naming it, so a
    broken plug-in never takes the other commands down."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=FAMILY_COMMANDS):
        if ep.name in {name for name, _ in COMMANDS}:
            continue  # a built-in command keeps its name
        try:
            app.command(ep.name)(ep.load())
        except Exception as e:  # another package's code: say whose, keep the CLI usable
            import logging

            logging.getLogger(__name__).warning("command %s (%s) not loaded: %s", ep.name, ep.value, e)


_family_commands()


def main() -> None:
    app()
