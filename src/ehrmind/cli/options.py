"""Every option more than one command takes, declared once: its flag and help text live here, its default at
the command's parameter (`temperature: TemperatureOpt = 0.6`), since commands differ there.

The generation flags eval, diagnose and matrix share come as two groups (`Sampling`, `BackendFlags`): a
command names each group as one parameter and `common.flag_groups` spreads it into its flags, so neither
the signatures nor the code that turns the flags into library settings is written three times."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ehrmind.cli.common import FlagGroup, key_values

if TYPE_CHECKING:
    from ehrmind.generate.backends import Backend
    from ehrmind.generate.settings import GenerationSettings

TaskOpt = Annotated[str, typer.Option("--task", help="Registered task name, e.g. medcalc.")]
DataOpt = Annotated[
    str, typer.Option("--data", help="Local CSV/Parquet/JSONL file or a Hugging Face dataset id.")
]
OutOpt = Annotated[Path, typer.Option("--out", help="Output folder.")]
SplitOpt = Annotated[str | None, typer.Option("--split", help="Split of a Hub dataset (default: test).")]
LimitOpt = Annotated[int | None, typer.Option("--limit", help="Only the first N examples.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace what an existing --out holds.")]

_MODEL = typer.Option("--model", help="Local model folder or Hugging Face model id.")
ModelOpt = Annotated[str, _MODEL]
MaybeModelOpt = Annotated[str | None, _MODEL]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:1, mps …")]

ModeOpt = Annotated[
    str | None,
    typer.Option(
        "--mode",
        help="Prompt mode: reasoning (think + answer), direct (answer only) or one-shot (medcalc; with "
        "--task-option exemplars=PATH). Default: the mode a model folder ehrmind trained was trained "
        "with, else reasoning.",
    ),
]
ModesOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--mode",
        help="Prompt mode(s), reported side by side: reasoning, direct, one-shot (with --one-shot-file). "
        "Default: the mode a model folder ehrmind trained was trained with, else reasoning.",
    ),
]
OneShotOpt = Annotated[
    Path | None,
    typer.Option(
        "--one-shot-file",
        help="One-shot exemplars: MedCalc-Bench's one_shot_finalized_explanation.json (or a one-row-per-calculator CSV).",
    ),
]
PrefillOpt = Annotated[
    bool | None,
    typer.Option(
        "--prefill/--no-prefill",
        help="Prefill the assistant turn with the paper's opening. Default: as a model folder ehrmind "
        "trained was trained, else no prefill.",
    ),
]
TaskOptionOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--task-option",
        help="A task option key=value, e.g. prompt_token_budget=3072 (trec_ct) or system_prompt=Answer "
        "briefly. (text as written; repeatable). A model folder ehrmind trained supplies the options it was "
        "trained with; one given here that differs is reported.",
    ),
]

# how completions are sampled
# (ranges here show in --help and refuse a flag as it is parsed; GenerationSettings checks the values again for
# Python callers, and refuses NaN and infinity, which pass any range)
_SAMPLES = typer.Option("--samples", min=1, help="Completions per example (K).")
SamplesOpt = Annotated[int, _SAMPLES]
TemperatureOpt = Annotated[float, typer.Option("--temperature", min=0.0, help="0 = greedy.")]
TopPOpt = Annotated[float, typer.Option("--top-p", min=0.0, max=1.0)]
MaxNewTokensOpt = Annotated[int, typer.Option("--max-new-tokens", min=1, max=2**20)]
BatchSizeOpt = Annotated[int, typer.Option("--batch-size", min=1)]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, max=2**63 - 1)]

# where completions come from
BackendOpt = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="hf (transformers, this process), vllm (vLLM offline engine, GPU; pip install 'ehrmind\\[vllm]') "
        "or openai (an OpenAI-compatible endpoint at --url), or one an installed package registers "
        "(ehrmind.backends entry point). Default: openai with --url, else hf.",
    ),
]
UrlOpt = Annotated[
    str | None,
    typer.Option("--url", help="An OpenAI-compatible endpoint (…/v1); --model is then the served name."),
]
ApiKeyEnvOpt = Annotated[
    str | None, typer.Option("--api-key-env", help="Environment variable holding the endpoint's API key.")
]
ConcurrencyOpt = Annotated[
    int,
    typer.Option(
        "--concurrency",
        help="With --url: requests in flight at once (each asks for all samples of one prompt; keep "
        "--batch-size >= this).",
    ),
]
TemplateKwargOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--chat-template-kwarg",
        help="A chat-template variable key=value, e.g. enable_thinking=false for Qwen3 (repeatable).",
    ),
]
RevisionOpt = Annotated[
    str | None, typer.Option("--revision", help="Hub branch, tag or commit of --model (hf, vllm).")
]
RemoteCodeOpt = Annotated[
    bool, typer.Option("--trust-remote-code", help="Run the model repository's own code (hf, vllm).")
]

# training recipes
RecipeOpt = Annotated[Path, typer.Option("--recipe", help="Recipe YAML (see recipes/).")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a recipe key: key=value or trl.key=value (repeatable)."),
]
TrainTaskOpt = Annotated[
    str | None,
    typer.Option(
        "--task",
        help="Task of a flat TRL / open-r1 config (or its ehrmind_task: key); replaces an ehrmind recipe's task.",
    ),
]


@dataclasses.dataclass(frozen=True)
class Sampling(FlagGroup):
    """--samples … --seed: how eval, diagnose and matrix sample completions."""

    samples: Annotated[int | None, _SAMPLES] = 1
    """None: the command's own default (diagnose: --k)."""
    temperature: TemperatureOpt = 0.0
    top_p: TopPOpt = 1.0
    max_new_tokens: MaxNewTokensOpt = 1024
    batch_size: BatchSizeOpt = 8
    seed: SeedOpt = 0

    def settings(self, **changes: Any) -> GenerationSettings:
        """The library's settings, checked when made (a bad value is a ConfigError naming it)."""
        from ehrmind.generate.settings import GenerationSettings

        return GenerationSettings(**{**dataclasses.asdict(self), **changes})


@dataclasses.dataclass(frozen=True)
class BackendFlags(FlagGroup):
    """--backend … --trust-remote-code: where eval, diagnose and matrix generate."""

    backend: BackendOpt = None
    url: UrlOpt = None
    api_key_env: ApiKeyEnvOpt = None
    concurrency: ConcurrencyOpt = 1
    chat_template_kwarg: TemplateKwargOpt = None
    revision: RevisionOpt = None
    trust_remote_code: RemoteCodeOpt = False

    def choose(self, device: str, **more: Any) -> Backend:
        """The backend the flags ask for (one rule for eval, diagnose and matrix)."""
        from ehrmind.generate.backends import Backend

        return Backend.choose(
            self.backend,
            url=self.url,
            api_key_env=self.api_key_env,
            concurrency=self.concurrency,
            device=device,
            chat_template_kwargs=key_values(self.chat_template_kwarg),
            revision=self.revision,
            trust_remote_code=self.trust_remote_code,
            **more,
        )


GREEDY = Sampling()
"""One greedy completion per example (eval's and matrix's sampling)."""
ANY_BACKEND = BackendFlags()
"""No backend flag given: transformers in this process, or an endpoint with --url."""
