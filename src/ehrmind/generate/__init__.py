"""Text generation behind one interface, `generate(prompts, n) -> list[list[str]]`: a local Hugging Face
model (`hf.py`) or any OpenAI-compatible endpoint the user configured (`openai_compat.py`); `server.py`
serves a local model over that protocol."""
