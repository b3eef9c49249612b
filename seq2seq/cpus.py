"""How many CPU cores this process may use (its affinity mask, not the machine's core count)."""

from __future__ import annotations

import os

__all__ = ["usable_cpus"]


def usable_cpus() -> int:
    """Cores in this process's affinity mask (``taskset``, container limits); the machine's count off Linux."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
