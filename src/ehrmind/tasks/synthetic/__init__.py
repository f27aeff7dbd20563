"""Synthetic clinical-calculation rows, computed by our own code: the data of the CPU demo."""
