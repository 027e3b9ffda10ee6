"""Errors that carry a message meant for the user (bad input), as opposed to bugs."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

NAME_LIMIT = 200  # longest name echoed in a message, in characters

# Terminal escape sequences (CSI, OSC, other ESC-introduced codes), then any control character
# left (C0, DEL, C1): a name read from a file or typed by someone else must not drive the terminal.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?|\x9b[0-?]*[ -/]*[@-~]")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class InputError(ValueError):
    """Bad input: unknown name, impossible value, unreadable or malformed file.

    The command line turns it into one line on stderr and exit status 2.
    """


def clean_text(text: str) -> str:
    """Text without terminal escape sequences; other control characters become spaces."""
    return _CONTROLS.sub(" ", _ESCAPES.sub("", str(text)))


def clean_name(name: object, limit: int = NAME_LIMIT) -> str:
    """A name fit to echo in a message: no escape sequences or control characters, at most
    `limit` characters (longer ones are cut, with an ellipsis)."""
    text = clean_text(str(name))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def unknown_name(kind: str, name: str, known: Iterable[str]) -> InputError:
    """An error for an unknown catalog name that suggests the nearest known names."""
    known = list(known)
    name = clean_name(name)
    lowered = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.5)
    # Substring matches catch short queries such as "h100" against long ids.
    close += [k for k in lowered if name.lower() in k and k not in close][: 3 - len(close)]
    hint = f"; did you mean {', '.join(lowered[c] for c in close)}?" if close else ""
    return InputError(f"unknown {kind} {name!r}{hint} (see `llmroofline {kind_command(kind)} list`)")


def show(value: object, limit: int = 60) -> str:
    """repr of a value for a one-line message: arrays as lists, whitespace collapsed, shortened."""
    ndim = getattr(value, "ndim", 0)
    if hasattr(value, "tolist") and isinstance(ndim, int) and ndim > 0:  # an array (not the class np.float16)
        value = value.tolist()  # type: ignore[union-attr]
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def kind_command(kind: str) -> str:
    return {"device": "hardware", "model": "models"}.get(kind, kind)


def require_positive(name: str, value: float, *, upper: float | None = None) -> None:
    """Raise InputError unless 0 < value (<= upper)."""
    try:
        ok = value > 0
    except TypeError:
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not ok or value != value:  # value != value catches NaN
        raise InputError(f"{name} must be positive, got {value!r}")
    if upper is not None and value > upper:
        raise InputError(f"{name} = {value!r} is absurd (allowed up to {upper:g})")
