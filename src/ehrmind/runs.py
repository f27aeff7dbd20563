"""The output folder of a run: `run.json` (the settings that made it) beside the files the run writes.

Every program that writes results (eval, score, rationales, and diagnose and matrix through the eval runs
they hold) writes one of these. A rerun into a folder continues it only if the settings that shape its output
(`resume_keys`) are the same; otherwise it is refused with the settings that differ named, so two runs never
mix in one folder. A run that fails before writing any result leaves the folder as it found it, so the next
run (perhaps with other settings) is not refused as a "different run" (issue #16, cause 14). A write that
fails (disk full, read-only) is one `error:` line naming the file (`ehrmind.io.WriteError`); the files keep
complete lines only, so the same command continues the run once there is room (issue #31).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ehrmind.errors import ConfigError, DataError
from ehrmind.io import atomic_write_json, output_folder

RUN_INFO = "run.json"


class RunFolder:
    """One run's output folder. `what` names its content in refusals ("a run", "rationales made"). The
    path is checked at once (a file in the way is a ConfigError) and made when the run starts writing."""

    def __init__(self, path: str | Path, resume_keys: Sequence[str], *, what: str = "a run"):
        self.path = output_folder(path, create=False)
        self.resume_keys = tuple(resume_keys)
        self.what = what

    def create(self) -> Path:
        return output_folder(self.path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @property
    def info_path(self) -> Path:
        return self.path / RUN_INFO

    def stored(self) -> dict[str, Any] | None:
        """The run.json the folder holds, if any; one that cannot be read is a DataError naming it, a symbolic
        link a ConfigError."""
        _refuse_links([self.info_path])
        if not self.info_path.exists():
            return None
        try:
            info = json.loads(self.info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise DataError(
                f"cannot read the run record ({e}); use a new --out", file=self.info_path
            ) from None
        if not isinstance(info, dict):
            raise DataError("the run record is not a JSON object; use a new --out", file=self.info_path)
        return info

    def changed(self, info: dict[str, Any]) -> list[str]:
        """The resume keys whose value in the folder's record differs from `info` ([] for a new folder)."""
        old = self.stored()
        if old is None:
            return []
        return [k for k in self.resume_keys if old.get(k) != info.get(k)]

    def check(self, info: dict[str, Any]) -> None:
        """Refuse to continue a folder that holds a run with other settings."""
        changed = self.changed(info)
        if changed:
            raise ConfigError(
                f"{self.path} holds {self.what} with different {', '.join(changed)}; "
                "use a new --out folder (or delete this one) to start a different run"
            )

    def write_info(self, info: dict[str, Any]) -> None:
        self.create()
        atomic_write_json(self.info_path, info)

    @contextmanager
    def run(self, info: dict[str, Any], results: Sequence[str]) -> Iterator[RunFolder]:
        """Check and record `info`, then run the body; if it fails while none of the `results` files holds
        anything and the folder was new, remove what it wrote. A symbolic link in place of the record or a
        result is refused before anything is read or written: a rerun would read and append through it into
        another file (issue #31)."""
        paths = [self.path / name for name in results]
        _refuse_links(paths)
        self.check(info)
        fresh = not self.info_path.exists() and not any(p.exists() for p in paths)
        self.write_info(info)
        try:
            yield self
        except BaseException:
            if fresh and all(not p.exists() or p.stat().st_size == 0 for p in paths):
                for p in (*paths, self.info_path):
                    p.unlink(missing_ok=True)
            raise


def _refuse_links(paths: Sequence[Path]) -> None:
    """A symbolic link in place of a run folder's file is a ConfigError naming it: a rerun would read and
    append through it into another file (issue #31). Checked before reading; writers refuse links too
    (`ehrmind.io.output_file`)."""
    for p in paths:
        if p.is_symlink():
            raise ConfigError(
                f"{p} is a symbolic link; a run folder's files are not read or written through links "
                "(remove it, or use a new --out)"
            )
