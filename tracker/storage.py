"""Evidence files on disk: random names outside ``static/``, hashed while written.

The view stores the upload first and hands a ``StoredFile`` to the operation; if the operation is
refused, the view discards the file again, so nothing is half-saved.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CHUNK = 64 * 1024


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


def store(folder: Path, stream: BinaryIO, *, kind: str, filename: str, content_type: str) -> StoredFile:
    """Write ``stream`` under a random name in ``folder`` and hash it on the way."""
    folder.mkdir(parents=True, exist_ok=True)
    stored_name = secrets.token_hex(16)
    digest = hashlib.sha256()
    size = 0
    target = folder / stored_name
    try:
        with open(target, "xb") as out:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return StoredFile(kind, clean_filename(filename), stored_name, size, digest.hexdigest(), content_type)


def discard(folder: Path, files: list[StoredFile]) -> None:
    for f in files:
        (folder / f.stored_name).unlink(missing_ok=True)


def path_of(folder: Path, stored_name: str) -> Path:
    """The file behind a stored name; names are ours (hex), never a user's path."""
    if not stored_name.isalnum():
        raise ValueError("bad stored name")
    return folder / stored_name


# Content types sent as themselves on download; anything else goes as application/octet-stream.
SAFE_TYPES = {"image/jpeg", "image/png", "application/pdf"}


def served_type(content_type: str) -> str:
    return content_type if content_type in SAFE_TYPES else "application/octet-stream"


def store_uploads(folder: Path, uploads: Iterable, kind: str) -> list[StoredFile]:
    """Store each uploaded file (werkzeug ``FileStorage``) that has a name, as evidence of ``kind``."""
    return [store(folder, upload.stream, kind=kind, filename=upload.filename,
                  content_type=upload.mimetype or "application/octet-stream")
            for upload in uploads if upload and upload.filename]
