"""Where completions come from: one choice (`--backend hf|vllm|openai`) for eval, diagnose, matrix and
rationales, and one factory that builds the generator from it.

- `hf`: transformers `generate` in this process (CPU, one GPU, Apple `mps`); the default.
- `vllm`: vLLM's offline engine in this process (`pip install 'ehrmind[vllm]'`, a CUDA GPU); all samples
  of a prompt in one request, per-prompt seeds, prefill continued (`continue_final_message`).
- `openai`: any OpenAI-compatible endpoint (`--url`; vLLM's server, TGI, llama.cpp, OpenAI, `ehrmind
  serve`), `--concurrency` requests in flight over pooled connections. Nothing leaves the machine unless
  a URL is given.

Every generator has `generate(prompts, n)`; the evaluation runner reads the optional capabilities
(`seeds_calls`, `samples_per_request`, `last_finish_reasons`, `choice_logprobs`, `describe`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ehrmind.errors import ConfigError
from ehrmind.generate.settings import GenerationSettings

log = logging.getLogger(__name__)

BackendName = Literal["hf", "vllm", "openai"]
BACKENDS: tuple[str, ...] = ("hf", "vllm", "openai")


@dataclass(frozen=True)
class Backend:
    """A checked backend choice with its options (`Backend.choose` applies the rules once)."""

    name: BackendName = "hf"
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
        if chosen not in BACKENDS:
            raise ConfigError(f"--backend must be one of {', '.join(BACKENDS)}, got {name!r}")
        if chosen == "openai" and not url:
            raise ConfigError("--backend openai needs --url (the endpoint, e.g. http://127.0.0.1:8000/v1)")
        if chosen != "openai":
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
        if chosen == "openai" and (options.get("revision") or options.get("trust_remote_code")):
            raise ConfigError(
                "--revision and --trust-remote-code choose a model to load; an endpoint serves its own"
            )
        if concurrency < 1:
            raise ConfigError(f"--concurrency must be >= 1, got {concurrency}")
        return cls(
            name=chosen,  # type: ignore[arg-type]
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
        if self.name == "vllm":
            return {"backend": "vllm", **shared}
        return {
            "backend": "openai",
            "concurrency": self.concurrency,
            **({"logprobs": True} if self.logprobs else {}),
            **shared,
        }

    def for_model(self, model: str) -> Backend:
        """This backend for `model`: a model folder an ehrmind run trained with chat-template variables
        (its `ehrmind_run.json`, `ehrmind.trained`) is rendered with the same ones unless others are given, so
        evaluation prompts are the prompts it was trained on (e.g. Qwen3's `enable_thinking`)."""
        import dataclasses

        from ehrmind.trained import TrainedPrompt

        if self.chat_template_kwargs or self.name == "openai":
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


def make_generator(model: str, settings: GenerationSettings, backend: Backend | None = None) -> Any:
    """The generator for `model` (a folder or Hub id; for `openai`, the served model name)."""
    backend = backend or Backend()
    if backend.factory is not None:
        return backend.factory(model, settings)
    if backend.name == "openai":
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
                {"chat_template_kwargs": backend.chat_template_kwargs}
                if backend.chat_template_kwargs
                else None
            ),
        )
    if backend.name == "vllm":
        from ehrmind.generate.vllm import VLLMGenerator

        return VLLMGenerator(
            model,
            settings,
            chat_template_kwargs=backend.chat_template_kwargs,
            **backend.loading(),
            **backend.vllm_options,
        )
    from ehrmind.generate.hf import HFGenerator

    return HFGenerator(
        model,
        settings,
        device=backend.device,
        chat_template_kwargs=backend.chat_template_kwargs,
        **backend.loading(),
    )
