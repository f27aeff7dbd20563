"""Thin adapters that run ehrmind tasks inside evaluation frameworks users already drive (inspect_ai);
they reuse `Task.render` and `Task.verify`, never a second scoring path."""
