"""Finding catalog entries (bundled data files) by id, alias or path."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

CATALOG_ROOT = Path(str(resources.files("llmroofline") / "catalog"))


def catalog_files(kind: str, suffixes: tuple[str, ...]) -> list[Path]:
    """Bundled files of one kind (`hardware`, `models`, `calibration`), sorted for determinism."""
    folder = CATALOG_ROOT / kind
    return sorted(p for p in folder.iterdir() if p.suffix in suffixes)


def looks_like_path(name: str) -> bool:
    if name.endswith((".json", ".yaml", ".yml")) or name.startswith((".", "/", "~")):
        return True
    try:
        return Path(name).exists()
    except (OSError, ValueError):  # a name too long for a path, or holding a NUL byte
        return False
