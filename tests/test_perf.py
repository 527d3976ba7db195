"""The speed benchmark runs end to end and prints each comparison (its numbers are measurements, not asserted)."""
from __future__ import annotations

import re

import pytest

from unlearnbench.cli.perf import main
from unlearnbench.registry import list_methods

CONFIG = """
[data]
train_per_class = 20
test_per_class = 10
[train]
epochs = 1
batch_size = 32
[method.finetune]
epochs = 1
[method.fast_effective]
noise_steps = 2
retain_per_class = 10
[method.pbu]
fisher = "mc"
[method.grad_ascent]
epochs = 1
[method.boundary_shrink]
epochs = 1
[method.boundary_expand]
epochs = 1
[method.jit]
n_samples = 2
[method.delete]
epochs = 1
"""


@pytest.mark.slow
def test_perf_prints_the_four_comparisons(tmp_path, data_root, capsys):
    cfg = tmp_path / "perf.toml"
    cfg.write_text(CONFIG)
    assert main(["--sections", "loader,methods,fisher,flops", "--model", "test_resnet", "--steps", "2",
                 "--loader-workers", "0", "--fisher-samples", "3", "--config", str(cfg), "--data-root",
                 str(data_root), "--cache-dir", str(tmp_path / "cache"), "--no-download"]) == 0
    out = capsys.readouterr().out
    for heading in ("(a) training throughput", "(b) unlearning time", "(c)", "(d)"):
        assert heading in out
    assert "(200 training images)" in out  # the file's data subset reached section b
    flops = out[out.index("(d)"):]
    assert "theoretical peak" in flops and "best matmul" in flops and ("vector flags" in flops or "GPU:" in flops)
    assert all(int(r) <= 100 for r in re.findall(r"\|\s*(\d+)%", flops))
    fisher = out[out.index("(c)"):out.index("(d)")]
    assert "layerwise / bound" in fisher
    assert re.search(r"\|\s*test_resnet\s*\|\s*\d+ / \d+ \(100\.0% of θ\)\s*\|\s*[\d.]+\s*\|\s*[\d.]+\s*\|\s*[\d.]+", fisher)
    methods = out[out.index("(b) unlearning time"):out.index("(c)")]
    speedups = dict(re.findall(r"\|\s*(\w+)\s*\|\s*[\d.]+\s*\|\s*([\d.]+)x", methods))
    assert set(speedups) == set(list_methods(variants=False)) - {"original"}  # every method as published
    assert {"retrain", "finetune", "fast_effective", "bad_teaching", "pbu"} <= set(speedups)
    assert float(speedups["retrain"]) == 1.0
    assert re.search(r"\|\s*pbu\s*\|.*\|\s*\d+/0\s*\|", methods), "PBU must draw no retain sample"


def test_perf_rejects_unknown_sections(capsys):
    assert main(["--sections", "loader,warp"]) == 2
    assert "--sections takes" in capsys.readouterr().err


@pytest.mark.slow
def test_perf_options_section_compares_each_variant_with_fp32(tmp_path, data_root, capsys):
    assert main(["--sections", "options", "--model", "test_resnet", "--steps", "2", "--options-per-class", "10",
                 "--variants", "channels_last", "--data-root", str(data_root), "--cache-dir", str(tmp_path / "c"),
                 "--no-download"]) == 0
    captured = capsys.readouterr()
    rows = dict(re.findall(r"\|\s*(fp32|channels_last)\s*\|\s*[\d,]+\s*\|\s*([\d.]+)x", captured.out))
    assert set(rows) == {"fp32", "channels_last"} and float(rows["fp32"]) == 1.0
    assert "(e) channels_last:" in captured.err  # progress per variant, before the table
    assert not re.search(r"\|\s*(bf16|compile)", captured.out)  # only the variants asked for


def test_perf_rejects_unknown_variants(capsys):
    assert main(["--sections", "options", "--variants", "fp32,fp8"]) == 2
    assert "--variants takes" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------------------------
# section (d)'s peak: hand-computed from fake /proc/cpuinfo texts
# --------------------------------------------------------------------------------------------------------------------
def _cpuinfo(vendor: str, family: int, model: int, name: str, mhz: float, flags: str, siblings: int = 2,
             cores: int = 2) -> str:
    block = (f"processor\t: {{i}}\nvendor_id\t: {vendor}\ncpu family\t: {family}\nmodel\t\t: {model}\n"
             f"model name\t: {name}\ncpu MHz\t\t: {{mhz}}\nsiblings\t: {siblings}\ncpu cores\t: {cores}\n"
             f"flags\t\t: fpu sse sse2 {flags}\n\n")
    return "".join(block.format(i=i, mhz=mhz - 100 * i) for i in range(siblings))  # the fastest core's clock counts


AVX2_INTEL = _cpuinfo("GenuineIntel", 6, 63, "Intel(R) Xeon(R) CPU E5-2680 v3 @ 2.50GHz", 2500.0,
                      "ht avx fma avx2", siblings=4, cores=2)
AVX512_INTEL = _cpuinfo("GenuineIntel", 6, 106, "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", 2900.0,
                        "avx fma avx2 avx512f avx512_vnni")
ZEN4 = _cpuinfo("AuthenticAMD", 25, 17, "AMD EPYC", 2596.1, "avx fma avx2 avx512f avx512_bf16")
ZEN5 = _cpuinfo("AuthenticAMD", 26, 2, "AMD EPYC 9B45", 2600.0, "avx fma avx2 avx512f avx512_bf16")


def test_cpu_peak_of_an_avx2_host_counts_physical_cores():
    from unlearnbench.peak import cpu_theoretical_peak, parse_cpuinfo, usable_cores
    cpu = parse_cpuinfo(AVX2_INTEL)
    assert (cpu.family, cpu.model, cpu.mhz, cpu.threads_per_core) == (6, 63, 2500.0, 2)
    cores = usable_cores(cpu, logical=4)  # 4 logical CPUs, 2 SMT threads per core: 2 cores' FMA units
    peak = cpu_theoretical_peak(cpu, cores, None)
    assert cores == 2 and peak.flops == pytest.approx(2 * 2500e6 * 2 * 8 * 2)  # 2 FMA units x 8 fp32 lanes x 2
    assert "/proc/cpuinfo cpu MHz" in peak.how and "AVX2" in peak.how


def test_cpu_peak_of_an_avx512_host_prefers_the_rated_maximum_clock():
    from unlearnbench.peak import cpu_theoretical_peak, parse_cpuinfo
    cpu = parse_cpuinfo(AVX512_INTEL)
    peak = cpu_theoretical_peak(cpu, 4, "3500000\n")  # cpufreq's cpuinfo_max_freq is in kHz
    assert peak.flops == pytest.approx(4 * 3500e6 * 2 * 16 * 2)  # 2 FMA units x 16 fp32 lanes x 2 = 64
    assert "cpufreq cpuinfo_max_freq" in peak.how and "64 fp32 FLOP/cycle" in peak.how
    assert cpu_theoretical_peak(cpu, 4, None).flops == pytest.approx(4 * 2900e6 * 64)
    assert cpu.vector_flags == ["avx", "avx2", "avx512_vnni", "avx512f", "fma"]


def test_cpu_peak_of_amd_cores_follows_their_datapath_not_their_flags():
    from unlearnbench.peak import cpu_flops_per_cycle, cpu_theoretical_peak, parse_cpuinfo
    zen4, zen5 = parse_cpuinfo(ZEN4), parse_cpuinfo(ZEN5)
    assert cpu_flops_per_cycle(zen4)[0] == 32 and "Zen 4" in cpu_flops_per_cycle(zen4)[1]  # AVX-512 on 256-bit
    assert cpu_flops_per_cycle(zen5)[0] == 64
    # the Zen 5 host of the "130% of peak" report: 2 cores at 2.6 GHz
    assert cpu_theoretical_peak(zen5, 2, None).flops == pytest.approx(332.8e9)
    assert cpu_theoretical_peak(zen4, 2, None).flops == pytest.approx(2 * 2596.1e6 * 32)


def test_cpu_peak_is_unknown_without_x86_vector_flags():
    from unlearnbench.peak import cpu_theoretical_peak, parse_cpuinfo
    arm = parse_cpuinfo("processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd sve\nCPU implementer\t: 0x41\n")
    peak = cpu_theoretical_peak(arm, 8, None)
    assert peak.flops is None and "unknown" in peak.how


def _ratios(table: str) -> list[int]:
    return [int(r) for r in re.findall(r"\|\s*(\d+)%", table)]


def test_flops_ratio_is_against_the_theoretical_peak_and_never_above_100_percent():
    from unlearnbench.peak import cpu_theoretical_peak, parse_cpuinfo
    from unlearnbench.perf_sections import flops_table
    peak = cpu_theoretical_peak(parse_cpuinfo(ZEN5), 2, None)  # 332.8 GFLOP/s
    # the reported case: ResNet-34 training at 226 GFLOP/s, a 2,048² matmul at 174
    table = flops_table("resnet34", 226e9 / 1000, 1000, 174e9, peak)
    assert _ratios(table) == [68, 52] and "332.8" in table and "WARNING" not in table
    # a fake measured matmul above the theoretical figure: it is called wrong, and no ratio passes 100%
    table = flops_table("resnet34", 226e9 / 1000, 1000, 400e9, peak)
    assert _ratios(table) == [56, 100] and "WARNING" in table and "theoretical peak" in table
    table = flops_table("resnet34", 500e9 / 1000, 1000, 400e9, peak)  # the model itself above both
    assert max(_ratios(table)) == 100 and "WARNING" in table


def test_gpu_spec_peaks_by_device_name():
    from unlearnbench.peak import gpu_spec, gpu_theoretical_peak
    assert gpu_spec("NVIDIA H200").fp32 == 67.0 and gpu_spec("NVIDIA H200 NVL").label == "H200 NVL"
    assert gpu_spec("NVIDIA H100 80GB HBM3").label == "H100 SXM" and gpu_spec("NVIDIA H100 PCIe").fp32 == 51.0
    assert gpu_spec("NVIDIA A100-SXM4-80GB").bf16 == 312.0 and gpu_spec("NVIDIA L4").label == "L4"
    assert gpu_spec("NVIDIA L40") is None and gpu_spec("Tesla V100-SXM2-16GB") is None
    assert gpu_theoretical_peak("NVIDIA H200", tf32=False).flops == 67e12
    assert gpu_theoretical_peak("NVIDIA H200", tf32=True).flops == 494.5e12  # dense: half the datasheet's sparse 989
    unknown = gpu_theoretical_peak("NVIDIA GeForce GTX 1080", tf32=True)
    assert unknown.flops is None and "spec peak unknown" in unknown.how
