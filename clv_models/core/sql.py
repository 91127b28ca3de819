"""Quoting for the SQL text that cannot take bound parameters.

Values go to DuckDB and SQLite as bound parameters (``?``) wherever the statement allows it.
A few places cannot: file paths in ``COPY ... TO``, ``ATTACH`` and ``SET`` values, and
identifiers (table and column names). Those are built with these two functions and nothing
else, so there is one reviewed way to put a name or a path into SQL text.
"""

from __future__ import annotations

import os
from collections.abc import Collection


def literal(value: str | os.PathLike[str]) -> str:
    """``value`` as a SQL string literal: in single quotes, each quote doubled.

    Standard SQL, as DuckDB and SQLite read it (a backslash is an ordinary character). A NUL
    character is refused: no file name or setting holds one, and drivers cut strings at it.
    """
    text = os.fspath(value)
    if "\x00" in text:
        raise ValueError(f"a NUL character in a SQL literal: {text!r}")
    return "'" + text.replace("'", "''") + "'"


def identifier(name: str, allowed: Collection[str] | None = None) -> str:
    """``name`` as a quoted SQL identifier (double quotes, each one doubled).

    With ``allowed``, ``name`` must be one of them (an allow-list of known tables or
    columns): anything else raises ``ValueError`` before any SQL is built.
    """
    if allowed is not None and name not in allowed:
        raise ValueError(f"unexpected SQL identifier {name!r}; expected one of "
                         f"{sorted(allowed)}")
    if "\x00" in name or not name:
        raise ValueError(f"not a valid SQL identifier: {name!r}")
    return '"' + name.replace('"', '""') + '"'
