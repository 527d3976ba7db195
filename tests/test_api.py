"""The Python API: docs/api.md's code run as written (real MNIST, a tiny size), a user's own method, model and data set
registered from a module of their own, and `import unlearnbench` staying light."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "api.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S)


def _run(script: str, cwd: Path, data_root: Path, timeout: int = 600) -> dict:
    """Run `script` in a fresh interpreter (registrations are per process: a user's method must not leak into the
    other tests' registry), in `cwd`, with its own checkpoint cache; it prints one JSON line last."""
    env = {**os.environ, "UNLEARNBENCH_DATA": str(data_root), "UNLEARNBENCH_CACHE": str(cwd / "cache"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(cwd), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_is_light_and_the_api_is_documented():
    code = ("import sys, unlearnbench as ub; heavy = [m for m in ('torch', 'timm', 'pandas') if m in sys.modules]; "
            "names = [n for n in ub.__all__ if n != '__version__']; print(heavy, all(callable(getattr(ub, n)) "
            "for n in names))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.split() == ["[]", "True"], out.stderr
    page = PAGE.read_text(encoding="utf-8")
    import unlearnbench
    missing = [n for n in unlearnbench.__all__ if n not in ("__version__", "UsageError") and f"`{n}" not in page]
    assert not missing, f"docs/api.md does not document {missing}"


def test_get_method_gives_defaults_ranges_and_sources():
    import unlearnbench as ub
    pbu = ub.get_method("pbu")
    assert pbu.needs == frozenset({"forget"}) and pbu.base is None
    beta = pbu.defaults["beta"]
    assert (beta.default, beta.type, beta.range) == (100.0, "float", ">= 0 and <= 1000000") and "official" in beta.source
    variant = ub.get_method("pbu+stop")
    assert variant.base == "pbu" and variant.defaults["stop"].default == "forget_acc"
    assert variant.defaults["stop"].source.startswith("this variant (base default 'none')")
    with pytest.raises(ub.UsageError, match=r"'pbu\+fixed5' is now 'pbu'"):  # a renamed variant says its new name
        ub.get_method("pbu+fixed5")
    with pytest.raises(ub.UsageError, match=r"unknown method 'pbuu' \(did you mean 'pbu'\?\)"):
        ub.get_method("pbuu")


@pytest.mark.slow
def test_the_docs_worked_example_runs_as_written(tmp_path, data_root):
    blocks = _python_blocks()
    example = [b for b in blocks if "my_unlearning" not in b]
    assert len(example) == 4, "docs/api.md's worked example changed: update this test"
    script = "\n".join(example) + (
        "\nimport json\nprint(json.dumps({'n': len(df), 'methods': sorted(df['method']), "
        "'summary': sorted(summary['method']), 'af': float(df.set_index('method').loc['finetune', 'acc_forget'])}))")
    got = _run(script, tmp_path, data_root)
    assert got["n"] == 3 and got["methods"] == ["finetune", "grad_ascent", "pbu"] == got["summary"]
    assert got["af"] == 0.0  # fine-tuning on the retain set alone: the forget class is never predicted
    assert len((tmp_path / "scratch" / "runs.jsonl").read_text().splitlines()) == 3
    assert (tmp_path / "scratch" / "report" / "table.md").is_file()


@pytest.mark.slow
def test_a_users_own_method_model_and_data_set(tmp_path, data_root):
    blocks = [b for b in _python_blocks() if "my_unlearning" in b]
    module, call = blocks
    (tmp_path / "my_unlearning.py").write_text(module.split("\n", 1)[1], encoding="utf-8")
    got = _run(call + "\nimport json\nprint(json.dumps({k: record[k] for k in ('dataset', 'model', 'method', "
               "'acc_forget', 'original_acc_forget', 'forget_samples_seen', 'retain_samples_seen')}))",
               tmp_path, data_root)
    assert (got["dataset"], got["model"], got["method"]) == ("mnist_mirrored", "tiny_resnet", "logit_shift")
    assert got["acc_forget"] == 0.0 < got["original_acc_forget"]  # the shifted bias removes class 3's predictions
    assert got["forget_samples_seen"] == got["retain_samples_seen"] == 0  # it declared no data, and drew none


@pytest.mark.slow  # the plan's estimate times a few real training steps
def test_run_sweep_plans_like_the_cli_and_raises_on_bad_input(tmp_path, data_root, capsys):
    import unlearnbench as ub
    smoke = ROOT / "benchmarks" / "smoke.toml"
    out = ub.run_sweep(smoke, results=tmp_path / "r", cache_dir=tmp_path / "c", data_root=data_root,
                       only={"method": ["original", "finetune"]}, set={"train.epochs": 1}, dry_run=True)
    assert out == tmp_path / "r" and "sweep 'smoke': 2 cells" in capsys.readouterr().out
    assert not (tmp_path / "r" / "records").exists()  # a dry run writes nothing
    with pytest.raises(ub.UsageError, match=r"--only seed=7: no cell of 'smoke' matches"):
        ub.run_sweep(smoke, results=tmp_path / "r", only={"seed": 7}, dry_run=True)
    with pytest.raises(ub.UsageError, match="does not exist"):
        ub.load_results(tmp_path / "nothing")
