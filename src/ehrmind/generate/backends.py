"""Where completions come from: one choice (`--backend hf|vllm|openai`) for eval, diagnose, matrix and
rationales, and one factory that builds the generator from it.

- `hf`: transformers `generate` in this process (CPU, one GPU, Apple `mps`); the default.
- `vllm`: vLLM's offline engine in this process (`pip install 'ehrmind[vllm]'`, a CUDA GPU); all samples
  of a prompt in one request, per-prompt seeds, prefill continued (`continue_final_message`).
- `openai`: any OpenAI-compatible endpoint (`--url`; vLLM's server, TGI, llama.cpp, OpenAI, `ehrmind
  serve`), `--concurrency` requests in flight over pooled connections. Nothing leaves the machine unless
  a URL is given.

Every generator is an `ehrmind.generate.base.Generator`: `generate(prompts, n) -> Generated` (completions
and their finish reasons), `describe()`, and the `capabilities` it declares (`samples_per_request`,
`seeds_calls`, `choice_logprobs`, …), which callers read instead of probing for attributes.

Backends are a registry, not a closed list: `@register_backend("sglang")` on a `build(model, settings,
backend)` function makes `--backend sglang` work in every command, and an installed package declares its
module in the `ehrmind.backends` entry-point group so the command line finds it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ehrmind.errors import ConfigError
from ehrmind.generate.base import Generator
from ehrmind.generate.settings import GenerationSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackendKind:
    """A registered backend: how it builds a generator, and what it is (`register_backend`)."""

    name: str
    build: Callable[[str, GenerationSettings, Backend], Any]
    """`build(model, settings, backend)` → a generator (`ehrmind.generate.base.Generator`)."""
    endpoint: bool = False
    """Generates at a URL (`--url`, `--api-key-env`, `--concurrency`, `--logprobs`), not from a model it loads
    (`--revision`, `--trust-remote-code`, `--device`)."""


_KINDS: dict[str, BackendKind] = {}
ENTRY_POINTS = "ehrmind.backends"
"""The entry-point group through which an installed package adds backends (a module that calls
`register_backend`): `[project.entry-points."ehrmind.backends"] sglang = "my_pkg.sglang"`."""
_loaded = False


def register_backend(name: str, *, endpoint: bool = False):
    """Decorator: `@register_backend("sglang")` on `build(model, settings, backend) -> generator`; `--backend
    sglang` then reaches it from every command. A duplicate name raises."""

    def deco(build: Callable[[str, GenerationSettings, Backend], Any]) -> Callable[..., Any]:
        if name in _KINDS and _KINDS[name].build is not build:
            raise ValueError(f"backend {name!r} is already registered by {_KINDS[name].build.__module__}")
        _KINDS[name] = BackendKind(name, build, endpoint)
        return build

    return deco


def backend_kinds() -> dict[str, BackendKind]:
    """Every backend: the built-in ones and those of installed packages' `ehrmind.backends` entry points (an
    entry point that fails to load is a ConfigError naming it and its package)."""
    global _loaded
    if not _loaded:
        from ehrmind.registry import load_entry_points

        load_entry_points(ENTRY_POINTS, "backend")
        _loaded = True
    return _KINDS


@dataclass(frozen=True)
class Backend:
    """A checked backend choice with its options (`Backend.choose` applies the rules once)."""

    name: str = "hf"
    """A registered backend (`register_backend`): hf, vllm, openai, or one a package adds."""
    url: str | None = None
    api_key_env: str | None = None
    concurrency: int = 1
    device: str = "cpu"
    logprobs: bool = False
    """openai only: ask for the answer token's top log-probabilities (one more request per answer)."""
    timeout: float = 120.0
    max_retries: int = 5
    vllm_options: dict[str, Any] = field(default_factory=dict)
    """Extra `vllm.LLM(...)` arguments, e.g. tensor_parallel_size, gpu_memory_utilization, max_model_len."""
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra chat-template variables (e.g. Qwen3's `enable_thinking: false`); sent to an endpoint as vLLM's
    `chat_template_kwargs` request field."""
    revision: str | None = None
    """A Hub branch, tag or commit of the model (hf, vllm); the resolved commit lands in the run record."""
    trust_remote_code: bool = False
    factory: Callable[[str, GenerationSettings], Any] | None = field(default=None, compare=False)
    """Python use only: build the generator yourself (`factory(model, settings)`), e.g. a
    `ScriptedGenerator` in tests or a client for an API ehrmind does not speak; `name` is then a label."""

    @classmethod
    def choose(
        cls,
        name: str | None = None,
        *,
        url: str | None = None,
        api_key_env: str | None = None,
        concurrency: int = 1,
        device: str = "cpu",
        logprobs: bool = False,
        **options: Any,
    ) -> Backend:
        """The backend a command's flags ask for, or a ConfigError saying which flag does not fit."""
        chosen = name or ("openai" if url else "hf")
        kinds = backend_kinds()
        if chosen not in kinds:
            raise ConfigError(f"--backend must be one of {', '.join(kinds)}, got {name!r}")
        endpoint = kinds[chosen].endpoint
        if endpoint and not url:
            raise ConfigError(f"--backend {chosen} needs --url (the endpoint, e.g. http://127.0.0.1:8000/v1)")
        if not endpoint:
            given = [
                flag
                for flag, value in (
                    ("--url", url),
                    ("--api-key-env", api_key_env),
                    ("--concurrency", concurrency != 1),
                )
                if value
            ]
            if given:
                raise ConfigError(f"{', '.join(given)} apply to an endpoint (--backend openai), not {chosen}")
            if logprobs:
                raise ConfigError(
                    "--logprobs applies to an endpoint (--url); a local model gives P(yes) itself"
                )
        if endpoint and (options.get("revision") or options.get("trust_remote_code")):
            raise ConfigError(
                "--revision and --trust-remote-code choose a model to load; an endpoint serves its own"
            )
        if concurrency < 1:
            raise ConfigError(f"--concurrency must be >= 1, got {concurrency}")
        return cls(
            name=chosen,
            url=url,
            api_key_env=api_key_env,
            concurrency=concurrency,
            device=device,
            logprobs=logprobs,
            **options,
        )

    def record(self) -> dict[str, Any]:
        """What a run record keeps about the choice (never the key). Nothing for `hf`, so the records of
        runs made before backends existed still match and resume."""
        shared: dict[str, Any] = {
            **({"chat_template_kwargs": self.chat_template_kwargs} if self.chat_template_kwargs else {}),
            **({"revision": self.revision} if self.revision else {}),
        }
        if self.name == "hf":
            return shared
        if not self.endpoint:
            return {"backend": self.name, **shared}
        return {
            "backend": self.name,
            "concurrency": self.concurrency,
            **({"logprobs": True} if self.logprobs else {}),
            **shared,
        }

    @property
    def endpoint(self) -> bool:
        """Whether this backend generates at a URL (the server renders prompts and loads the model)."""
        kind = backend_kinds().get(self.name)
        return kind.endpoint if kind is not None else bool(self.url)

    def for_model(self, model: str) -> Backend:
        """This backend for `model`: a model folder an ehrmind run trained with chat-template variables
        (its `ehrmind_run.json`, `ehrmind.trained`) is rendered with the same ones unless others are given, so
        evaluation prompts are the prompts it was trained on (e.g. Qwen3's `enable_thinking`)."""
        import dataclasses

        from ehrmind.trained import TrainedPrompt

        if self.chat_template_kwargs or self.endpoint:
            return self
        trained = TrainedPrompt.of(model)
        if trained is None or not trained.chat_template_kwargs:
            return self
        log.info(
            "%s was trained with chat-template variables %s; rendering with them",
            model,
            trained.chat_template_kwargs,
        )
        return dataclasses.replace(self, chat_template_kwargs=dict(trained.chat_template_kwargs))

    def loading(self) -> dict[str, Any]:
        """`from_pretrained` / `vllm.LLM` arguments that pick the model: only those given."""
        return {
            **({"revision": self.revision} if self.revision else {}),
            **({"trust_remote_code": True} if self.trust_remote_code else {}),
        }

    def api_key(self) -> str | None:
        if not self.api_key_env:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise ConfigError(f"--api-key-env names {self.api_key_env}, which is not set or empty")
        return key


def make_generator(model: str, settings: GenerationSettings, backend: Backend | None = None) -> Generator:
    """The generator for `model` (a folder or Hub id; for an endpoint, the served model name): the one
    factory of eval, diagnose, matrix, rationales and `ehrmind serve`."""
    backend = backend or Backend()
    if backend.factory is not None:
        return backend.factory(model, settings)
    kinds = backend_kinds()
    if backend.name not in kinds:
        raise ConfigError(f"unknown backend {backend.name!r}; known: {', '.join(kinds)}")
    return kinds[backend.name].build(model, settings, backend)


@register_backend("hf")
def _hf(model: str, settings: GenerationSettings, backend: Backend) -> Any:
    from ehrmind.generate.hf import HFGenerator

    return HFGenerator(
        model,
        settings,
        device=backend.device,
        chat_template_kwargs=backend.chat_template_kwargs,
        **backend.loading(),
    )


@register_backend("vllm")
def _vllm(model: str, settings: GenerationSettings, backend: Backend) -> Any:
    from ehrmind.generate.vllm import VLLMGenerator

    return VLLMGenerator(
        model,
        settings,
        chat_template_kwargs=backend.chat_template_kwargs,
        **backend.loading(),
        **backend.vllm_options,
    )


@register_backend("openai", endpoint=True)
def _openai(model: str, settings: GenerationSettings, backend: Backend) -> Any:
    from ehrmind.generate.openai_compat import OpenAICompatGenerator

    return OpenAICompatGenerator(
        backend.url or "",
        model,
        api_key=backend.api_key(),
        settings=settings,
        timeout=backend.timeout,
        max_retries=backend.max_retries,
        concurrency=backend.concurrency,
        logprobs=backend.logprobs,
        extra_body=(
            {"chat_template_kwargs": backend.chat_template_kwargs} if backend.chat_template_kwargs else None
        ),
    )
