"""Rewards for RL, computed by `Task.verify` — the same code path as evaluation."""
