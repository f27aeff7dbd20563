"""Programs built on the public API: the CPU demo and the laptop-scale study."""
