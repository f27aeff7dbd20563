"""Text generation behind one interface: `generate(prompts, n) -> list[list[str]]` (Hugging Face local)."""
