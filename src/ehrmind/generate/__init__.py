"""Text generation behind one interface (`base.Generator`: `generate(prompts, n) -> Generated` and declared
`capabilities`): a local Hugging Face model (`hf.py`), vLLM (`vllm.py`) or any OpenAI-compatible endpoint the
user configured (`openai_compat.py`), built by one factory (`backends.make_generator`); `server.py` serves a
local model over that protocol."""
