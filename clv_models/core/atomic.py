"""Writing artefacts so that a crash at any moment leaves the previous version or the new one.

A file written in place is torn when the process dies half-way (a truncated JSON, weights from
the new model beside the metadata of the old one). Here every artefact is written complete
under a temporary name in the same folder, flushed to disk, and then made visible with one
atomic step on POSIX file systems:

* a file: :func:`os.replace` of the temporary file over the final name (:func:`write_text`);
* a folder of files (a saved model): the folder is written under a new name and a symbolic
  link at the final path is swapped to it (:func:`publish_folder`); a folder cannot be renamed
  over a non-empty one, and two renames (old aside, new in) leave a moment with neither.

Readers follow the path as before (``models/xgboost/metadata.json`` resolves through the link);
one that resolved the link keeps reading the files it found, since a published folder is never
changed, only pruned once :data:`KEEP_VERSIONS` newer ones exist.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
import uuid
from pathlib import Path

#: Published folders kept per link: the current one and the ones before it.
KEEP_VERSIONS = 3
#: Temporary folders older than this were left by a writer that died: removed.
STALE_SECONDS = 3600
_TMP = ".tmp"


def fsync(path: Path, directory: bool = False) -> None:
    """Flush a file (or a folder's entries) to disk, so a rename never publishes lost data."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` atomically: a temporary file, flushed, renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}{_TMP}"
    try:
        staged.write_text(text)
        fsync(staged)
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)
    fsync(path.parent, directory=True)


def staging_folder(link: Path) -> Path:
    """A new, empty temporary folder beside ``link`` to write a version into; publish it with
    :func:`publish_folder`. Removes temporary folders left by writers that died."""
    link.parent.mkdir(parents=True, exist_ok=True)
    for old in link.parent.glob(f".{link.name}.*{_TMP}"):
        if time.time() - old.stat().st_mtime > STALE_SECONDS:
            shutil.rmtree(old, ignore_errors=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    staged = link.parent / f".{link.name}.{stamp}-{uuid.uuid4().hex[:6]}{_TMP}"
    staged.mkdir()
    return staged


def publish_folder(staged: Path, link: Path) -> Path:
    """Make the complete folder ``staged`` (from :func:`staging_folder`) what ``link`` shows.

    Flushes the folder's files, renames it to its final hidden name beside ``link`` and swaps
    the symbolic link ``link`` to it (a new link renamed over the old one). A real folder at
    ``link`` (saved before links were used) is moved aside first: the only moment the path is
    missing, once. Prunes published folders beyond :data:`KEEP_VERSIONS`. Returns the folder.
    """
    for path in staged.iterdir():
        fsync(path)
    fsync(staged, directory=True)
    final = staged.with_name(staged.name[: -len(_TMP)])
    os.replace(staged, final)
    staged_link = link.with_name(f".{link.name}.{uuid.uuid4().hex[:8]}.link{_TMP}")
    os.symlink(final.name, staged_link)
    if link.is_dir() and not link.is_symlink():
        link.rename(link.with_name(f"{final.name}-unversioned"))
    os.replace(staged_link, link)
    fsync(link.parent, directory=True)
    _prune(link, final)
    return final


def _prune(link: Path, current: Path) -> None:
    versions = sorted(p for p in link.parent.glob(f".{link.name}.*")
                      if p.is_dir() and not p.is_symlink() and not p.name.endswith(_TMP))
    for old in versions[:-KEEP_VERSIONS]:
        if old != current:
            shutil.rmtree(old, ignore_errors=True)
