"""Generation with vLLM's offline engine (`vllm.LLM.chat`), for GPU users: the `--backend vllm` of eval,
diagnose, matrix and rationales.

Same interface as `HFGenerator`, plus what makes vLLM fast and reproducible here: every sample of a prompt
comes from one request (`SamplingParams(n=...)`), each prompt has its own seed (the evaluation runner
passes `seed + index in the data`, so a resumed run samples what the first one did), and a prompt that ends
with an assistant message (prefill) is continued (`continue_final_message=True`, no new generation prompt),
as transformers does in `render_prompt`. vLLM is an optional extra: `pip install 'ehrmind[vllm]'`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ehrmind.errors import ConfigError
from ehrmind.generate.base import Capabilities, Generated
from ehrmind.generate.settings import GenerationSettings

INSTALL = "pip install 'ehrmind[vllm]' (vLLM needs a CUDA GPU; on CPU use --backend hf)"


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as e:
        raise ConfigError(f"--backend vllm needs vLLM, which is not installed ({e}): {INSTALL}") from None
    return vllm


def _folder_generation_config(model: str, engine_kwargs: dict[str, Any]) -> dict[str, Any]:
    """What the model's generation_config.json sets beyond its special tokens: vLLM applies none of it to
    explicit `SamplingParams` (only its end-of-turn tokens), as `HFGenerator` drops it; recorded, not used."""
    from ehrmind.generate.settings import ignored_generation_config

    try:
        from transformers import GenerationConfig

        pick = {k: engine_kwargs[k] for k in ("revision", "trust_remote_code") if k in engine_kwargs}
        config = GenerationConfig.from_pretrained(model, **pick)
    except Exception:  # no generation_config.json (or offline): nothing was there to ignore
        return {}
    return ignored_generation_config(config.to_diff_dict())


class VLLMGenerator:
    """Loads `model` into a vLLM engine once; generates completions for batches of chat prompts."""

    capabilities = Capabilities(samples_per_request=True, seeds_prompts=True, choice_logprobs=True)
    """`generate` takes `n` samples per prompt in one request and `seeds`, one per prompt."""

    def __init__(
        self,
        model: str,
        settings: GenerationSettings | None = None,
        *,
        chat_template_kwargs: dict[str, Any] | None = None,
        **engine_kwargs: Any,
    ):
        vllm = _import_vllm()
        self._vllm = vllm
        self.settings = settings or GenerationSettings()
        self.name = model
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self.engine_kwargs = dict(engine_kwargs)
        self.llm = vllm.LLM(model=model, seed=self.settings.seed, **engine_kwargs)
        self.ignored_generation_config = _folder_generation_config(model, engine_kwargs)

    def describe(self) -> dict[str, Any]:
        """What the run record keeps: the backend, vLLM's version and the engine's arguments."""
        return {
            "backend": "vllm",
            "vllm_version": getattr(self._vllm, "__version__", None),
            "engine": {k: v for k, v in self.engine_kwargs.items() if isinstance(v, (str, int, float, bool))},
            **(
                {"generation_config_ignored": self.ignored_generation_config}
                if self.ignored_generation_config
                else {}
            ),
        }

    def _params(self, n: int, seed: int, **extra: Any) -> Any:
        s = self.settings
        greedy = s.temperature == 0
        return self._vllm.SamplingParams(
            n=n,
            temperature=s.temperature,
            top_p=1.0 if greedy else s.top_p,
            max_tokens=s.max_new_tokens,
            seed=seed,
            **extra,
        )

    def _chat(self, prompts: Sequence[list[dict[str, str]]], params: Sequence[Any]) -> list[Any]:
        """`LLM.chat` in order, the prompts that end with an assistant message continued, the rest given a
        generation prompt (vLLM takes one choice per call, so the two kinds go in two calls)."""
        outputs: list[Any] = [None] * len(prompts)
        for continued in (False, True):
            idx = [
                i
                for i, m in enumerate(prompts)
                if bool(m) and (m[-1].get("role") == "assistant") == continued
            ]
            if not idx:
                continue
            got = self.llm.chat(
                [prompts[i] for i in idx],
                sampling_params=[params[i] for i in idx],
                use_tqdm=False,
                add_generation_prompt=not continued,
                continue_final_message=continued,
                **({"chat_template_kwargs": self.chat_template_kwargs} if self.chat_template_kwargs else {}),
            )
            for i, out in zip(idx, got, strict=True):
                outputs[i] = out
        return outputs

    def generate(
        self, prompts: list[list[dict[str, str]]], n: int = 1, *, seeds: Sequence[int] | None = None
    ) -> Generated:
        """`n` completions for each prompt, in order, with their finish reasons ("stop", or "length": cut at
        max_new_tokens); `seeds[i]` seeds prompt i (default: the settings')."""
        if n < 1:
            raise ConfigError(f"n must be >= 1, got {n}")
        if not prompts:
            return Generated([], [])
        seeds = list(seeds) if seeds is not None else [self.settings.seed] * len(prompts)
        if len(seeds) != len(prompts):
            raise ConfigError(f"{len(seeds)} seeds for {len(prompts)} prompts")
        outputs = self._chat(prompts, [self._params(n, s) for s in seeds])
        texts: list[list[str]] = []
        finish: list[list[str | None]] = []
        for out in outputs:
            choices = list(out.outputs)[:n]
            texts.append([c.text for c in choices])
            finish.append(
                [c.finish_reason if c.finish_reason in ("stop", "length") else None for c in choices]
            )
        return Generated(texts, finish)

    def choice_logprobs(
        self, prompt: list[dict[str, str]], prefix: str, choices: Sequence[str]
    ) -> list[float] | None:
        """log P(choice) at the point where a completion states its answer, from the first token's top-20
        log-probabilities (as `OpenAICompatGenerator.choice_logprobs`): one 1-token request."""
        from ehrmind.generate.chat import answer_point
        from ehrmind.generate.openai_compat import first_token_logprobs

        messages, shared = answer_point(prompt, prefix, list(choices))
        params = self._vllm.SamplingParams(n=1, temperature=0.0, max_tokens=1, logprobs=20)
        (out,) = self._chat([messages], [params])
        first = (out.outputs[0].logprobs or [{}])[0]
        top = [(str(getattr(lp, "decoded_token", "") or ""), float(lp.logprob)) for lp in first.values()]
        return first_token_logprobs(top, [c[len(shared) :] for c in choices])
