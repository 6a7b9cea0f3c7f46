"""Evidence files on disk: random names outside ``static/``, hashed while written.

The view stores the upload first and hands a ``StoredFile`` to the operation; if the operation is
refused, the view discards the file again, so nothing is half-saved. A file that cannot be written (the
disk full, a file-size limit) raises ``StorageError`` with the reason in Chinese, and leaves no file
behind — neither its own partial one nor the earlier files of the same upload.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import os
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tracker.i18n import N_, Msg

CHUNK = 64 * 1024
ORPHAN_GRACE = dt.timedelta(days=1)  # a stored file no row refers to is swept once this old
SWEEP_CHUNK = 500  # names asked about per query
STORED_NAME = re.compile(r"[0-9a-f]{32}")  # secrets.token_hex(16)


# The disk (or the folder's quota) is full, or the process may not write a file this large.
NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
NO_SPACE_MESSAGE = N_("服务器存储空间不足，文件未能保存，本次提交未生效。请联系管理员，稍后重新提交")
WRITE_FAILED_MESSAGE = N_("服务器写入文件失败，文件未能保存，本次提交未生效。请稍后重新提交")


class StorageError(Exception):
    """An upload could not be written. ``msg`` (a Chinese msgid) says why; ``status`` is the HTTP answer:
    507 Insufficient Storage when the disk is full, 500 for any other write failure."""

    def __init__(self, cause: OSError) -> None:
        self.no_space = cause.errno in NO_SPACE
        self.msg = Msg(NO_SPACE_MESSAGE if self.no_space else WRITE_FAILED_MESSAGE)
        self.status = 507 if self.no_space else 500
        super().__init__(self.msg)


@dataclass(frozen=True)
class StoredFile:
    kind: str  # 整改前/整改后/文件/监测报告, see models.EVIDENCE_KINDS
    original_name: str
    stored_name: str
    size: int
    sha256: str
    content_type: str


def clean_filename(name: str) -> str:
    """The name to show: Chinese kept, any path and control characters removed."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip().lstrip(".")
    return base[:200] or "file"


def store(folder: Path, stream: BinaryIO, *, kind: str, filename: str, content_type: str = "") -> StoredFile:
    """Write ``stream`` under a random name in ``folder`` and hash it on the way. The type is read from the
    first bytes (``sniff``); ``content_type``, what the sender claimed, is never trusted."""
    stored_name = secrets.token_hex(16)
    digest = hashlib.sha256()
    size = 0
    head = b""
    target = folder / stored_name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(target, "xb") as out:
            while chunk := stream.read(CHUNK):
                if len(head) < SNIFF_BYTES:
                    head += chunk[:SNIFF_BYTES - len(head)]
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:  # the disk full (ENOSPC, at write, flush, fsync or close), a size limit (EFBIG)…
        target.unlink(missing_ok=True)
        raise StorageError(exc) from exc
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return StoredFile(kind, clean_filename(filename), stored_name, size, digest.hexdigest(), sniff(head))


def discard(folder: Path, files: list[StoredFile]) -> None:
    for f in files:
        (folder / f.stored_name).unlink(missing_ok=True)


def path_of(folder: Path, stored_name: str) -> Path:
    """The file behind a stored name; names are ours (hex), never a user's path."""
    if not STORED_NAME.fullmatch(stored_name):
        raise ValueError("bad stored name")
    return folder / stored_name


# Content types sent as themselves on download, each known by its first bytes (magic numbers); anything else
# — HTML, SVG, scripts, executables, whatever the name or the browser said — is application/octet-stream.
MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"%PDF-", "application/pdf"))
SAFE_TYPES = {kind for _magic, kind in MAGIC}
OCTET_STREAM = "application/octet-stream"
SNIFF_BYTES = 16


def sniff(head: bytes) -> str:
    """The type of a file from its first bytes: one of ``SAFE_TYPES``, else application/octet-stream."""
    return next((kind for magic, kind in MAGIC if head.startswith(magic)), OCTET_STREAM)


def served_type(content_type: str, path: Path | None = None) -> str:
    """The Content-Type of a download: the stored type when it is safe and, given the file, its bytes agree."""
    if content_type not in SAFE_TYPES:
        return OCTET_STREAM
    if path is not None:
        with open(path, "rb") as fh:
            if sniff(fh.read(SNIFF_BYTES)) != content_type:
                return OCTET_STREAM
    return content_type


def sweep(folder: Path, now: dt.datetime, referenced: Callable[[list[str]], set[str]],
          grace: dt.timedelta = ORPHAN_GRACE) -> int:
    """Delete the stored files no row refers to, once older than ``grace`` (a younger one may belong to a
    request still running): what a process killed between storing an upload and committing leaves behind.
    ``referenced(names)`` answers which of ``names`` some row refers to. Returns the number deleted."""
    if not folder.is_dir():
        return 0
    cutoff = (now - grace).timestamp()
    old = [path for path in folder.iterdir()
           if STORED_NAME.fullmatch(path.name) and path.is_file() and path.stat().st_mtime < cutoff]
    removed = 0
    for start in range(0, len(old), SWEEP_CHUNK):
        chunk = old[start:start + SWEEP_CHUNK]
        kept = referenced([path.name for path in chunk])
        for path in chunk:
            if path.name not in kept:
                path.unlink(missing_ok=True)
                removed += 1
    return removed


def store_uploads(folder: Path, uploads: Iterable, kind: str) -> list[StoredFile]:
    """Store each uploaded file (werkzeug ``FileStorage``) that has a name, as evidence of ``kind``; all or
    none: when one cannot be written, the ones already stored are discarded before the error goes on."""
    stored: list[StoredFile] = []
    try:
        for upload in uploads:
            if upload and upload.filename:
                stored.append(store(folder, upload.stream, kind=kind, filename=upload.filename))
    except BaseException:
        discard(folder, stored)
        raise
    return stored
