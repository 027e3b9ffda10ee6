"""The user's files, read and written with care.

Reading: only regular files (a device such as /dev/zero, a FIFO or a socket would never end or
block for good), up to a size that depends on the kind of file, as UTF-8 text. JSON and YAML are
parsed into plain data (YAML through `yaml.safe_load`, with duplicate keys refused); anything
malformed is an InputError naming the file.

Writing: one rule for every output the tool writes: the folder must exist, an existing file is
replaced only with `force` (or when the tool owns it), a symbolic link is never written through,
and nothing but a regular file is ever replaced.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import IO, Any

import yaml

from .errors import InputError, clean_name

MB = 1_000_000
MAX_CONFIG_BYTES = 10 * MB  # a Hugging Face config.json is a few kB
MAX_YAML_BYTES = 1 * MB  # a device spec or a calibration file is a few kB
MAX_CSV_BYTES = 200 * MB  # a million workload rows


def _reason(e: BaseException) -> str:
    return str(getattr(e, "strerror", None) or e)


def read_bytes(path: str | Path, what: str, *, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; InputError otherwise."""
    name = clean_name(str(path))
    try:
        p = Path(path).expanduser()
        st = os.stat(p)
    except (OSError, RuntimeError, ValueError) as e:  # missing, unknown ~user, NUL byte, name too long
        raise InputError(f"cannot read {what} {name}: {_reason(e)}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"cannot read {what} {name}: it is a folder")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"cannot read {what} {name}: not a regular file (a device, pipe or socket is refused)")
    if st.st_size > limit:
        raise InputError(f"cannot read {what} {name}: {st.st_size / MB:,.1f} MB is too large "
                         f"(allowed up to {limit / MB:g} MB)")
    try:
        # O_NONBLOCK: should the name have become a FIFO since the check above, opening it must
        # not wait for a writer; the check is repeated on the open file.
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as e:
        raise InputError(f"cannot read {what} {name}: {_reason(e)}") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise InputError(f"cannot read {what} {name}: not a regular file (a device, pipe or socket is refused)")
        try:
            data = f.read(limit + 1)
        except OSError as e:
            raise InputError(f"cannot read {what} {name}: {_reason(e)}") from None
    if len(data) > limit:
        raise InputError(f"cannot read {what} {name}: larger than the {limit / MB:g} MB allowed")
    return data


def read_text(path: str | Path, what: str, *, limit: int, encoding: str = "utf-8") -> str:
    """A regular file of at most `limit` bytes as text. `utf-8-sig` also accepts a leading byte
    order mark (spreadsheets save "CSV UTF-8" with one)."""
    data = read_bytes(path, what, limit=limit)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        raise InputError(f"cannot read {what} {clean_name(str(path))}: not UTF-8 text "
                         f"({e.reason} at byte {e.start})") from None


def parse_json(text: str | bytes, where: str) -> Any:
    """JSON text to plain data. Malformed, too deeply nested or holding absurdly long numbers:
    InputError naming `where`."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{where} is not valid JSON: {e.msg} at line {e.lineno}") from None
    except RecursionError:
        raise InputError(f"{where} is not usable JSON: nested too deeply") from None
    except ValueError as e:  # an integer of more than sys.get_int_max_str_digits() digits
        raise InputError(f"{where} is not usable JSON: {str(e).split(';')[0]}") from None


def _duplicate_key(root: yaml.Node) -> tuple[str, int] | None:
    """The first key that a YAML mapping repeats (its text and line), or None."""
    todo, seen = [root], set()
    while todo:
        node = todo.pop()
        if id(node) in seen:  # an alias shares its anchor's node
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: set[tuple[str, str]] = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    k = (key.tag, key.value)
                    if k in keys:
                        return key.value, key.start_mark.line + 1
                    keys.add(k)
                todo += [key, value]
        elif isinstance(node, yaml.SequenceNode):
            todo += node.value
    return None


# The safe loader, in C when PyYAML was built with libyaml (same tags refused, ten times faster).
SAFE_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str, where: str) -> Any:
    """YAML text to plain data through `yaml.safe_load` (tags that would build Python objects are
    refused); a mapping that repeats a key is refused too, where PyYAML would keep the last value."""
    try:
        # Composed once: the nodes are checked for repeated keys, then built (what yaml.safe_load does).
        loader = SAFE_LOADER(text)
        try:
            root = loader.get_single_node()  # nodes only: nothing is constructed
            dup = _duplicate_key(root) if root is not None else None
            if dup is not None:
                raise InputError(f"{where} is not valid YAML: key {clean_name(dup[0], 60)!r} appears twice "
                                 f"in one mapping (line {dup[1]})")
            return loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except InputError:
        raise
    except yaml.YAMLError as e:
        first = (str(e).strip().splitlines() or ["malformed"])[0]
        raise InputError(f"{where} is not valid YAML: {first}") from None
    except Exception as e:  # noqa: BLE001 - PyYAML's constructors raise ValueError on `!!int abc`,
        # AttributeError on `!!timestamp abc`, RecursionError on deep nesting: all malformed input.
        raise InputError(f"{where} is not valid YAML: {type(e).__name__}: {clean_name(str(e))}") from None


# ---- writing ------------------------------------------------------------------------------------

def check_output(path: str | Path, formats: tuple[str, ...] | None = None, *, force: bool = False,
                 owned: bool = False, what: str = "output") -> Path:
    """A path the tool may write: a known extension (when `formats` is given), an existing folder,
    not a symbolic link, and no existing file in the way unless `force` (or `owned`: written by
    the tool itself, e.g. inside the demo folder). Returns the path; InputError otherwise."""
    shown = clean_name(str(path))
    try:
        p = Path(path).expanduser()
    except RuntimeError as e:  # ~user that does not exist
        raise InputError(f"{what} {shown!r}: {e}") from None
    if formats is not None:
        ext = p.suffix.lower().lstrip(".")
        if ext not in formats:
            raise InputError(f"{what} {shown!r}: the extension must be one of {', '.join('.' + f for f in formats)}")
    try:
        parent_exists, parent_dir = p.parent.exists(), p.parent.is_dir()
        is_link, exists = p.is_symlink(), p.exists()
        is_dir, is_file = p.is_dir(), p.is_file()
    except (OSError, ValueError) as e:
        raise InputError(f"{what} {shown!r}: {_reason(e)}") from None
    if not parent_exists:
        raise InputError(f"{what} {shown!r}: folder {clean_name(str(p.parent))!r} does not exist")
    if not parent_dir:
        raise InputError(f"{what} {shown!r}: {clean_name(str(p.parent))!r} is not a folder")
    if is_link:
        raise InputError(f"{what} {shown!r} is a symbolic link: it is never written through (remove it, or "
                         "choose another name)")
    if is_dir:
        raise InputError(f"{what} {shown!r} is a folder, not a file")
    if exists and not is_file:
        raise InputError(f"{what} {shown!r} exists and is not a regular file")
    if exists and not (force or owned):
        raise InputError(f"{what} {shown!r} exists; pass --force to overwrite it")
    return p


def open_output(path: str | Path, *, force: bool = False, binary: bool = False) -> IO[Any]:
    """Open a checked output for writing without following a symbolic link (O_NOFOLLOW) and,
    unless `force`, without replacing a file that appeared since the check (O_EXCL)."""
    p = Path(path).expanduser()
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    if not force:
        flags |= os.O_EXCL
    try:
        fd = os.open(p, flags, 0o666)
    except FileExistsError:
        raise InputError(f"output {clean_name(str(p))!r} exists; pass --force to overwrite it") from None
    except OSError as e:
        raise InputError(f"cannot write {clean_name(str(p))!r}: {_reason(e)}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InputError(f"output {clean_name(str(p))!r} exists and is not a regular file")
    os.set_blocking(fd, True)
    if binary:
        return os.fdopen(fd, "wb")
    return os.fdopen(fd, "w", encoding="utf-8", newline="")


def write_text(path: str | Path, text: str, *, force: bool = False, formats: tuple[str, ...] | None = None) -> Path:
    """Write a text file under the output rule (`check_output`, then `open_output`)."""
    p = check_output(path, formats, force=force)
    try:
        with open_output(p, force=force) as f:
            f.write(text)
    except OSError as e:
        raise InputError(f"cannot write {clean_name(str(p))!r}: {_reason(e)}") from None
    return p


def read_csv(path: str | Path, what: str) -> tuple[list[str], list[dict[str, str]]]:
    """A CSV file with a header row as (columns, rows of {column: text}): a regular file of at
    most MAX_CSV_BYTES, UTF-8 with or without a byte order mark (Excel's "CSV UTF-8"), column
    names unique. Cells beyond the header's columns are dropped; a short row leaves None."""
    import csv
    import io

    name = clean_name(str(path))
    text = read_text(path, what, limit=MAX_CSV_BYTES, encoding="utf-8-sig")
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        columns = [str(c).strip() for c in (reader.fieldnames or [])]
        seen: set[str] = set()
        for c in columns:
            if c in seen and c:
                raise InputError(f"{what} {name}: column {clean_name(c, 60)!r} appears twice in the header")
            seen.add(c)
        reader.fieldnames = columns
        rows = [{k: v for k, v in r.items() if k is not None} for r in reader]
    except csv.Error as e:
        raise InputError(f"{what} {name} is malformed CSV: {e}") from None
    return columns, rows
