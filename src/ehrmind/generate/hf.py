"""Batched generation with a local or Hub Hugging Face causal LM (transformers `generate`)."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from typing import Any

from ehrmind.errors import ConfigError
from ehrmind.generate.base import Capabilities, Generated
from ehrmind.generate.chat import render_prompt
from ehrmind.generate.settings import GenerationSettings
from ehrmind.models import load_pretrained

log = logging.getLogger(__name__)


class HFGenerator:
    """Loads a model once; generates completions for batches of chat prompts."""

    capabilities = Capabilities(
        seeds_prompts=True,
        seeds_calls=True,
        choice_logprobs=True,
        next_token_logprobs=True,
        token_usage=True,
    )
    """`generate` takes `seeds`, one per prompt (a prompt's samples then depend only on (prompt, settings,
    seed), not on the prompts that share the call: `ehrmind serve` batches seeded requests on it, and
    evaluation seeds each (example, sample) row so and batches prompts of like length), or `call_seed` (one
    stream for the call)."""

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
        self.ignored_generation_config = self._own_generation_config()
        if str(device) == "cpu":
            from ehrmind.runtime import warn_if_busy

            warn_if_busy("generation")
        self._calls = 0

    def _own_generation_config(self) -> dict[str, Any]:
        """Replace the model's generation config by one that holds only its special tokens, so sampling is
        these settings and nothing else (as on vLLM); returns what the folder's config set beyond them
        (`settings.ignored_generation_config`), warned about once and kept in the run record."""
        from transformers import GenerationConfig

        from ehrmind.generate.settings import SPECIAL_TOKENS, ignored_generation_config

        old = self.model.generation_config
        ignored = ignored_generation_config(old.to_diff_dict())
        self.model.generation_config = GenerationConfig(
            **{k: getattr(old, k) for k in SPECIAL_TOKENS if getattr(old, k, None) is not None}
        )
        if ignored:
            log.warning(
                "%s: generation_config.json sets %s; ignored: ehrmind samples with temperature %s and top-p %s "
                "only, on every backend (recorded in run.json)",
                self.name,
                ", ".join(f"{k}={v}" for k, v in ignored.items()),
                self.settings.temperature,
                self.settings.top_p,
            )
        return ignored

    def describe(self) -> dict[str, Any]:
        """What the run record keeps about this backend: dtype, device, the Hub commit (None for a local
        folder), the settings' context limit, the tokens generation stops at and what of the folder's
        generation config was not applied."""
        config = self.model.config
        return {
            "backend": "transformers",
            "dtype": str(next(self.model.parameters()).dtype).removeprefix("torch."),
            "device": str(self.device),
            "model_revision": getattr(config, "_commit_hash", None),
            "model_type": getattr(config, "model_type", None),
            "context_tokens": getattr(config, "max_position_embeddings", None),
            "stop_token_ids": sorted(self._eos_ids()),
            "sampling": self.sampling() if self.settings.temperature > 0 else "greedy",
            **(
                {"generation_config_ignored": self.ignored_generation_config}
                if self.ignored_generation_config
                else {}
            ),
        }

    def prompt_text(self, messages: list[dict[str, str]]) -> str:
        return render_prompt(self.tokenizer, messages, **self.chat_template_kwargs)

    def sampling(self) -> dict[str, Any]:
        """What sampling applies, on both of `generate`'s paths and in the run record: the settings'
        temperature and top-p, and no top-k (transformers' default would be 50; vLLM has none)."""
        return {"temperature": self.settings.temperature, "top_p": self.settings.top_p, "top_k": 0}

    def generate(
        self,
        prompts: list[list[dict[str, str]]],
        n: int = 1,
        *,
        call_seed: int | None = None,
        seeds: Sequence[int] | None = None,
    ) -> Generated:
        """`n` completions for each prompt (special tokens stripped), each with its finish reason: "stop" (an
        end-of-sequence token) or "length" (cut at max_new_tokens), as OpenAI's `finish_reason`.

        Sampling draws from one of two kinds of random stream:
        - `seeds` (one per prompt): sample j of prompt i draws from its own generator, seeded from
          (seeds[i], j) (`RowSampler`), so it is the same alone or batched with any other prompts (up to
          the float effects of padding, see docs/generation.md); sample 0 of n=2 is the sample of n=1;
        - otherwise one stream for the whole call: `call_seed` fixes it; without it each call takes the next
          seed of a counter.
        Greedy decoding (temperature 0) ignores both."""
        import torch
        from transformers import LogitsProcessorList

        s = self.settings
        if seeds is not None and len(seeds) != len(prompts):
            raise ConfigError(f"{len(seeds)} seeds for {len(prompts)} prompts")
        texts = [self.prompt_text(m) for m in prompts]
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(
            self.device
        )
        self._check_context(int(enc["attention_mask"].sum(dim=1).max()))
        per_row = n
        greedy: dict[str, Any] = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        knobs = self.sampling()
        sampling: dict[str, Any]
        if s.temperature > 0 and seeds is not None:
            # greedy over scores that RowSampler made one-hot; rows expanded here (greedy takes one per row)
            rows = [row_seed(seed, j) for seed in seeds for j in range(n)]
            sampler = RowSampler(self._sampling_warpers(knobs), rows)
            sampling = {**greedy, "logits_processor": LogitsProcessorList([sampler])}
            enc = {k: v.repeat_interleave(n, dim=0) for k, v in enc.items()}
            per_row = 1
        else:
            # Seed per call so a run is reproducible and a resumed run continues deterministically.
            torch.manual_seed(s.seed + (self._calls if call_seed is None else call_seed))
            self._calls += 1
            sampling = {"do_sample": True, **knobs} if s.temperature > 0 else greedy
        with torch.inference_mode():
            out = self.model.generate(
                **enc,
                max_new_tokens=s.max_new_tokens,
                num_return_sequences=per_row,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=sorted(self._eos_ids()),  # the tokenizer's and the folder's, as vLLM stops
                **sampling,
            )
        new_tokens = out[:, enc["input_ids"].shape[1] :]
        decoded = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        stops = self._eos_ids()
        finish: list[str | None] = ["stop" if stops & set(seq.tolist()) else "length" for seq in new_tokens]
        rows = range(len(prompts))
        return Generated(
            [decoded[i * n : (i + 1) * n] for i in rows], [finish[i * n : (i + 1) * n] for i in rows]
        )

    def _sampling_warpers(self, knobs: dict[str, Any]) -> list[Any]:
        """The warpers transformers' own sampling applies (`GenerationMixin._get_logits_processor` with
        do_sample, transformers 5), in its order, for `knobs` (generate's sampling arguments) over the
        model's `generation_config` and transformers' defaults (top_k 50 unless set): the seeded path samples
        from the distribution the unseeded one does. A test compares them with transformers' own."""
        import copy

        from transformers import generation as g

        config = copy.deepcopy(self.model.generation_config)
        config.update(
            do_sample=True, **knobs
        )  # sampling's config (without do_sample it warns of temperature)
        defaults = getattr(config, "_get_default_generation_params", dict)()
        config.update(**{k: v for k, v in defaults.items() if getattr(config, k, None) is None})
        warpers: list[Any] = []
        if config.temperature is not None and config.temperature != 1.0:
            warpers.append(g.TemperatureLogitsWarper(config.temperature))
        if getattr(config, "top_h", None) is not None:
            warpers.append(g.logits_process.TopHLogitsWarper(top_h=config.top_h))
        if config.top_k is not None and config.top_k != 0:
            warpers.append(g.TopKLogitsWarper(top_k=config.top_k, min_tokens_to_keep=1))
        if config.top_p is not None and config.top_p < 1.0:
            warpers.append(g.TopPLogitsWarper(top_p=config.top_p, min_tokens_to_keep=1))
        if config.min_p is not None:
            warpers.append(g.MinPLogitsWarper(min_p=config.min_p, min_tokens_to_keep=1))
        if config.typical_p is not None and config.typical_p < 1.0:
            warpers.append(g.TypicalLogitsWarper(mass=config.typical_p, min_tokens_to_keep=1))
        if config.epsilon_cutoff is not None and 0.0 < config.epsilon_cutoff < 1.0:
            warpers.append(g.EpsilonLogitsWarper(epsilon=config.epsilon_cutoff, min_tokens_to_keep=1))
        if config.eta_cutoff is not None and 0.0 < config.eta_cutoff < 1.0:
            warpers.append(
                g.EtaLogitsWarper(epsilon=config.eta_cutoff, min_tokens_to_keep=1, device=self.model.device)
            )
        return warpers

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

    def token_usage(self, messages: list[dict[str, str]], texts: Sequence[str]) -> dict[str, int]:
        """The tokens of a prompt and of its completions, as an OpenAI reply's `usage` counts them."""
        tok = self.tokenizer
        prompt = len(tok(self.prompt_text(messages), add_special_tokens=False)["input_ids"])
        completion = sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _check_context(self, longest_prompt: int) -> None:
        """Refuse, rather than silently truncate, a prompt the model cannot hold with its answer."""
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit and longest_prompt + self.settings.max_new_tokens > limit:
            raise ConfigError(
                f"a prompt of {longest_prompt} tokens plus max_new_tokens {self.settings.max_new_tokens} exceeds "
                f"the model's context of {limit} tokens; lower --max-new-tokens or give the task a token budget "
                "(e.g. --task-option prompt_token_budget=...)"
            )


def row_seed(seed: int, sample: int) -> int:
    """The 32-bit seed of one sampled row: sample `sample` of a prompt sent with `seed`. Hashed, because a
    CPU `torch.Generator` keeps only the low 32 bits of its seed (seed and seed + 2**32 draw alike)."""
    digest = hashlib.blake2b(f"{seed}:{sample}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big")


class RowSampler:
    """A logits processor that samples each row's next token from the row's own `torch.Generator`, so a row
    draws the same random numbers whatever rows share its batch (transformers' sampling draws one stream for
    the batch). It applies `warpers` (temperature, top-k, top-p: what sampling would apply), then draws as
    vLLM does for seeded requests: argmax(p / q) with q ~ Exponential(1) per token, which picks token i with
    probability p_i; and returns scores that are 0 at the drawn token and -inf elsewhere, for greedy decoding
    to take. Rows that already ended keep drawing, so every row's stream advances one draw per step."""

    def __init__(self, warpers: list[Any], seeds: Sequence[int]):
        self.warpers = warpers
        self.seeds = list(seeds)
        self._generators: list[Any] | None = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if self._generators is None:  # made at the first step, on the scores' device
            self._generators = [torch.Generator(scores.device).manual_seed(s) for s in self.seeds]
        if len(self._generators) != scores.shape[0]:
            raise RuntimeError(f"{len(self._generators)} row seeds for a batch of {scores.shape[0]} rows")
        for warp in self.warpers:
            scores = warp(input_ids, scores)
        probs = torch.softmax(scores.float(), dim=-1)
        noise = torch.empty_like(probs)
        for row, gen in zip(noise, self._generators, strict=True):
            row.exponential_(generator=gen)
        # a draw of exactly 0 would make 0 / 0 = NaN, which argmax takes for the largest value
        drawn = (probs / noise.clamp_(min=torch.finfo(noise.dtype).tiny)).argmax(dim=-1, keepdim=True)
        return torch.full_like(scores, float("-inf")).scatter_(-1, drawn, 0.0)
