"""`ehrmind serve`: a local model behind an OpenAI-compatible endpoint, for eval --url and rationales."""

from __future__ import annotations

from typing import Annotated

import typer

from ehrmind.cli.common import fail, flag_groups, setup_logging
from ehrmind.cli.options import ANY_BACKEND, BackendFlags, DeviceOpt, ModelOpt


@flag_groups
def serve_cmd(
    model: ModelOpt,
    host: Annotated[str, typer.Option("--host", help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0 = any free port).")] = 8000,
    max_new_tokens: Annotated[
        int, typer.Option("--max-new-tokens", help="Default when a request has no max_tokens.")
    ] = 1024,
    device: DeviceOpt = "cpu",
    name: Annotated[
        str | None, typer.Option("--name", help="Model name to report (default: --model).")
    ] = None,
    max_batch: Annotated[
        int,
        typer.Option(
            "--max-batch",
            help="Most sequences (requests x n) generated together from concurrent requests (1: one at a "
            "time). Seeded sampled requests batch too, each sampling from its own seed.",
        ),
    ] = 16,
    batch_wait_ms: Annotated[
        float,
        typer.Option("--batch-wait-ms", help="A batch closes when no request came for this long (ms)."),
    ] = 5.0,
    backend_flags: BackendFlags = ANY_BACKEND,
) -> None:
    """A minimal OpenAI-compatible server (/v1/chat/completions, /v1/models) over a local model; concurrent
    requests are generated in batches. The model is loaded as `ehrmind eval` loads it (--backend, …), a
    folder ehrmind trained with its training's chat-template variables."""
    setup_logging()
    from ehrmind.generate.server import serve
    from ehrmind.generate.settings import GenerationSettings

    def ready(url: str) -> None:
        typer.echo(f"serving {name or model} at {url} (Ctrl-C to stop)")

    try:
        settings = GenerationSettings(max_new_tokens=max_new_tokens)
        serve(
            model,
            host,
            port,
            settings,
            backend=backend_flags.choose(device),
            model_name=name,
            on_ready=ready,
            max_batch=max_batch,
            batch_wait_ms=batch_wait_ms,
        )
    except (ValueError, OSError) as e:  # bad settings, port in use
        fail(e)
