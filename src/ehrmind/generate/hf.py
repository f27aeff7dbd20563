"""Batched generation with a local or Hub Hugging Face causal LM (transformers `generate`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ehrmind.errors import ConfigError
from ehrmind.generate.chat import render_prompt
from ehrmind.generate.settings import GenerationSettings

log = logging.getLogger(__name__)


def load_pretrained(model: str, dtype: Any, **model_kwargs: Any) -> tuple[Any, Any]:
    """(tokenizer, model) from a local folder or a Hub id, the tokenizer with a pad token. A local path that
    is missing or holds no model is a ConfigError naming it: transformers would take it for a Hub repo id
    and fail with a traceback about repo-id syntax (issue #16, cause 9)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(model).expanduser()
    if path.exists() or model.startswith((".", "/", "~")) or model.count("/") > 1 or "\\" in model:
        if not path.exists():
            raise ConfigError(f"model folder not found: {model}")
        if not (path / "config.json").is_file():
            raise ConfigError(
                f"{model} is not a model folder (no config.json): give a folder written by save_pretrained, "
                "or a Hugging Face Hub id"
            )
    try:
        shared = {k: model_kwargs[k] for k in ("revision", "trust_remote_code") if k in model_kwargs}
        tokenizer = AutoTokenizer.from_pretrained(model, **shared)
        loaded = AutoModelForCausalLM.from_pretrained(model, **{"dtype": dtype, **model_kwargs})
    except OSError as e:  # not found on the Hub, offline, gated, a folder missing its weights …
        raise ConfigError(f"cannot load model {model!r}: {e}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, loaded


class HFGenerator:
    """Loads a model once; generates completions for batches of chat prompts."""

    def __init__(
        self,
        model: str,
        settings: GenerationSettings | None = None,
        *,
        device: str = "cpu",
        chat_template_kwargs: dict[str, Any] | None = None,
        **model_kwargs: Any,
    ):
        """`chat_template_kwargs` are extra template variables (e.g. Qwen3's `enable_thinking`);
        `model_kwargs` go to `from_pretrained` (`revision`, `trust_remote_code`, `dtype`, …)."""
        import torch

        self.settings = settings or GenerationSettings()
        self.name = model
        self.device = device
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        model_kwargs.setdefault("dtype", torch.float32 if device == "cpu" else "auto")
        self.tokenizer, loaded = load_pretrained(model, model_kwargs.pop("dtype"), **model_kwargs)
        self.tokenizer.padding_side = "left"  # decoder-only models continue from the right edge
        self.model = loaded.to(device)
        self.model.eval()
        if str(device) == "cpu":
            from ehrmind.runtime import warn_if_busy

            warn_if_busy("generation")
        self._calls = 0
        self.seeds_calls = True
        """`generate` takes `call_seed` (evaluation seeds each batch by its position)."""

    def describe(self) -> dict[str, Any]:
        """What the run record keeps about this backend: dtype, device, the Hub commit (None for a local
        folder) and the settings' context limit."""
        config = self.model.config
        return {
            "backend": "transformers",
            "dtype": str(next(self.model.parameters()).dtype).removeprefix("torch."),
            "device": str(self.device),
            "model_revision": getattr(config, "_commit_hash", None),
            "model_type": getattr(config, "model_type", None),
            "context_tokens": getattr(config, "max_position_embeddings", None),
        }

    def prompt_text(self, messages: list[dict[str, str]]) -> str:
        return render_prompt(self.tokenizer, messages, **self.chat_template_kwargs)

    def generate(
        self, prompts: list[list[dict[str, str]]], n: int = 1, *, call_seed: int | None = None
    ) -> list[list[str]]:
        """`n` completions for each prompt (special tokens stripped). `call_seed` fixes this call's sampling
        (evaluation passes the batch's position, so a resumed run samples what an uninterrupted one did);
        without it each call takes the next seed of a counter."""
        import torch

        s = self.settings
        texts = [self.prompt_text(m) for m in prompts]
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(
            self.device
        )
        self._check_context(int(enc["attention_mask"].sum(dim=1).max()))
        # Seed per call so a run is reproducible and a resumed run continues deterministically.
        torch.manual_seed(s.seed + (self._calls if call_seed is None else call_seed))
        self._calls += 1
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": s.temperature, "top_p": s.top_p}
            if s.temperature > 0
            else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        )
        with torch.inference_mode():
            out = self.model.generate(
                **enc,
                max_new_tokens=s.max_new_tokens,
                num_return_sequences=n,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
                **sampling,
            )
        new_tokens = out[:, enc["input_ids"].shape[1] :]
        decoded = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        stops = self._eos_ids()
        finish = ["stop" if stops & set(seq.tolist()) else "length" for seq in new_tokens]
        self.last_finish_reasons = [finish[i * n : (i + 1) * n] for i in range(len(prompts))]
        """Per prompt and completion of the last call: "stop" (an end-of-sequence token) or "length" (cut
        at max_new_tokens), as OpenAI's `finish_reason`."""
        return [decoded[i * n : (i + 1) * n] for i in range(len(prompts))]

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for source in (
            self.tokenizer.eos_token_id,
            getattr(self.model.generation_config, "eos_token_id", None),
        ):
            if isinstance(source, int):
                ids.add(source)
            elif isinstance(source, (list, tuple)):
                ids.update(int(i) for i in source)
        return ids

    def choice_logprobs(
        self, prompt: list[dict[str, str]], prefix: str, choices: Sequence[str]
    ) -> list[float]:
        """The model's own log-probability of each answer after its own reasoning (teacher forcing), as the
        model reads it: each whole text (prompt + prefix + choice) is tokenized as the tokenizer would, and
        scored from the first token where the choices' tokenizations differ.

        Tokenizing the prefix and a choice apart would hand a real BPE a split it never produces: SmolLM2
        writes `": "yes"` as `":`, ` "`, `yes`, `"`, so a prefix ending in `": ` plus `"yes"` would ask for a
        lone space followed by a quote. The tokens all choices share have the same probability under each, so
        the values are log P(rest of the choice | shared tokens): exactly what P(yes) / (P(yes) + P(no))
        needs."""
        import torch

        text = self.prompt_text(prompt) + prefix
        full = [self.tokenizer(text + c, add_special_tokens=False)["input_ids"] for c in choices]
        shared = len(os.path.commonprefix(full))
        shared = max(1, min(shared, min(len(ids) for ids in full) - 1))  # every choice keeps a token
        out = []
        for ids in full:
            tail = ids[shared:]
            with torch.inference_mode():
                logits = self.model(input_ids=torch.tensor([ids], device=self.device)).logits[0].float()
            logp = torch.log_softmax(logits[shared - 1 : -1], dim=-1)
            out.append(float(logp[torch.arange(len(tail)), torch.tensor(tail, device=self.device)].sum()))
        return out

    def next_token_logprobs(self, messages: list[dict[str, str]], k: int) -> list[tuple[str, float]]:
        """The `k` likeliest next tokens after the prompt (a final assistant message continued), as (text,
        log-probability), likeliest first: what an OpenAI-style `top_logprobs` reply lists (`ehrmind serve`)."""
        import torch

        ids = self.tokenizer(self.prompt_text(messages), add_special_tokens=False)["input_ids"]
        self._check_context(len(ids))
        with torch.inference_mode():
            logits = self.model(input_ids=torch.tensor([ids], device=self.device)).logits[0, -1].float()
        top = torch.topk(torch.log_softmax(logits, dim=-1), k=min(k, logits.shape[-1]))
        return [
            (self.tokenizer.decode([int(i)]), float(lp))
            for lp, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
        ]

    def _check_context(self, longest_prompt: int) -> None:
        """Refuse, rather than silently truncate, a prompt the model cannot hold with its answer."""
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit and longest_prompt + self.settings.max_new_tokens > limit:
            raise ConfigError(
                f"a prompt of {longest_prompt} tokens plus max_new_tokens {self.settings.max_new_tokens} exceeds "
                f"the model's context of {limit} tokens; lower --max-new-tokens or give the task a token budget "
                "(e.g. --task-option prompt_token_budget=...)"
            )
