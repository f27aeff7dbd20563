"""How completions are sampled: one settings type for eval, diagnose, matrix, rationales, serve and Python.

Every generator (transformers, vLLM, an endpoint) reads `temperature`, `top_p`, `max_new_tokens` and `seed`;
the runs that sit on them read `samples` and `batch_size`. The rule that several samples of a prompt need
sampling (`require_sampling`) is checked here, so no caller repeats it.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace

from ehrmind.errors import ConfigError

MAX_NEW_TOKENS = 1_048_576
"""The most tokens a completion may ask for: more than any model's context, so a typo such as 10^12 (which
would also set an endpoint's read timeout, `READ_SECONDS_PER_TOKEN` per token) is refused."""
MAX_SEED = 2**63 - 1
"""Seeds are sent to endpoints and torch as 64-bit integers."""
ROLLOUT_TEMPERATURE = 0.6
ROLLOUT_TOP_P = 0.95
"""The defaults for pass@k sampling (`ehrmind diagnose`): what the GRPO recipes' rollouts use."""


def require_sampling(samples: int, temperature: float | None) -> None:
    """Several samples of one prompt need sampling: with greedy decoding (temperature 0) they are identical,
    and pass@k or a majority over them would mean nothing. The one place this rule lives."""
    if samples > 1 and not (temperature or 0) > 0:
        raise ConfigError("several samples with greedy decoding are identical; set --temperature > 0")


def _shown(value: object) -> str:
    """A bad value for a message: its repr, cut short (an integer of 5,000 digits has no repr at all)."""
    try:
        text = repr(value)
    except ValueError:
        return "an integer too long to show"
    return text if len(text) <= 40 else f"{text[:30]}… ({len(text):,} characters)"


@dataclass(frozen=True)
class GenerationSettings:
    """Generation settings, checked when made (a bad value is a ConfigError naming it)."""

    samples: int = 1
    """Completions per prompt (K)."""
    temperature: float = 0.0
    """0 means greedy decoding."""
    top_p: float = 1.0
    max_new_tokens: int = 1024
    batch_size: int = 8
    """Prompts per generate call. `eval` on the `hf` backend seeds each row alone and batches prompts of like
    length (a row's text does not depend on its batch); a batch is still padded together, and `rationales`
    seeds its batches by position, so a resumed run keeps it."""
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("samples", "max_new_tokens", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        if self.max_new_tokens > MAX_NEW_TOKENS:
            raise ConfigError(
                f"max_new_tokens must be at most {MAX_NEW_TOKENS:,}, got {_shown(self.max_new_tokens)}"
            )
        if (
            isinstance(self.seed, bool)
            or not isinstance(self.seed, numbers.Integral)
            or not 0 <= self.seed <= MAX_SEED
        ):
            raise ConfigError(f"seed must be an integer from 0 to 2**63 - 1, got {_shown(self.seed)}")
        for name in ("temperature", "top_p"):  # NaN passes every comparison below: refused first
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise ConfigError(f"{name} must be a finite number, got {_shown(value)}")
        if self.temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        require_sampling(self.samples, self.temperature)

    @classmethod
    def rollout(cls, samples: int, **changes: object) -> GenerationSettings:
        """Sampled as GRPO rollouts are (temperature 0.6, top-p 0.95): for pass@k headroom."""
        values: dict[str, object] = {"temperature": ROLLOUT_TEMPERATURE, "top_p": ROLLOUT_TOP_P, **changes}
        return cls(samples=samples, **values)  # type: ignore[arg-type]

    def replace(self, **changes: object) -> GenerationSettings:
        return replace(self, **changes)  # type: ignore[arg-type]

    def record(self) -> dict[str, object]:
        """What a run record holds of these settings (run.json)."""
        return {
            "samples": self.samples,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_new_tokens": self.max_new_tokens,
            "seed": self.seed,
            "batch_size": self.batch_size,
        }


SPECIAL_TOKENS = ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id")
NOT_SAMPLING = ("transformers_version", "_from_model_config", "cache_implementation", "use_cache")


def ignored_generation_config(values: dict[str, object]) -> dict[str, object]:
    """What a model folder's `generation_config.json` (its non-default values, `values`) would change about
    sampling beyond its special tokens: a repetition penalty, top-k, a default temperature …

    ehrmind samples with its own settings only, identically on every backend: transformers would apply these
    (and its own top-k of 50), vLLM ignores them when given explicit sampling parameters. So both backends
    drop them, stop at the folder's end-of-turn tokens, and the run record lists what was dropped."""
    return {
        k: v
        for k, v in values.items()
        if k not in SPECIAL_TOKENS and k not in NOT_SAMPLING and not (k == "do_sample" and v is False)
    }
