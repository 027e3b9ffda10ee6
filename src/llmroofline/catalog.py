"""Finding catalog entries (bundled data files) by id, alias or path."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .errors import InputError

# The package's own folder (what importlib.resources.files gives for a package installed as files,
# without importing importlib.resources and zipfile: a few ms of every command).
CATALOG_ROOT = Path(__file__).parent / "catalog"


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


def name_table(kind: str, entries: Iterable[tuple[str, Iterable[str], Iterable[str]]]) -> dict[str, str]:
    """Lower-cased names -> canonical id, the same whatever order the catalog files come in.

    `entries` are (id, aliases, derived names such as a Hub id's part after the slash). Ids take
    precedence over aliases and aliases over derived names; two entries claiming the same id or
    alias are an error, a derived name two entries share goes to the first id in sorted order.
    """
    ordered = sorted(entries, key=lambda e: e[0])
    table: dict[str, str] = {}
    for level in ("id", "alias", "derived"):
        for ident, aliases, derived in ordered:
            names = [ident] if level == "id" else aliases if level == "alias" else derived
            for name in names:
                key = name.lower()
                owner = table.setdefault(key, ident)
                if owner != ident and level != "derived":
                    raise InputError(f"{kind} catalog: {level} {name!r} of {ident} already names {owner}")
    return table
