"""The outbox against a real SMTP server on loopback (aiosmtpd): delivery, retries with backoff, a server
that is down, permanent refusals and the admin's 重试, the .eml fallback, attachments with Chinese names.

Time is passed in as ``now``: retries are driven by advancing it past ``next_attempt_at``, never by sleeping.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import socket
import threading
from email.message import EmailMessage
from email.policy import default as default_policy
from types import SimpleNamespace

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from tests.conftest import NOW, csrf_token, login
from tracker import outbox
from tracker.mail import build_message, new_message_id
from tracker.models import Event, OutboxMail

SUBJECT = "【督办提醒】双马填埋场渗滤液处理不到位——请于5个工作日内报送整改方案"
TEXT = "雨湖区人民政府：\n你单位承办的整改任务已逾期，请尽快报送整改进展。\n"
HTML = "<p>雨湖区人民政府：</p><p>你单位承办的整改任务<strong>已逾期</strong>。</p>"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Sink:
    """An aiosmtpd handler that keeps what it accepts and answers scripted refusals first.

    ``refuse["RCPT"]`` / ``refuse["DATA"]``: replies given to the next commands of that kind, one each.
    """

    def __init__(self) -> None:
        self.received: list[tuple[list[str], EmailMessage, bytes]] = []
        self.refuse: dict[str, list[str]] = {"RCPT": [], "DATA": []}
        self.refuse_addresses: dict[str, str] = {}  # address -> reply, every time
        self.delay = 0.0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse["RCPT"]:
            return self.refuse["RCPT"].pop(0)
        if address in self.refuse_addresses:
            return self.refuse_addresses[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.refuse["DATA"]:
            return self.refuse["DATA"].pop(0)
        raw = envelope.original_content or envelope.content
        self.received.append((list(envelope.rcpt_tos), email.message_from_bytes(raw, policy=default_policy), raw))
        return "250 Message accepted for delivery"

    def message_ids(self) -> list[str]:
        return [msg["Message-ID"] for _, msg, _ in self.received]


def start_server(port: int, sink: Sink) -> Controller:
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    return controller


@pytest.fixture
def smtp(app):
    """A real SMTP server on 127.0.0.1, configured as the app's MAIL_SERVER."""
    sink, port = Sink(), free_port()
    controller = start_server(port, sink)
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_FROM="湖南省整改台账 <zhenggai@hn.example.cn>")
    yield sink
    controller.stop()


def queue(s, n=1, recipients=("unit_yh@example.cn",), now=NOW, **kw) -> list[OutboxMail]:
    mails = [outbox.enqueue(s, list(recipients), kw.pop("subject", f"{SUBJECT}（{i + 1}）"), TEXT, HTML, now=now,
                            **kw) for i in range(n)]
    s.commit()
    return mails


def reread(s, mails: list[OutboxMail]) -> list[OutboxMail]:
    s.expire_all()
    return [s.get(OutboxMail, m.id) for m in mails]


def test_mails_arrive_with_their_recipients_chinese_subject_text_and_html(app, s, smtp):
    [mail] = queue(s, recipients=["unit_yh@example.cn", " sup_xt@example.cn ", "", None, "UNIT_YH@example.cn"],
                   subject=SUBJECT)
    assert mail.recipients == ["unit_yh@example.cn", "sup_xt@example.cn"]

    report = outbox.deliver_due(s, NOW, app.config)

    assert (report.sent, report.deferred, report.failed, report.server_down) == (1, 0, 0, False)
    [(rcpt_tos, msg, raw)] = smtp.received
    assert rcpt_tos == ["unit_yh@example.cn", "sup_xt@example.cn"]
    assert msg["To"] == "unit_yh@example.cn, sup_xt@example.cn"
    assert msg["Subject"] == SUBJECT and b"=?utf-8?" in raw  # encoded on the wire, decodes back
    assert msg["From"].addresses[0].display_name == "湖南省整改台账"
    assert msg["Message-ID"] == mail.message_id and msg["Date"].datetime.utcoffset() == dt.timedelta(hours=8)
    assert msg.get_body(("plain",)).get_content() == TEXT
    assert msg.get_body(("html",)).get_content().strip() == HTML
    [row] = reread(s, [mail])
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, "")
    assert row.sent_at is not None


def test_nothing_is_queued_for_no_recipients(s):
    assert outbox.enqueue(s, ["", "  ", None], SUBJECT, TEXT, now=NOW) is None
    assert s.scalars(select(OutboxMail)).all() == []


@pytest.mark.parametrize("command", ["RCPT", "DATA"])
def test_a_server_answering_451_gets_each_mail_exactly_once_after_retries(app, s, smtp, command):
    smtp.refuse[command] = ["451 4.3.0 Mailbox busy, try again later"] * 3
    first, second = queue(s, 2)

    report = outbox.deliver_due(s, NOW, app.config)  # both refused: back in 1 minute
    assert (report.sent, report.deferred, report.failed) == (0, 2, 0)
    first, second = reread(s, [first, second])
    assert [(m.status, m.attempts) for m in (first, second)] == [("pending", 1), ("pending", 1)]
    assert "暂时" in first.last_error and "451" in first.last_error and "try again later" in first.last_error
    assert _utc(first.next_attempt_at) == NOW + dt.timedelta(minutes=1)

    assert not outbox.deliver_due(s, NOW + dt.timedelta(seconds=59), app.config)  # not due yet: nothing tried
    report = outbox.deliver_due(s, NOW + dt.timedelta(minutes=1), app.config)  # first refused again, second goes
    assert (report.sent, report.deferred) == (1, 1)
    first, second = reread(s, [first, second])
    assert (first.attempts, _utc(first.next_attempt_at)) == (2, NOW + dt.timedelta(minutes=3))  # waits 2 minutes
    assert second.status == "sent"

    report = outbox.deliver_due(s, NOW + dt.timedelta(minutes=3), app.config)
    assert report.sent == 1 and outbox.deliver_due(s, NOW + dt.timedelta(hours=2), app.config).sent == 0
    assert sorted(smtp.message_ids()) == sorted([first.message_id, second.message_id])  # each once, same id
    assert [m.status for m in reread(s, [first, second])] == ["sent", "sent"]


def test_a_mail_refused_temporarily_every_time_fails_after_the_last_attempt(app, s, smtp):
    [mail] = queue(s)
    now, waits = NOW, []
    for _ in range(outbox.MAX_ATTEMPTS):
        smtp.refuse["DATA"].append("452 4.2.2 Mailbox full")
        outbox.deliver_due(s, now, app.config)
        [mail] = reread(s, [mail])
        if mail.status == "pending":
            waits.append(_utc(mail.next_attempt_at) - now)
            now = _utc(mail.next_attempt_at)
    assert [w.total_seconds() / 60 for w in waits] == [1, 2, 4, 8, 16, 32] + [60] * (outbox.MAX_ATTEMPTS - 7)
    assert dt.timedelta(days=outbox.GIVE_UP_DAYS) <= sum(waits, dt.timedelta()) < dt.timedelta(days=5, hours=1)
    assert (mail.status, mail.attempts) == ("failed", outbox.MAX_ATTEMPTS) and "452" in mail.last_error
    assert smtp.received == []


def test_a_server_that_is_down_loses_nothing_and_gets_the_mail_when_it_is_up(app, s, world, client):
    port = free_port()  # nothing listens here yet
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port)
    mails = queue(s, 3)

    report = outbox.deliver_due(s, NOW, app.config)

    assert report.server_down and "无法连接邮件服务器" in report.server_error
    assert (report.sent, report.deferred, report.failed) == (0, 3, 0)
    for mail in reread(s, mails):  # every due mail is kept, its attempt counted and pushed back
        assert (mail.status, mail.attempts) == ("pending", 1)
        assert _utc(mail.next_attempt_at) == NOW + dt.timedelta(minutes=1)
        assert "无法连接邮件服务器" in mail.last_error
    login(client, "admin_hn")  # admins see what is waiting, and why
    page = client.get("/admin/mail").get_data(as_text=True)
    assert "待发送 3 封" in page and "其中待重试 3 封" in page and page.count("无法连接邮件服务器") == 3
    sink = Sink()
    controller = start_server(port, sink)
    try:
        report = outbox.deliver_due(s, NOW + dt.timedelta(minutes=1), app.config)
    finally:
        controller.stop()
    assert (report.sent, report.server_down) == (3, False)
    assert sorted(sink.message_ids()) == sorted(m.message_id for m in mails)
    assert {m.status for m in reread(s, mails)} == {"sent"}


def test_a_550_fails_the_mail_and_the_province_admin_puts_it_back(app, s, world, smtp, client):
    smtp.refuse_addresses["nobody@example.cn"] = "550 5.1.1 Mailbox unavailable"
    [mail] = queue(s, recipients=["nobody@example.cn"], subject=SUBJECT)

    report = outbox.deliver_due(s, NOW, app.config)

    assert (report.sent, report.deferred, report.failed) == (0, 0, 1)
    [mail] = reread(s, [mail])
    assert (mail.status, mail.attempts) == ("failed", 1)
    assert "收件人被拒收" in mail.last_error and "550 5.1.1 Mailbox unavailable" in mail.last_error

    city_admin = app.test_client()
    login(city_admin, "admin_zz")  # a city admin: not this page
    assert city_admin.get("/admin/mail").status_code == 403
    users_page = city_admin.get("/admin/users").get_data(as_text=True)
    assert "/admin/mail" not in users_page  # no link to a page they may not open
    token = csrf_token(users_page)
    assert city_admin.post(f"/admin/mail/{mail.id}/retry", data={"csrf_token": token}).status_code == 403
    login(client, "admin_hn")
    page = client.get("/admin/mail").get_data(as_text=True)
    assert SUBJECT in page and "nobody@example.cn" in page and "Mailbox unavailable" in page and "重试" in page
    assert 'href="/admin/mail"' in page
    assert client.post(f"/admin/mail/{mail.id}/retry").status_code == 400  # no CSRF token: nothing changes
    assert reread(s, [mail])[0].status == "failed"

    client.post(f"/admin/mail/{mail.id}/retry", data={"csrf_token": csrf_token(page)})

    [mail] = reread(s, [mail])
    assert (mail.status, mail.attempts) == ("pending", 0)
    event = s.scalar(select(Event).where(Event.entity == "outbox", Event.entity_id == mail.id))
    assert (event.action, event.from_state, event.to_state) == ("mail_retry", "failed", "pending")
    assert event.user_id == world.user("admin_hn").id
    smtp.refuse_addresses.clear()  # the mailbox exists now
    outbox.deliver_due(s, _utc(mail.next_attempt_at), app.config)
    assert smtp.message_ids() == [mail.message_id] and reread(s, [mail])[0].status == "sent"


def test_a_550_after_data_fails_the_mail_and_only_a_failed_mail_can_be_retried(app, s, world, smtp):
    smtp.refuse["DATA"] = ["554 5.7.1 Message rejected as spam"]
    first, second = queue(s, 2)
    # The first mail goes first (oldest due first) and is refused; the second still goes out.
    report = outbox.deliver_due(s, NOW, app.config)
    assert (report.sent, report.failed) == (1, 1)
    first, second = reread(s, [first, second])
    assert first.status == "failed" and "邮件服务器拒收（554 5.7.1" in first.last_error
    assert second.status == "sent"
    with pytest.raises(outbox.ActionError):
        outbox.retry(s, world.m["admin_hn"], NOW, second)  # sent: nothing to retry
    with pytest.raises(outbox.ActionError):
        outbox.retry(s, world.m["admin_zz"], NOW, first)  # not a province admin
    s.rollback()
    assert reread(s, [first])[0].status == "failed"


def test_a_server_closing_the_connection_defers_that_mail_and_the_next_one_reconnects(app, s, smtp):
    smtp.refuse["DATA"] = ["421 4.3.2 Service shutting down"]
    first, second = queue(s, 2)
    report = outbox.deliver_due(s, NOW, app.config)
    assert (report.sent, report.deferred, report.server_down) == (1, 1, False)
    first, second = reread(s, [first, second])
    assert first.status == "pending" and "421" in first.last_error and second.status == "sent"
    assert outbox.deliver_due(s, NOW + dt.timedelta(minutes=1), app.config).sent == 1
    assert sorted(smtp.message_ids()) == sorted([first.message_id, second.message_id])


def test_some_recipients_refused_the_others_get_the_mail(app, s, smtp):
    smtp.refuse_addresses["gone@example.cn"] = "550 5.1.1 No such user"
    [mail] = queue(s, recipients=["unit_yh@example.cn", "gone@example.cn"])
    assert outbox.deliver_due(s, NOW, app.config).sent == 1
    [mail] = reread(s, [mail])
    assert [r for r, _, _ in smtp.received] == [["unit_yh@example.cn"]]
    assert mail.status == "sent" and "部分收件人被拒收" in mail.last_error and "gone@example.cn" in mail.last_error


def test_without_a_mail_server_each_mail_is_written_as_an_eml_file(app, s):
    assert not app.config["MAIL_SERVER"]
    mails = queue(s, 2, subject=SUBJECT)

    report = outbox.deliver_due(s, NOW, app.config)

    folder = app.config["MAIL_FOLDER"]
    assert report.sent == 2 and report.folder == folder
    names = {f.name for f in folder.glob("*.eml")}
    assert names == {f"20260302T010000Z-{m.id}.eml" for m in mails}  # the UTC time of delivery, the row
    parsed = email.message_from_bytes((folder / f"20260302T010000Z-{mails[0].id}.eml").read_bytes(),
                                      policy=default_policy)
    assert parsed["Subject"] == SUBJECT and parsed["Message-ID"] == mails[0].message_id
    assert parsed.get_body(("plain",)).get_content() == TEXT
    assert {m.status for m in reread(s, mails)} == {"sent"}
    assert outbox.deliver_due(s, NOW + dt.timedelta(hours=1), app.config).sent == 0
    assert len(list(folder.glob("*.eml"))) == 2 and not list(folder.glob("*.part"))


def test_two_flushes_in_a_row_never_send_a_mail_twice(app, s, smtp):
    mails = queue(s, 3)
    first = outbox.deliver_due(s, NOW, app.config)
    second = outbox.deliver_due(s, NOW, app.config)
    assert (first.sent, second.sent) == (3, 0) and not second
    assert sorted(smtp.message_ids()) == sorted(m.message_id for m in mails)


def test_two_flushers_at_once_send_each_mail_exactly_once(app, s, smtp):
    mails = queue(s, 6)
    smtp.delay = 0.05  # each DATA takes a while, so the two flushers overlap
    reports, errors = [], []

    def flush():
        session = app.extensions["tracker.sessionmaker"]()
        try:
            reports.append(outbox.deliver_due(session, NOW, app.config))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            session.close()

    threads = [threading.Thread(target=flush) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sum(r.sent for r in reports) == 6 and sum(r.deferred + r.failed for r in reports) == 0
    assert sorted(smtp.message_ids()) == sorted(m.message_id for m in mails)
    assert {m.status for m in reread(s, mails)} == {"sent"}


def test_attachments_arrive_with_their_chinese_file_names(app, s, smtp, tmp_path):
    instance = app.config["INSTANCE_PATH"]
    (instance / "ledgers").mkdir(parents=True, exist_ok=True)
    (instance / "ledgers" / "2026-02.xlsx").write_bytes(b"PK\x03\x04 ledger")
    report_file = tmp_path / "r.pdf"
    report_file.write_bytes(b"%PDF-1.7 monitoring")
    [mail] = queue(s, attachments=[
        {"path": "ledgers/2026-02.xlsx", "name": "2026年2月整改销号台账（湘潭市）.xlsx"},  # under the instance
        {"path": str(report_file), "name": "雨湖区水质监测报告.pdf", "content_type": "application/pdf"},
    ])
    assert mail.attachments[0]["content_type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

    outbox.deliver_due(s, NOW, app.config)

    [(_, msg, raw)] = smtp.received
    files = {part.get_filename(): (part.get_content_type(), part.get_content()) for part in msg.iter_attachments()}
    assert files == {
        "2026年2月整改销号台账（湘潭市）.xlsx": (mail.attachments[0]["content_type"], b"PK\x03\x04 ledger"),
        "雨湖区水质监测报告.pdf": ("application/pdf", b"%PDF-1.7 monitoring"),
    }
    assert b"filename*" in raw and b"utf-8''" in raw  # RFC 2231 parameters
    assert msg.get_body(("plain",)).get_content() == TEXT


def test_a_missing_attachment_fails_its_mail_and_the_others_still_go(app, s, smtp):
    [broken] = queue(s, attachments=[{"path": "ledgers/gone.xlsx", "name": "已删除的台账.xlsx"}])
    [fine] = queue(s)
    report = outbox.deliver_due(s, NOW, app.config)
    assert (report.sent, report.failed) == (1, 1)
    broken, fine = reread(s, [broken, fine])
    assert broken.status == "failed" and "附件无法读取：已删除的台账.xlsx" in broken.last_error
    assert smtp.message_ids() == [fine.message_id]


def test_mail_flush_command_reports_and_exits_0_even_when_the_server_is_down(app, s, smtp):
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    queue(s, 2, now=now)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["mail", "flush"])
    assert result.exit_code == 0, result.output
    assert "已发送2封，待重试0封，失败0封" in result.output and len(smtp.received) == 2

    queue(s, 1, now=now)
    app.config.update(MAIL_PORT=free_port())  # nothing listens there
    result = runner.invoke(args=["mail", "flush"])
    assert result.exit_code == 0, result.output
    assert "已发送0封，待重试1封，失败0封" in result.output and "邮件服务器不可用" in result.output


def test_a_text_only_message_is_one_base64_part_with_the_rows_date_and_id():
    row = SimpleNamespace(message_id=new_message_id("hn.example.cn"), recipients=["a@example.cn"], subject=SUBJECT,
                          text=TEXT, html="", attachments=[], created_at=NOW)
    msg = build_message(row, "zhenggai@hn.example.cn", None)
    raw = msg.as_bytes()
    assert msg.get_content_type() == "text/plain" and msg["Content-Transfer-Encoding"] == "base64"
    assert raw.isascii()  # 7-bit clean on the wire, for relays without 8BITMIME
    parsed = email.message_from_bytes(raw, policy=default_policy)
    assert parsed["Subject"] == SUBJECT and parsed.get_content() == TEXT
    assert parsed["Message-ID"] == row.message_id and row.message_id.endswith("@hn.example.cn>")
    assert parsed["Date"].datetime == NOW


def test_backoff_doubles_from_one_minute_up_to_an_hour():
    assert [outbox.backoff(n).total_seconds() / 60 for n in range(1, 10)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def _utc(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive UTC datetimes; PostgreSQL aware ones."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
