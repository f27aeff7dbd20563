"""Evaluation: generate → verify → metrics, resumable; scoring of completions made elsewhere; reports."""
