"""A verl agent loop that continues ehrmind's prefill (import it only where verl is installed).

verl's rollout always renders a row's `prompt` messages with the generation prompt, so it cannot continue a
final assistant message. `PrefillAgentLoop` is verl's single-turn loop with the row's `extra_info.prefill`
tokens appended after the generation prompt: the model continues the prefill as `ehrmind eval --prefill`
does, and the response verl decodes holds only the generated text, which `compute_score` verifies with the
prefill's contract prefix (`Task.verify`). `ehrmind export-verl --prefill` writes the `agent_loops.yaml` that
names this class (`actor_rollout_ref.rollout.agent.agent_loop_config_path`) and marks each row with
`agent_name: ehrmind_prefill`.
"""

from __future__ import annotations

from typing import Any

from verl.experimental.agent_loop.agent_loop import register
from verl.experimental.agent_loop.single_turn_agent_loop import SingleTurnAgentLoop

from ehrmind.rewards.verl import PREFILL_AGENT


def prefill_token_ids(tokenizer: Any, prefill: str) -> list[int]:
    """The prefill's tokens, as they follow the generation prompt (no special tokens added)."""
    return list(tokenizer.encode(prefill, add_special_tokens=False)) if prefill else []


@register(PREFILL_AGENT)
class PrefillAgentLoop(SingleTurnAgentLoop):
    """verl's single-turn agent loop whose prompt ends with the row's prefill."""

    _prefill: str = ""

    async def run(self, sampling_params: dict[str, Any], priority: int = 0, **kwargs: Any) -> Any:
        self._prefill = str((kwargs.get("extra_info") or {}).get("prefill") or "")
        return await super().run(sampling_params, priority=priority, **kwargs)

    async def ct_build_initial_tokens(self, messages: list[dict], *args: Any, **kwargs: Any) -> list[int]:
        ids = await super().ct_build_initial_tokens(messages, *args, **kwargs)
        return self._cap_text_prompt_length(ids + prefill_token_ids(self.tokenizer, self._prefill))
