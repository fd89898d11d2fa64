"""What the running CPU offers integer inference: the dot-product instructions INT8 kernels need to be fast."""

from __future__ import annotations

import platform
from functools import lru_cache
from pathlib import Path

# x86: VNNI (AVX-512 or AVX) and AMX; Arm: the SDOT/UDOT and I8MM extensions
INT8_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm"})


@lru_cache(maxsize=1)
def int8_dot_product() -> bool | None:
    """Whether the CPU has INT8 dot-product instructions (read from /proc/cpuinfo); None where unknown."""
    cpuinfo = Path("/proc/cpuinfo")
    if platform.system() != "Linux" or not cpuinfo.is_file():
        return None
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return None
    flags = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return bool(flags & INT8_FLAGS) if flags else None
