"""The first line of a CSV or text file that cannot be read, named: file, line, what is wrong.

Readers stop on a malformed file, but not always with the line: on a small CSV file DuckDB's
message is about its dialect sniffer ("not possible to automatically detect the CSV parsing
dialect"), on a file that is not UTF-8 it may quote another line than the one it names, and
pandas counts rows from 0. When reading a raw or imported file fails, these checks read it once
more, line by line, and say where the first problem is. They run only after a failure, so a
clean file is read once, by the reader that needs it.
"""

from __future__ import annotations

import csv
from pathlib import Path

_EXAMPLE_WIDTH = 80  # characters of a bad line quoted in a message


def first_non_utf8(path: Path) -> tuple[int, int, bytes] | None:
    """``(line, byte, bytes)`` of the first byte sequence that is not UTF-8, or None.

    ``line`` and ``byte`` (the position in the line) count from 1. A UTF-8 character never
    spans a line break, so each line is decoded on its own: the file is streamed, never held.
    """
    with Path(path).open("rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return number, exc.start + 1, raw[exc.start:exc.end]
    return None


def non_utf8_message(path: Path) -> str | None:
    """``'<path>: line N, byte B is not UTF-8 (b'\\xe9')'``, or None for a UTF-8 file."""
    found = first_non_utf8(path)
    if found is None:
        return None
    line, byte, value = found
    return f"{path}: line {line}, byte {byte} is not UTF-8 ({value!r})"


def first_problem(path: Path) -> str | None:
    """The first reason the CSV file at ``path`` cannot be read as the raw contract's CSV.

    The contract's dialect (RFC 4180): comma-separated, ``"`` quotes fields and is doubled
    inside them, a header line, UTF-8. Returns ``'<path>: line N: ...'`` naming a line that is
    not UTF-8, an empty file, a line whose field count differs from the header's, or a quote
    that is not closed (the line where its field starts); None when the file reads cleanly.
    Blank lines are skipped, as DuckDB does.
    """
    path = Path(path)
    message = non_utf8_message(path)
    if message:
        return message
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f, strict=True)
        try:
            header = next(reader, None)
            if header is None:
                return f"{path}: empty file (no header line)"
            start = reader.line_num + 1
            for row in reader:
                if row and len(row) != len(header):
                    shown = ",".join(row)[:_EXAMPLE_WIDTH]
                    return (f"{path}: line {start}: {len(row)} field(s) where the header has "
                            f"{len(header)} ({','.join(header)}): {shown!r}")
                start = reader.line_num + 1
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                return (f"{path}: line {start}: a quoted field starts here and is never closed "
                        "(a \" inside a field must be doubled: \"\")")
            return f"{path}: line {start}: {exc} (a \" inside a field must be doubled: \"\")"
    return None
