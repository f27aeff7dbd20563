"""How ehrmind uses the CPU: torch's thread count, what a run record says about the processor, and a warning
when other processes compete for the cores.

Measured on a 2-core machine with SmolLM2-135M (docs/BENCHMARKS.md): on idle cores torch's default of one
thread per core is fastest (decoding at batch 32: 241 tokens/s with 2 threads, 171 with 1); with one other
busy process, 2 threads fell to 22 tokens/s at batch 8 against 69 with 1 thread — OpenMP threads that wait
for each other while the scheduler runs someone else. `OMP_WAIT_POLICY=PASSIVE` halved that loss but cost
30–40% on idle cores. So ehrmind keeps torch's default, lets the user choose (`ehrmind --threads N …` or
`EHRMIND_THREADS=N`), and says so when the load average shows the cores are taken.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
from functools import cache
from typing import Any

log = logging.getLogger(__name__)

THREADS_ENV = "EHRMIND_THREADS"


def set_threads(n: int) -> None:
    """Use `n` threads for torch's CPU kernels in this process (and for OpenMP code started after this)."""
    from ehrmind.errors import ConfigError

    if n < 1:
        raise ConfigError(f"--threads must be >= 1, got {n}")
    os.environ["OMP_NUM_THREADS"] = str(n)
    import torch

    torch.set_num_threads(n)


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@cache
def cpu_model() -> str:
    """The processor's name (floating-point results differ between CPU types; a figure states its CPU)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_facts() -> dict[str, Any]:
    """What a run record keeps about the CPU: its model, the cores this process may use, torch's threads (when
    torch is loaded) and the 1-minute load average when the record was made."""
    facts: dict[str, Any] = {"cpu": cpu_model(), "cpus": available_cpus()}
    torch = sys.modules.get("torch")
    if torch is not None:
        facts["torch_threads"] = torch.get_num_threads()
    try:
        facts["load_average_1min"] = round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover - not available
        pass
    return facts


def others_cpu_use(interval: float = 0.3) -> float | None:
    """Cores other processes kept busy over `interval` seconds (this process's own use left out, so a run's
    earlier stages do not count against it); None where /proc is not available."""
    import time

    def busy() -> int:
        with open("/proc/stat", encoding="utf-8") as fh:
            v = [int(x) for x in fh.readline().split()[1:9]]
        return sum(v) - v[3] - v[4]  # all but idle and iowait

    def mine() -> int:
        with open("/proc/self/stat", encoding="utf-8") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime of every thread

    try:
        b0, m0 = busy(), mine()
        time.sleep(interval)
        b1, m1 = busy(), mine()
    except (OSError, ValueError, IndexError):
        return None
    return max(0.0, ((b1 - b0) - (m1 - m0)) / os.sysconf("SC_CLK_TCK") / interval)


def warn_if_busy(what: str) -> bool:
    """Log a warning when other processes already keep busy the cores torch's threads need (`what` is the
    work about to start); True when it warned."""
    import torch

    threads = torch.get_num_threads()
    cpus = available_cpus()
    if threads < 2:
        return False
    others = others_cpu_use()
    if others is None or threads + others <= cpus + 0.5:
        return False
    log.warning(
        "%s on %d torch threads while other processes keep %.1f of %d CPUs busy: threads that wait for each "
        "other on shared cores can run several times slower (3x measured on 2 cores). If this is slow, use "
        "`ehrmind --threads 1 ...` or %s=1.",
        what, threads, others, cpus, THREADS_ENV,
    )  # fmt: skip
    return True
