"""The outbox (发件箱): mail is queued in the transaction of its cause and delivered later.

- ``enqueue`` is an operation: it adds a row and flushes; the cause's transaction commits it, so a
  mail exists exactly when its cause does.
- ``deliver_due`` is the delivery job (called by ``tracker mail flush`` and the scheduler). Like a
  boundary it owns its commits: one per mail, so a crash loses at most the mail in flight (which
  is then sent again: delivery is at least once, never lost). Each row is claimed with
  ``SELECT … FOR UPDATE SKIP LOCKED`` plus a guarded ``UPDATE … WHERE attempts = :seen``, so two
  flushers never send the same mail: on PostgreSQL the row lock keeps the other flusher away
  while the mail is sent; on SQLite (which ignores FOR UPDATE) the guarded UPDATE takes the
  database's write lock, so the second flusher waits and then finds the row changed.
- Temporary failures (4xx, a dropped connection, a timeout) are retried with backoff (1, 2, 4 …
  minutes, at most 60) up to ``MAX_ATTEMPTS`` — about five days of trying, like an MTA's queue
  lifetime, so a relay that is down or refusing over a weekend or a long holiday loses nothing;
  permanent ones (5xx) fail at once. When the server cannot be reached, or drops the connection or
  stops answering in the middle of a mail, the batch stops (a slow server costs one timeout per
  flush, not one per mail) and every due mail is put back with its attempt counted.
- With no ``MAIL_SERVER`` (the embedded default) each message is written to ``MAIL_FOLDER`` as a
  ``.eml`` file.
- ``retry`` lets a province admin put a failed mail back in the queue (with an audit event).
"""

from __future__ import annotations

import datetime as dt
import os
import smtplib
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from sqlalchemy import Select, and_, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from tracker.audit import ActionError, record_event
from tracker.mail import AttachmentError, build_message, clean_recipients, content_type_of, new_message_id
from tracker.models import Membership, OutboxMail
from tracker.permissions import can_admin_province

PENDING, SENT, FAILED = "pending", "sent", "failed"  # OutboxMail.status
MAX_BACKOFF_MINUTES = 60
GIVE_UP_DAYS = 5  # a temporary failure fails the mail after about this long (Postfix's maximal_queue_lifetime)
# 1 + 2 + … + 32 minutes, then hourly: the attempts that fit in GIVE_UP_DAYS.
MAX_ATTEMPTS = 6 + 24 * GIVE_UP_DAYS
SMTP_TIMEOUT = 30  # seconds, for every socket operation of the SMTP conversation
SMTPS_PORT = 465  # MAIL_USE_TLS on this port means implicit TLS (SMTPS) instead of STARTTLS
MESSAGE_ID_DOMAIN = "zhenggai.tracker"
SUBJECT_MAX = 300  # OutboxMail.subject's length
ERROR_MAX = 2000
DEFER_CHUNK = 200


@dataclass(frozen=True)
class MailSettings:
    """The MAIL_* configuration keys, read once per flush."""

    server: str
    port: int
    use_tls: bool
    username: str
    password: str
    sender: str
    folder: Path
    attachment_root: Path | None
    timeout: float = SMTP_TIMEOUT

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MailSettings:
        """From ``app.config`` (or any mapping with the same keys)."""
        instance = config.get("INSTANCE_PATH")
        return cls(
            server=(config.get("MAIL_SERVER") or "").strip(),
            port=int(config.get("MAIL_PORT") or 25),
            use_tls=bool(config.get("MAIL_USE_TLS")),
            username=config.get("MAIL_USERNAME") or "",
            password=config.get("MAIL_PASSWORD") or "",
            sender=config.get("MAIL_FROM") or "zhenggai@localhost",
            folder=Path(config.get("MAIL_FOLDER") or Path(instance or ".") / "mail"),
            attachment_root=Path(instance) if instance else None,
            timeout=float(config.get("MAIL_TIMEOUT") or SMTP_TIMEOUT),
        )

    @property
    def implicit_tls(self) -> bool:
        return self.use_tls and self.port == SMTPS_PORT


@dataclass
class DeliveryReport:
    """What one flush did."""

    sent: int = 0
    deferred: int = 0  # 待重试: put back with a later next_attempt_at
    failed: int = 0  # failed permanently, or out of attempts
    server_error: str = ""  # set when the server (or the .eml folder) could not be reached
    folder: Path | None = None  # set when mail was written as .eml files

    @property
    def server_down(self) -> bool:
        return bool(self.server_error)

    def summary(self) -> str:
        return f"已发送{self.sent}封，待重试{self.deferred}封，失败{self.failed}封"

    def __bool__(self) -> bool:  # anything to log?
        return bool(self.sent or self.deferred or self.failed or self.server_error)

    def __str__(self) -> str:
        return self.summary() + (f"（邮件服务器不可用：{self.server_error}）" if self.server_error else "")


class ServerUnavailable(Exception):
    """The mail server (or the .eml folder) cannot be reached: stop the batch, lose nothing."""


@dataclass(frozen=True)
class Failure:
    """A classified delivery failure: the Chinese message to keep and whether to give up."""

    message: str
    permanent: bool


# --- queueing -----------------------------------------------------------------------------------


def enqueue(
    s: Session,
    recipients: Iterable[str | None],
    subject: str,
    text: str,
    html: str = "",
    *,
    now: dt.datetime,
    attachments: Iterable[Mapping[str, Any]] = (),
    domain: str = MESSAGE_ID_DOMAIN,
) -> OutboxMail | None:
    """Queue one mail in the caller's transaction (flush, no commit); None when no one has an address.

    ``attachments``: ``{"path", "name", "content_type"}``; a relative path is read under the
    instance folder when the mail is sent.
    """
    to = clean_recipients(recipients)
    if not to:
        return None
    mail = OutboxMail(
        message_id=new_message_id(domain), recipients=to, subject=_subject(subject), text=text or "",
        html=html or "", attachments=[_attachment(a) for a in attachments], status=PENDING, attempts=0,
        next_attempt_at=now, last_error="", created_at=now,
    )
    s.add(mail)
    s.flush()
    return mail


def _subject(subject: str) -> str:
    one_line = " ".join((subject or "").split())
    return one_line if len(one_line) <= SUBJECT_MAX else one_line[: SUBJECT_MAX - 1] + "…"


def _attachment(attachment: Mapping[str, Any]) -> dict[str, str]:
    path = str(attachment["path"])
    name = attachment.get("name") or Path(path).name
    return {"path": path, "name": name, "content_type": content_type_of(name, attachment.get("content_type"))}


# --- delivery -----------------------------------------------------------------------------------


def deliver_due(s: Session, now: dt.datetime, config: Mapping[str, Any], *, limit: int | None = None
                ) -> DeliveryReport:
    """Deliver the pending mails due at ``now``, oldest due first, committing after each one.

    ``config`` is ``app.config`` (the MAIL_* keys, MAIL_FOLDER, INSTANCE_PATH). ``limit`` caps the
    number of mails handled in this call (default: all that are due).
    """
    settings = MailSettings.from_config(config)
    report = DeliveryReport(folder=None if settings.server else settings.folder)
    transport = SmtpTransport(settings) if settings.server else FolderTransport(settings.folder)
    try:
        while limit is None or report.sent + report.deferred + report.failed < limit:
            mail = _claim(s, now)
            if mail is None:
                break
            if not _deliver_one(s, mail, now, settings, transport, report):
                _defer_all_due(s, now, report)
                break
    finally:
        transport.close()
    return report


def _due(now: dt.datetime) -> Select:
    return (select(OutboxMail)
            .where(OutboxMail.status == PENDING, OutboxMail.next_attempt_at <= now)
            .order_by(OutboxMail.next_attempt_at, OutboxMail.id)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True))


def _claim(s: Session, now: dt.datetime) -> OutboxMail | None:
    """Lock the next due mail and count the attempt; None when nothing (unlocked) is due."""
    while True:
        mail = s.scalars(_due(now).limit(1)).first()
        if mail is None:
            return None
        taken = s.execute(
            update(OutboxMail)
            .where(OutboxMail.id == mail.id, OutboxMail.status == PENDING, OutboxMail.attempts == mail.attempts)
            .values(attempts=OutboxMail.attempts + 1)
            .execution_options(synchronize_session=False)
        ).rowcount
        if taken == 1:
            set_committed_value(mail, "attempts", mail.attempts + 1)
            return mail
        s.rollback()  # another flusher took it between our read and our update: look again


def _deliver_one(s: Session, mail: OutboxMail, now: dt.datetime, settings: MailSettings,
                 transport: SmtpTransport | FolderTransport, report: DeliveryReport) -> bool:
    """Send one claimed mail and commit its outcome; False when the server cannot be reached."""
    try:
        message = build_message(mail, settings.sender, settings.attachment_root)
        refused = transport.send(message, mail, now)
    except ServerUnavailable as exc:
        report.server_error = str(exc)
        _record_failure(mail, now, Failure(str(exc), permanent=False), report)
        s.commit()
        return False
    except AttachmentError as exc:
        _record_failure(mail, now, Failure(str(exc), permanent=True), report)
    except (OSError, ValueError) as exc:  # smtplib's exceptions are OSErrors
        _record_failure(mail, now, classify(exc), report)
    else:
        mail.status, mail.sent_at = SENT, now
        mail.last_error = _clip(_refused_text("部分收件人被拒收", refused)) if refused else ""
        report.sent += 1
    s.commit()
    return True


def _record_failure(mail: OutboxMail, now: dt.datetime, failure: Failure, report: DeliveryReport) -> None:
    """Back off, or give up when the failure is permanent or the attempts are spent."""
    mail.last_error = _clip(failure.message)
    if failure.permanent or mail.attempts >= MAX_ATTEMPTS:
        mail.status = FAILED
        report.failed += 1
    else:
        mail.next_attempt_at = now + backoff(mail.attempts)
        report.deferred += 1


def _defer_all_due(s: Session, now: dt.datetime, report: DeliveryReport) -> None:
    """The server is down: count an attempt on every other due mail and push it back."""
    while rows := s.scalars(_due(now).limit(DEFER_CHUNK)).all():
        for mail in rows:
            mail.attempts += 1
            _record_failure(mail, now, Failure(report.server_error, permanent=False), report)
        s.commit()


def backoff(attempts: int) -> dt.timedelta:
    """Wait after the n-th failed attempt: 1, 2, 4, 8 … minutes, at most 60."""
    return dt.timedelta(minutes=min(2 ** max(attempts - 1, 0), MAX_BACKOFF_MINUTES))


def classify(exc: BaseException) -> Failure:
    """Temporary (retry later) or permanent (give up), with the server's own words."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        permanent = min((code for code, _ in exc.recipients.values()), default=0) >= 500
        return Failure(_refused_text("收件人被拒收" if permanent else "收件人暂时被拒收", exc.recipients), permanent)
    if isinstance(exc, smtplib.SMTPResponseException):
        if exc.smtp_code >= 500:
            return Failure(f"邮件服务器拒收（{_response(exc)}）", permanent=True)
        return Failure(f"邮件服务器暂时拒绝（{_response(exc)}）", permanent=False)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return Failure(f"邮件服务器断开了连接：{_describe(exc)}", permanent=False)
    if isinstance(exc, smtplib.SMTPException | ValueError):  # e.g. an address the server cannot take
        return Failure(f"邮件无法发送：{_describe(exc)}", permanent=True)
    return Failure(f"与邮件服务器通信失败：{_describe(exc)}", permanent=False)


def _response(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
    return f"{exc.smtp_code} {text}".strip()


def _refused_text(prefix: str, refused: Mapping[str, tuple[int, bytes | str]]) -> str:
    parts = [f"{address}（{code} {_decode(text)}）" for address, (code, text) in refused.items()]
    return f"{prefix}：" + "；".join(parts)


def _decode(text: bytes | str) -> str:
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return _response(exc)
    return str(exc) or type(exc).__name__


def _clip(text: str) -> str:
    return text if len(text) <= ERROR_MAX else text[: ERROR_MAX - 1] + "…"


# --- transports ---------------------------------------------------------------------------------


class SmtpTransport:
    """One SMTP connection per flush, opened at the first mail and reused; reopened after a drop."""

    def __init__(self, settings: MailSettings):
        self.settings = settings
        self.envelope_from = parseaddr(settings.sender)[1] or settings.sender
        self.conn: smtplib.SMTP | None = None

    def send(self, message: EmailMessage, mail: OutboxMail, now: dt.datetime) -> dict[str, tuple[int, bytes]]:
        """Hand the message over; returns the recipients refused while others were accepted."""
        if self.conn is None:
            self.conn = self._connect()
        try:
            return self.conn.send_message(message, from_addr=self.envelope_from, to_addrs=list(mail.recipients))
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException) as exc:
            if getattr(exc, "smtp_code", 0) == 421:  # the server is closing the connection
                self._drop()
            raise
        except (smtplib.SMTPServerDisconnected, TimeoutError, ConnectionError) as exc:
            # Dropped or timed out half way: the server is in trouble, not this mail. Stop the batch.
            self._drop()
            raise ServerUnavailable(classify(exc).message) from exc
        except OSError:  # any other failure: the conversation's state is unknown
            self._drop()
            raise

    def _connect(self) -> smtplib.SMTP:
        st = self.settings
        where = f"{st.server}:{st.port}"
        try:
            if st.implicit_tls:
                conn = smtplib.SMTP_SSL(st.server, st.port, timeout=st.timeout, context=ssl.create_default_context())
            else:
                conn = smtplib.SMTP(st.server, st.port, timeout=st.timeout)
        except OSError as exc:
            raise ServerUnavailable(f"无法连接邮件服务器{where}：{_describe(exc)}") from exc
        try:
            if st.use_tls and not st.implicit_tls:
                conn.starttls(context=ssl.create_default_context())
            if st.username:
                conn.login(st.username, st.password)
        except OSError as exc:
            conn.close()
            raise ServerUnavailable(f"邮件服务器{where}握手或登录失败：{_describe(exc)}") from exc
        return conn

    def _drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.quit()
            except OSError:
                self.conn.close()
            self.conn = None


class FolderTransport:
    """The embedded default: each message becomes ``<folder>/<UTC timestamp>-<id>.eml``."""

    def __init__(self, folder: Path):
        self.folder = folder

    def send(self, message: EmailMessage, mail: OutboxMail, now: dt.datetime) -> dict[str, tuple[int, bytes]]:
        stamp = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        target = self.folder / f"{stamp}-{mail.id}.eml"
        partial = target.with_suffix(".eml.part")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(message.as_bytes(policy=SMTP_POLICY))
            os.replace(partial, target)  # readers never see half a file
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise ServerUnavailable(f"无法写入邮件目录{self.folder}：{_describe(exc)}") from exc
        return {}

    def close(self) -> None:
        pass


# --- administration -----------------------------------------------------------------------------


def retry(s: Session, actor: Membership | None, now: dt.datetime, mail: OutboxMail) -> None:
    """重发: a failed mail goes back in the queue with its attempts reset (province admins)."""
    if not can_admin_province(actor):
        raise ActionError("只有省级管理员可以重发邮件")
    before = {"attempts": mail.attempts, "last_error": mail.last_error}
    changed = s.execute(
        update(OutboxMail)
        .where(OutboxMail.id == mail.id, OutboxMail.status == FAILED)
        .values(status=PENDING, attempts=0, next_attempt_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        raise ActionError("该邮件已不在发送失败状态，无需重试")
    for key, value in (("status", PENDING), ("attempts", 0), ("next_attempt_at", now)):
        set_committed_value(mail, key, value)
    record_event(s, actor, now, "mail_retry", entity="outbox", entity_id=mail.id, from_state=FAILED,
                 to_state=PENDING, data={"subject": mail.subject, "recipients": mail.recipients, **before})
    s.flush()


def failed_mails(s: Session, limit: int = 200) -> list[OutboxMail]:
    """Mails that gave up, newest first (shown to admins)."""
    return list(s.scalars(select(OutboxMail).where(OutboxMail.status == FAILED)
                          .order_by(OutboxMail.id.desc()).limit(limit)))


def retrying_mails(s: Session, limit: int = 200) -> list[OutboxMail]:
    """Pending mails that have failed at least once, next attempt first."""
    return list(s.scalars(select(OutboxMail).where(OutboxMail.status == PENDING, OutboxMail.attempts > 0)
                          .order_by(OutboxMail.next_attempt_at, OutboxMail.id).limit(limit)))


def queue_counts(s: Session) -> dict[str, int]:
    """待发送 / 其中待重试 / 发送失败 (sent mails are not counted: there are many)."""
    def count(*conditions) -> int:
        return s.scalar(select(func.count()).select_from(OutboxMail).where(and_(*conditions))) or 0
    return {"pending": count(OutboxMail.status == PENDING),
            "retrying": count(OutboxMail.status == PENDING, OutboxMail.attempts > 0),
            "failed": count(OutboxMail.status == FAILED)}
