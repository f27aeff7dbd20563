"""Turn chat messages into prompt text with the model's *own* chat template (any HF backbone)."""

from __future__ import annotations

from typing import Any


def render_prompt(tokenizer: Any, messages: list[dict[str, str]], **template_kwargs: Any) -> str:
    """Prompt text for generation.

    A final assistant message is a prefill: generation continues it (`continue_final_message`).
    Templates that reject a system role (e.g. Gemma) get the system text merged into the first user turn.
    `template_kwargs` are extra variables for the template (a recipe's `chat_template_kwargs`, e.g.
    `enable_thinking=False`).
    """
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError(
            "the tokenizer has no chat template; use an instruction-tuned model or set tokenizer.chat_template"
        )
    prefill = bool(messages) and messages[-1]["role"] == "assistant"
    kwargs = {
        **template_kwargs,
        "tokenize": False,
        "add_generation_prompt": not prefill,
        "continue_final_message": prefill,
    }
    try:
        return tokenizer.apply_chat_template(messages, **kwargs)
    except Exception as e:  # jinja2.TemplateError raised by the template's own `raise_exception`
        if messages[0]["role"] != "system" or "system" not in str(e).lower():
            raise
        merged = [
            {"role": "user", "content": f"{messages[0]['content']}\n\n{messages[1]['content']}"},
            *messages[2:],
        ]
        return tokenizer.apply_chat_template(merged, **kwargs)


def answer_point(
    prompt: list[dict[str, str]], prefix: str, choices: list[str] | tuple[str, ...]
) -> tuple[list[dict[str, str]], str]:
    """The prompt continued up to where a completion states its answer (`prefix`, plus what all `choices`
    share, e.g. the opening quote of `"yes"` / `"no"`) as a final assistant message, and that shared part:
    what a backend asks one token's log-probabilities for (`choice_logprobs`)."""
    import os

    shared = os.path.commonprefix(list(choices))
    text = prefix + shared
    if prompt and prompt[-1]["role"] == "assistant":
        return [*prompt[:-1], {"role": "assistant", "content": prompt[-1]["content"] + text}], shared
    return [*prompt, {"role": "assistant", "content": text}], shared
