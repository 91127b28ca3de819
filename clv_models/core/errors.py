"""The product's exceptions: one base for every error a user can fix.

An error derived from :class:`CLVError` is *expected*: bad input, a missing step, a locked file.
The ``clv`` command prints its message (and hint) on one line, without the class name or a
traceback, and exits with status 1. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import re
from pathlib import Path


class CLVError(Exception):
    """Base of the product's expected errors.

    Parameters
    ----------
    message
        What went wrong, naming the file, line, column or setting where there is one.
    hint
        What to do about it, e.g. the command to run first.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        message = super().__str__()
        return f"{message}\nhint: {self.hint}" if self.hint else message


class ConfigError(CLVError, ValueError):
    """A configuration value is missing, unknown or out of range."""


class DataError(CLVError, ValueError):
    """Input data is missing or unusable; the message names the file and what is wrong."""


class NotBuiltError(CLVError, FileNotFoundError):
    """A stage's input does not exist yet; the hint names the command that makes it."""


class WarehouseLockedError(CLVError, OSError):
    """Another process holds the DuckDB file's write lock (DuckDB allows one at a time)."""


_LOCK = re.compile(r"Could not set lock on file \"(?P<path>[^\"]+)\".*?PID (?P<pid>\d+)", re.S)


def lock_error(exc: BaseException) -> WarehouseLockedError | None:
    """A :class:`WarehouseLockedError` naming the file and the process that holds its lock,
    when ``exc`` is DuckDB's lock conflict; ``None`` for any other error."""
    text = str(exc)
    if "Could not set lock" not in text:
        return None
    m = _LOCK.search(text)
    path = m.group("path") if m else "the DuckDB file"
    holder = "another process"
    if m:
        pid = m.group("pid")
        holder = f"process {pid}"
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").strip()
            if cmdline:
                holder += f" ({cmdline.decode(errors='replace')[:200]})"
        except OSError:
            pass
        if int(pid) == os.getpid():
            holder += ", this process"
    return WarehouseLockedError(
        f"{path} is locked by {holder}: DuckDB lets one process at a time open a database "
        "file that is being written",
        hint="wait for that process to finish (BI tools read data/bi/clv_bi.duckdb, never the "
             "warehouse file)")
