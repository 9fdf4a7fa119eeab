"""Where a key sits in a TOML file, for error messages (tomllib keeps no positions)."""

from __future__ import annotations

import re


def line_of(text: str, loc: list[str]) -> int | None:
    """Line (1-based) of ``loc``'s leaf key inside its ``[table]`` or n-th ``[[array]]`` entry.

    ``loc`` is a pydantic error location as strings, e.g. ``["budget", "2", "amount_usd"]``.
    Returns the entry's header line when the leaf key is absent (a missing required key).
    """
    lines = text.splitlines()
    lo, hi = 0, len(lines)
    if len(loc) > 1:
        table = loc[0]
        nth = int(loc[1]) if len(loc) > 2 and loc[1].isdigit() else 0
        header = re.compile(rf"^\s*\[\[?\s*{re.escape(table)}\s*\]\]?\s*(#.*)?$")
        starts = [i for i, ln in enumerate(lines) if header.match(ln)]
        if nth >= len(starts):
            return None
        lo = starts[nth] + 1
        # The entry runs to the next header that is not one of its own sub-tables ([budget.select]).
        own = re.compile(rf"^\s*\[\s*{re.escape(table)}\.")
        nxt = [i for i, ln in enumerate(lines[lo:], lo) if re.match(r"^\s*\[", ln) and not own.match(ln)]
        hi = nxt[0] if nxt else len(lines)
    leaf = re.compile(rf"^\s*{re.escape(loc[-1])}\s*=")
    for i in range(lo, hi):
        if leaf.match(lines[i]):
            return i + 1
    return lo if len(loc) > 1 else None
