"""What the CPU can do, for choosing the model's runtime (models/loader.py) and warning when a
named one will be slow (models/multilingual.py)."""

from __future__ import annotations

__all__ = ["NEEDS_BF16", "bf16_native"]

#: Runtimes that need the CPU to compute bfloat16 natively: emulated, it is slower than
#: float32, so ``auto`` passes them over on such a CPU.
NEEDS_BF16 = frozenset({"torch-bf16"})


def bf16_native() -> bool:
    """Whether this CPU computes bfloat16 natively (Linux flags ``avx512_bf16`` or
    ``amx_bf16``; the CI machine kind has AVX-512 BF16). Anywhere else: False."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return bool(set(line.split(":", 1)[1].split()) & {"avx512_bf16",
                                                                       "amx_bf16"})
    except OSError:
        pass
    return False
