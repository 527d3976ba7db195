"""Theoretical peak FLOP rates: a CPU's from its vector units and clock, a GPU's from its vendor's datasheet.

A measured matrix product is no peak: on a Zen 5 host a 2,048² fp32 matmul reached 174 GFLOP/s while ResNet-34
training reached 226, "130% of peak". The ceiling a training rate is divided by is the hardware's theoretical rate;
the best measured matmul is shown beside it as what a tuned kernel reaches. Where a measurement exceeds the
theoretical figure, that figure is wrong (a clock or vector width guessed low) and the largest measured rate becomes
the ceiling, with a warning (`ceiling`), so no ratio passes 100%.

CPU, fp32: cores × clock × FLOPs per cycle per core, where FLOPs per cycle = FMA units × fp32 lanes per unit × 2
(an FMA is a multiply and an add). Per microarchitecture (`cpu_flops_per_cycle`):

    vendor / family          core                      vector units                           fp32 FLOP/cycle
    Intel, avx512f           Skylake-SP … Granite R.   2 × 512-bit FMA (Xeon Gold 6xxx,      64
                                                       Platinum, most server cores)
    Intel, avx512f, client   Ice/Tiger/Rocket Lake,    1 × 512-bit FMA (ports 0+1 fused)     32
      (model 0x66, 0x7d, 0x7e, 0x8c, 0x8d, 0xa7)
    Intel, avx2 + fma        Haswell … (P-cores)       2 × 256-bit FMA                       32
    Intel, avx (no fma)      Sandy/Ivy Bridge          256-bit add + 256-bit multiply        16
    any, sse2 only                                     128-bit add + 128-bit multiply         8
    AMD 0x17, model < 0x30   Zen, Zen+                 2 × 128-bit FMA (AVX2 split in two)   16
    AMD 0x17, model ≥ 0x30   Zen 2                     2 × 256-bit FMA                       32
    AMD 0x19                 Zen 3 (0x00-0x0f,         2 × 256-bit FMA                       32
                             0x20-0x5f)
    AMD 0x19                 Zen 4 (0x10-0x1f,         AVX-512 executed on 2 × 256-bit FMA   32
                             0x60-0x7f, 0xa0-0xaf)
    AMD 0x1a                 Zen 5 (Turin, Granite     2 × 512-bit FMA (full width)          64
                             Ridge, Strix Halo)
    AMD 0x1a, model 0x20-0x2f, 0x60-0x6f             AVX-512 on 2 × 256-bit FMA            32
                             Zen 5 mobile (Strix / Krackan Point)
    Hygon 0x18               Dhyana (Zen)              2 × 128-bit FMA                       16

Sources: Intel 64 and IA-32 Architectures Optimization Reference Manual (vol. 1, the Skylake server, Ice Lake client
and Haswell chapters: FMA ports and widths; the "two FMA units" SKU note of the Xeon Scalable product briefs); AMD
Software Optimization Guides for family 17h (pub. 55723), 19h (56665, Zen 3; 57647, Zen 4: "512-bit instructions are
executed as two 256-bit operations") and 1Ah (58455, Zen 5: "full 512-bit data path" on desktop/server parts, 256-bit
on the mobile ones); family/model numbers from the same guides' CPUID tables. Intel server parts with one 512-bit FMA
unit (Xeon Bronze/Silver, some Gold 5xxx) and hybrid Intel E-cores (2 × 128-bit FMA) are not told apart: their
theoretical figure here is twice too high, which no measurement reveals, so the output names the core it assumed.

Clock: `/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq` (the rated maximum, an upper bound) where the kernel
exposes it; else the largest `cpu MHz` in /proc/cpuinfo (on bare metal the current clock; in a VM usually the host's
nominal clock, below its boost clock: the figure may then be low, which a faster measured matmul exposes). Cores: the
usable logical CPUs (`os.sched_getaffinity`) divided by the SMT threads per core (`siblings` / `cpu cores`), since
SMT siblings share one core's FMA units.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .runtime import VECTOR_FLAGS

MAX_FREQ = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")


@dataclass(frozen=True)
class CpuInfo:
    model_name: str
    vendor: str  # GenuineIntel, AuthenticAMD, HygonGenuine, "" when not given (e.g. Arm)
    family: int | None
    model: int | None
    flags: frozenset[str]
    mhz: float | None  # the largest `cpu MHz` over the listed processors
    threads_per_core: int

    @property
    def vector_flags(self) -> list[str]:
        return sorted(self.flags & VECTOR_FLAGS)

    def describe(self) -> str:
        fam = f"family {self.family}, model {self.model} (0x{self.model:x})" if None not in (self.family,
                                                                                           self.model) else "family ?"
        return f"{self.model_name or 'unknown CPU'} ({self.vendor or 'vendor ?'}, {fam})"


def parse_cpuinfo(text: str) -> CpuInfo:
    """The first processor's identity and flags, the fastest listed clock, and the SMT threads per core."""
    first: dict[str, str] = {}
    mhz: list[float] = []
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "cpu MHz":
            try:
                mhz.append(float(value))
            except ValueError:
                pass
        first.setdefault(key, value)

    def number(key: str) -> int | None:
        try:
            return int(first[key])
        except (KeyError, ValueError):
            return None

    siblings, cores = number("siblings"), number("cpu cores")
    smt = siblings // cores if siblings and cores and siblings > cores else 1
    return CpuInfo(first.get("model name", ""), first.get("vendor_id", ""), number("cpu family"), number("model"),
                   frozenset(first.get("flags", "").split()), max(mhz) if mhz else None, smt)


def _in(model: int, *ranges: tuple[int, int]) -> bool:
    return any(lo <= model <= hi for lo, hi in ranges)


#: Intel client cores with AVX-512 on one 512-bit FMA unit: Cannon Lake, Ice Lake, Tiger Lake, Rocket Lake.
_INTEL_ONE_FMA512 = frozenset({0x66, 0x7D, 0x7E, 0x8C, 0x8D, 0xA7})


def cpu_flops_per_cycle(cpu: CpuInfo) -> tuple[int, str] | None:
    """fp32 FLOPs per cycle per core and the core it was taken for (the table in the module docstring); None when
    the CPU is not an x86 one this table knows (Arm, no flags)."""
    f, fam, model = cpu.flags, cpu.family, cpu.model
    if cpu.vendor == "AuthenticAMD" and fam is not None and model is not None:
        if fam == 0x17:
            return (16, "Zen/Zen+: 2 x 128-bit FMA") if model < 0x30 else (32, "Zen 2: 2 x 256-bit FMA")
        if fam == 0x19:
            if _in(model, (0x10, 0x1F), (0x60, 0x7F), (0xA0, 0xAF)):
                return 32, "Zen 4: AVX-512 executed on 2 x 256-bit FMA"
            return 32, "Zen 3: 2 x 256-bit FMA"
        if fam == 0x1A:
            if _in(model, (0x20, 0x2F), (0x60, 0x6F)):
                return 32, "Zen 5 mobile: AVX-512 on 2 x 256-bit FMA"
            return 64, "Zen 5: 2 x 512-bit FMA"
    if cpu.vendor == "HygonGenuine" and fam == 0x18:
        return 16, "Hygon Dhyana (Zen): 2 x 128-bit FMA"
    if "avx512f" in f:
        if cpu.vendor == "GenuineIntel" and model in _INTEL_ONE_FMA512:
            return 32, "Intel client AVX-512: 1 x 512-bit FMA"
        return 64, "AVX-512: 2 x 512-bit FMA"
    if "avx2" in f and "fma" in f:
        return 32, "AVX2: 2 x 256-bit FMA"
    if "avx" in f:
        return 16, "AVX: 256-bit add + 256-bit multiply"
    if "sse2" in f:
        return 8, "SSE2: 128-bit add + 128-bit multiply"
    return None


@dataclass(frozen=True)
class Peak:
    flops: float | None  # FLOP/s; None: unknown
    how: str


def usable_cores(cpu: CpuInfo, logical: int | None = None) -> int:
    """Physical cores this process may use: its logical CPUs over the SMT threads per core."""
    if logical is None:
        logical = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, logical // cpu.threads_per_core)


def cpu_theoretical_peak(cpu: CpuInfo, cores: int, max_freq_khz: str | None) -> Peak:
    """cores × clock × fp32 FLOPs/cycle; `max_freq_khz` is the text of cpufreq's cpuinfo_max_freq, if any."""
    per_cycle = cpu_flops_per_cycle(cpu)
    if per_cycle is None:
        return Peak(None, f"theoretical peak unknown for {cpu.describe()}: no x86 vector flags")
    mhz, source = None, ""
    if max_freq_khz and max_freq_khz.strip().isdigit() and int(max_freq_khz) > 0:
        mhz, source = int(max_freq_khz) / 1000, "cpufreq cpuinfo_max_freq"
    elif cpu.mhz:
        mhz, source = cpu.mhz, "/proc/cpuinfo cpu MHz (in a VM often the nominal clock, not the boost clock)"
    if mhz is None:
        return Peak(None, f"theoretical peak unknown for {cpu.describe()}: no clock found")
    n, why = per_cycle
    return Peak(cores * mhz * 1e6 * n, f"{cores} core(s) x {mhz:,.0f} MHz [{source}] x {n} fp32 FLOP/cycle [{why}]")


def host_cpu_peak() -> tuple[CpuInfo | None, Peak]:
    """This host's CPU and its theoretical fp32 peak over the cores this process may use."""
    try:
        cpu = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        return None, Peak(None, "theoretical peak unknown: /proc/cpuinfo unreadable")
    try:
        max_freq = MAX_FREQ.read_text()
    except OSError:
        max_freq = None
    return cpu, cpu_theoretical_peak(cpu, usable_cores(cpu), max_freq)


# --------------------------------------------------------------------------------------------------------------------
# GPUs
# --------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GpuSpec:
    label: str
    fp32: float  # TFLOP/s, CUDA cores (no tensor cores)
    tf32: float  # TFLOP/s, tensor cores, dense (the datasheets' starred figures are with 2:4 sparsity: halved here)
    bf16: float  # TFLOP/s, tensor cores, dense
    source: str


_H100 = "NVIDIA H100 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/h100)"
#: torch.cuda.get_device_name patterns, most specific first → dense spec peaks from the vendor's datasheet.
GPU_SPECS: tuple[tuple[str, GpuSpec], ...] = (
    (r"H200 NVL", GpuSpec("H200 NVL", 60.0, 417.5, 835.5,
                          "NVIDIA H200 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/h200)")),
    (r"H200", GpuSpec("H200 SXM", 67.0, 494.5, 989.5,
                      "NVIDIA H200 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/h200)")),
    (r"H100 NVL", GpuSpec("H100 NVL", 60.0, 417.5, 835.5, _H100)),
    (r"H100 PCIe", GpuSpec("H100 PCIe", 51.0, 378.0, 756.5, _H100)),
    (r"H100", GpuSpec("H100 SXM", 67.0, 494.5, 989.5, _H100)),  # "NVIDIA H100 80GB HBM3"
    (r"A100", GpuSpec("A100", 19.5, 156.0, 312.0,
                      "NVIDIA A100 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/a100)")),
    (r"L40S", GpuSpec("L40S", 91.6, 183.0, 362.05, "NVIDIA L40S GPU datasheet (nvidia.com/en-us/data-center/l40s)")),
    (r"\bL4\b", GpuSpec("L4", 30.3, 60.0, 121.0,
                         "NVIDIA L4 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/l4)")),
)


def gpu_spec(name: str) -> GpuSpec | None:
    """The spec peaks of a GPU by its device name; None: spec peak unknown."""
    return next((spec for pattern, spec in GPU_SPECS if re.search(pattern, name)), None)


def gpu_theoretical_peak(name: str, tf32: bool) -> Peak:
    """The ceiling of fp32 training on this GPU: the TF32 tensor-core rate where convolutions or matmuls may use TF32
    (`tf32`: torch.backends.cudnn.allow_tf32, on by default, or torch.backends.cuda.matmul.allow_tf32), else the
    CUDA cores' fp32 rate."""
    spec = gpu_spec(name)
    if spec is None:
        return Peak(None, f"spec peak unknown for {name!r} (not in unlearnbench.peak.GPU_SPECS)")
    rate, what = (spec.tf32, "TF32 tensor cores, dense") if tf32 else (spec.fp32, "fp32 CUDA cores")
    return Peak(rate * 1e12, f"{spec.label} spec: {what} {rate:,.1f} TFLOP/s (fp32 {spec.fp32:,.1f}, TF32 "
                f"{spec.tf32:,.1f}, bf16 {spec.bf16:,.1f} dense) [{spec.source}]")


# --------------------------------------------------------------------------------------------------------------------
def ceiling(theoretical: float | None, *measured: float) -> tuple[float, str | None]:
    """The rate to divide by: the theoretical peak, unless a measured rate exceeds it (then the theoretical figure is
    wrong and the largest measured rate is the ceiling); with a warning in that case or when it is unknown."""
    best = max(measured)
    if theoretical is None:
        return best, "no theoretical peak: ratios are against the fastest measured rate, a lower bound of the peak"
    if best > theoretical:
        return best, (f"WARNING: a measured rate ({best / 1e9:,.1f} GFLOP/s) exceeds the theoretical peak "
                      f"({theoretical / 1e9:,.1f} GFLOP/s), so that figure is wrong (clock or vector width guessed "
                      "low): ratios are against the measured rate instead")
    return theoretical, None
