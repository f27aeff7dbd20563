"""GPU readiness (issue #26, item 2): ehrmind's `vllm`, `deepspeed` and `gpu` extras allow only versions the
installed TRL supports (read from both packages' metadata), and a recipe that needs a missing extra stops with
one line naming it, before any model loads."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from importlib.metadata import requires
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version
from typer.testing import CliRunner

from ehrmind.cli import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]

# Every version a pin could reasonably meet: 0.0.0 … 1.49.20, with post-releases.
VERSIONS = [Version(f"{major}.{minor}.{patch}{post}") for major in (0, 1) for minor in range(50)
            for patch in range(21) for post in ("", ".post1")]  # fmt: skip


def _extra(package: str, extra: str) -> dict[str, Requirement]:
    """The requirements `package`'s installed metadata lists under `extra`, by name."""
    out = {}
    for line in requires(package) or []:
        req = Requirement(line)
        if req.marker is not None and req.marker.evaluate({"extra": extra}):
            out[req.name] = req
    return out


@pytest.mark.parametrize(("extra", "package"), [("vllm", "vllm"), ("deepspeed", "deepspeed")])
def test_extras_pin_inside_the_ranges_trl_supports(extra, package):
    ours, trls = _extra("ehrmind", extra), _extra("trl", extra)
    assert package in ours, (
        f"ehrmind[{extra}] does not name {package} (installed metadata stale? `make install`)"
    )
    assert package in trls, f"TRL's {extra} extra no longer names {package}"
    allowed = [v for v in VERSIONS if ours[package].specifier.contains(v)]
    assert allowed, f"ehrmind[{extra}] allows no {package} version"
    outside = [v for v in allowed if not trls[package].specifier.contains(v)]
    assert not outside, (
        f"ehrmind[{extra}] allows {package} {outside[0]}, outside TRL's {trls[package].specifier}"
    )
    # the other pins both extras set (deepspeed's transformers!=5.1.0) are TRL's
    for name in (set(ours) & set(trls)) - {package}:
        assert ours[name].specifier == trls[name].specifier, (name, ours[name], trls[name])


def test_gpu_extra_is_vllm_and_deepspeed():
    gpu = _extra("ehrmind", "gpu")
    assert set(gpu) == {"ehrmind"} and gpu["ehrmind"].extras == {"vllm", "deepspeed"}


@pytest.mark.slow  # asks the package index (network)
def test_the_package_index_has_a_vllm_in_range():
    pin = _extra("ehrmind", "vllm")["vllm"].specifier
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "index", "versions", "vllm"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.skip("the package index did not answer in 60 s")
    if result.returncode != 0:
        pytest.skip(f"no package index: {result.stderr.strip()[-200:]}")
    listed = re.search(r"Available versions: (.*)", result.stdout)
    assert listed, result.stdout
    assert any(pin.contains(v.strip()) for v in listed.group(1).split(",")), (pin, listed.group(1))


# ------------------------------------------------------------------ a missing extra: one line, exit 2


def _paper_rl_recipe(tmp_path: Path, model: Path) -> Path:
    """recipes/medcalc/base.yaml's rl settings (use_vllm: true) on a model folder and local data."""
    body = {
        "include": str(REPO / "recipes" / "medcalc" / "base.yaml"),
        "data": str(tmp_path / "train.jsonl"),
        "split": None,
        "rl": {"model": str(model), "output_dir": str(tmp_path / "rl")},
    }
    path = tmp_path / "paper-rl.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def _one_error_line(output: str) -> str:
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in output, output[-2000:]
    return errors[0]


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_paper_rl_recipe_without_vllm_names_the_extra(tmp_path):
    # no model folder and no data: the missing package is reported before either is read
    path = _paper_rl_recipe(tmp_path, tmp_path / "no-model")
    result = runner.invoke(app, ["rl", "--recipe", str(path)])
    assert result.exit_code == 2
    line = _one_error_line(result.output)
    assert "trl.use_vllm" in line and "pip install 'ehrmind[vllm]'" in line, line
    assert not (tmp_path / "rl").exists()


@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is not None, reason="DeepSpeed is installed here")
def test_a_deepspeed_launch_without_deepspeed_names_the_extra(tmp_path, monkeypatch):
    # what `accelerate launch --config_file recipes/accelerate/zero3.yaml` sets for each process
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    body = {"stage": "sft", "task": "medcalc", "data": str(tmp_path / "d.jsonl"),
            "model": str(tmp_path / "no-model"), "output_dir": str(tmp_path / "sft")}  # fmt: skip
    (tmp_path / "sft.yaml").write_text(yaml.safe_dump(body))
    result = runner.invoke(app, ["sft", "--recipe", str(tmp_path / "sft.yaml")])
    assert result.exit_code == 2
    line = _one_error_line(result.output)
    assert "accelerate config uses DeepSpeed" in line and "pip install 'ehrmind[deepspeed]'" in line, line
