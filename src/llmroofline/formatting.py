"""Numbers as table text, shared by the terminal tables and the HTML reports."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np


def cell_text(v: Any, *, false: str = "no") -> str:
    """A table cell: thousands separators for large numbers, no decimals for whole ones (a batch
    of 32, 24 GB), three significant digits for small ones, a dash for non-finite values; `false`
    is how a False reads."""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else false
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if not math.isfinite(f):
            return "-"
        if f == 0:
            return "0"
        if abs(f) >= 100 or (f.is_integer() and abs(f) < 1e15):
            return f"{f:,.0f}"
        if abs(f) >= 1:
            return f"{f:.2f}"
        return f"{f:.3g}"
    return "" if v is None else str(v)


def money(v: Any) -> str:
    """US dollars with two decimals (0.40, 1.50); a dash when unknown."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "-"
    return f"{f:,.2f}" if math.isfinite(f) else "-"


def is_prose(v: Any) -> bool:
    """Text that reads as words (left-aligned in a table), not as a number ("1,234", "+12%", "-")."""
    return isinstance(v, str) and not re.fullmatch(r"\s*[-+±$]?[\d,.]*\s*[%×]?\s*", v)
