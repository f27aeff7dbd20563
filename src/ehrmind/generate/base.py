"""What every generator is: `generate(prompts, n, …) -> Generated` plus the capabilities it declares.

Callers (the evaluation runner, rationales, `ehrmind serve`) read `generator.capabilities` to choose how
to call it, never probe for attributes: a capability a generator has is one it declares, and the method
it names is then there. `describe()` says what a run record keeps about the backend (`{}`: nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ehrmind.generate.settings import GenerationSettings

Messages = list[dict[str, str]]
"""One chat prompt: `[{"role": …, "content": …}, …]`; a final assistant message is continued (prefill)."""


@dataclass(frozen=True)
class Capabilities:
    """What a generator can do beyond `generate(prompts, n)`, declared as a class attribute."""

    samples_per_request: bool = False
    """All `n` samples of a prompt come from one request and `generate` takes `seeds`, one per prompt: the
    evaluation runner batches by example (seed: its position in the data), not by (example, sample)."""
    seeds_prompts: bool = False
    """`generate` takes `seeds`, one per prompt, and a prompt's samples depend only on (prompt, settings,
    seed), not on the prompts sharing the call: `ehrmind serve` batches seeded requests together."""
    seeds_calls: bool = False
    """`generate` takes `call_seed`, which fixes the call's one random stream (evaluation passes a batch's
    position, so a resumed run samples what an uninterrupted one did)."""
    choice_logprobs: bool = False
    """`choice_logprobs(prompt, prefix, choices) -> list[float] | None`: the model's log-probability of each
    answer where a completion states it (P(yes) for AUROC)."""
    next_token_logprobs: bool = False
    """`next_token_logprobs(messages, k) -> [(token, logprob)]`: the k likeliest next tokens (`ehrmind serve`
    answers `logprobs` requests with it)."""
    token_usage: bool = False
    """`token_usage(messages, texts) -> {"prompt_tokens", "completion_tokens", "total_tokens"}` (the usage
    block of an `ehrmind serve` reply)."""


@dataclass(frozen=True)
class Generated:
    """What one `generate` call returns: per prompt, its `n` completions and each one's finish reason
    ("stop": it ended; "length": cut at max_new_tokens; None: the backend did not say)."""

    completions: list[list[str]]
    finish_reasons: list[list[str | None]]

    def __post_init__(self) -> None:
        shape = [len(c) for c in self.completions]
        if [len(f) for f in self.finish_reasons] != shape:
            raise ValueError(
                f"finish reasons shaped {[len(f) for f in self.finish_reasons]} for completions shaped {shape}"
            )

    @classmethod
    def unexplained(cls, completions: Sequence[Sequence[str]]) -> Generated:
        """`completions` with no finish reason known (None for each)."""
        texts = [list(outs) for outs in completions]
        return cls(texts, [[None] * len(outs) for outs in texts])

    @classmethod
    def uniform(cls, completions: Sequence[Sequence[str]], reason: str | None) -> Generated:
        """`completions` that all finished for the same `reason`."""
        texts = [list(outs) for outs in completions]
        return cls(texts, [[reason] * len(outs) for outs in texts])

    def __len__(self) -> int:
        """The number of prompts."""
        return len(self.completions)


@runtime_checkable
class Generator(Protocol):
    """A source of completions: `ehrmind.generate.backends.make_generator` builds one per backend."""

    name: str
    settings: GenerationSettings | None
    """What it samples with (None: nothing to say, e.g. a scripted generator)."""
    capabilities: Capabilities
    """Declared by the class (an instance may narrow it, e.g. an endpoint not asked for log-probabilities)."""

    def describe(self) -> dict[str, Any]:
        """What the run record keeps about this backend (dtype, device, URL, …); `{}` when nothing."""
        ...

    def generate(self, prompts: list[Messages], n: int = 1, **seeding: Any) -> Generated:
        """`n` completions for each prompt, in order; `seeding` is `seeds=[…]` (`samples_per_request`,
        `seeds_prompts`) or `call_seed=…` (`seeds_calls`), only as `capabilities` declares."""
        ...
