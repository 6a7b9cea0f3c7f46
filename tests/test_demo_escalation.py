"""The escalation issue's "done when", on the demo data: `tracker escalation scan --date 2027-06-30`
then `tracker mail flush` deliver one digest per recipient to a real SMTP server; running both
again delivers nothing new."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from tests.test_mail import smtp  # noqa: F401  (the real SMTP server fixture)
from tracker import demo
from tracker.models import EscalationRecord, User
from tracker.timeutil import utcnow


def test_demo_scan_and_flush_deliver_one_digest_per_recipient_once(app, s, smtp, tmp_path):  # noqa: F811
    demo.load(s, utcnow(), hash_method="pbkdf2:sha256:1000", upload_folder=tmp_path / "uploads")
    s.commit()
    runner = app.test_cli_runner()
    assert runner.invoke(args=["mail", "flush"]).exit_code == 0
    assert smtp.received == []  # loading the demo history mails no one
    scan = runner.invoke(args=["escalation", "scan", "--date", "2027-06-30"])
    assert scan.exit_code == 0 and "2027-06-30" in scan.output, scan.output
    flush = runner.invoke(args=["mail", "flush"])
    assert flush.exit_code == 0, flush.output
    digests = [(to, msg) for to, msg, _ in smtp.received if msg["Subject"].startswith("【整改督办】2027-06-30")]
    assert digests and len(digests) == len(smtp.received)
    per_recipient = Counter(address for to, _ in digests for address in to)
    assert max(per_recipient.values()) == 1
    mailed = set(s.scalars(select(User.email).where(User.email.is_not(None))))
    assert set(per_recipient) <= mailed
    records = s.scalar(select(func.count()).select_from(EscalationRecord))
    assert records > 0

    again = runner.invoke(args=["escalation", "scan", "--date", "2027-06-30"])
    assert again.exit_code == 0
    runner.invoke(args=["mail", "flush"])
    assert len(smtp.received) == len(digests)
    assert s.scalar(select(func.count()).select_from(EscalationRecord)) == records
