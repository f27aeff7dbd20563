"""Training utilities: tiny local models for tests and CPU demos, SFT warm-up and GRPO fine-tuning."""
