"""Mail message builder: an outbox row in, an ``EmailMessage`` out. Pure: it sends nothing.

Headers with Chinese text (Subject, display names) are encoded by the ``email`` package's default
policy (RFC 2047); Chinese attachment names are written as RFC 2231 ``filename*=utf-8''…``
parameters. The Message-ID and Date come from the row, so every retry sends the same message.
"""

from __future__ import annotations

import datetime as dt
import mimetypes
from collections.abc import Iterable, Mapping
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any, Protocol

from tracker.timeutil import local_datetime

DEFAULT_CONTENT_TYPE = "application/octet-stream"


class MailLike(Protocol):
    """What the builder reads: ``models.OutboxMail`` or anything shaped like it."""

    message_id: str
    recipients: list[str]
    subject: str
    text: str
    html: str
    attachments: list[dict[str, Any]]
    created_at: dt.datetime


class AttachmentError(Exception):
    """An attachment's file cannot be read (gone, or not readable): the mail cannot be built."""

    def __init__(self, name: str, path: Path):
        super().__init__(f"附件无法读取：{name}（{path}）")
        self.name = name
        self.path = path


def new_message_id(domain: str) -> str:
    """A new globally unique Message-ID, ``<…@domain>``, fixed when the mail is queued."""
    return make_msgid(domain=domain)


def build_message(mail: MailLike, sender: str, attachment_root: Path | None) -> EmailMessage:
    """The message for one outbox row: text part, HTML alternative when given, attachments.

    Relative attachment paths are read under ``attachment_root``; absolute ones as they are.
    Raises ``AttachmentError`` when a file cannot be read.
    """
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(mail.recipients)
    msg["Subject"] = mail.subject
    msg["Date"] = format_datetime(local_datetime(mail.created_at))
    msg["Message-ID"] = mail.message_id
    # RFC 3834: machine-made mail; well-behaved auto-responders do not answer it.
    msg["Auto-Submitted"] = "auto-generated"
    # base64 keeps the Chinese body 7-bit clean for relays that do not offer 8BITMIME.
    msg.set_content(mail.text or "", cte="base64")
    if mail.html:
        msg.add_alternative(mail.html, subtype="html", cte="base64")
    for attachment in mail.attachments or ():
        _attach(msg, attachment, attachment_root)
    return msg


def _attach(msg: EmailMessage, attachment: Mapping[str, Any], root: Path | None) -> None:
    path = Path(attachment["path"])
    if root is not None and not path.is_absolute():
        path = root / path
    name = attachment.get("name") or path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AttachmentError(name, path) from exc
    maintype, _, subtype = content_type_of(name, attachment.get("content_type")).partition("/")
    msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)


def content_type_of(name: str, given: str | None = None) -> str:
    """``given`` when it looks like a MIME type, else a guess from the file name."""
    if given and "/" in given:
        return given.split(";", 1)[0].strip().lower()
    return mimetypes.guess_type(name)[0] or DEFAULT_CONTENT_TYPE


def clean_recipients(recipients: Iterable[str | None]) -> list[str]:
    """Addresses stripped, blanks dropped, duplicates (ignoring case) dropped, order kept."""
    seen: set[str] = set()
    cleaned = []
    for address in recipients:
        address = (address or "").strip()
        if address and address.lower() not in seen:
            seen.add(address.lower())
            cleaned.append(address)
    return cleaned
