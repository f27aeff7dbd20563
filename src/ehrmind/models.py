"""Loading a causal language model and its tokenizer: what generation (`generate/hf.py`) and training
(`train/run.py`) both start from, so neither reaches into the other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ehrmind.errors import ConfigError


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
