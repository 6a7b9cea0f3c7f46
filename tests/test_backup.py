"""Backup and restore: every row and file comes back, damaged or unsafe archives change nothing,
old backups restore into the current schema, and a restored database keeps working."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from sqlalchemy import MetaData, create_engine, func, select

from config import TestConfig
from tests.conftest import NOW, _postgres_url, migrated_database
from tracker import archive, backup, create_app, migrate, periods, settings, storage, tally
from tracker.models import Evidence, LedgerArchive, Membership, Task
from tracker.operations import perform
from tracker.timeutil import SHANGHAI


def folders_of(app) -> backup.Folders:
    return backup.Folders(Path(app.config["UPLOAD_FOLDER"]), Path(app.config["LEDGER_FOLDER"]))


def dump(url: str) -> dict[str, list[dict]]:
    """Every row of every table, in primary-key order, as comparable values; of the tallies (counts
    of the tasks, recounted on restore) the sum per key; of the spans of 序时进度, which tasks have them."""
    engine = create_engine(TestConfig(url, "/tmp").SQLALCHEMY_DATABASE_URI)
    meta = MetaData()
    with engine.connect() as conn:
        meta.reflect(conn)
        rows = {t.name: [dict(r._mapping) for r in conn.execute(select(t).order_by(*t.primary_key.columns))]
                for t in meta.sorted_tables
                if t.name != "alembic_version" and t.name not in tally.TABLE_NAMES | periods.TABLE_NAMES}
        # the spans of 序时进度 are not backed up: a restore marks every task for the scheduler to compute
        rows["tasks with spans or marked"] = sorted(set(conn.scalars(select(meta.tables["task_period"].c.task_id)))
                                                    | set(conn.scalars(select(meta.tables["period_stale"].c.task_id))))
        for name in tally.TABLE_NAMES:
            t = meta.tables[name]
            keys = [c for c in t.c if c.name not in ("id", "n")]
            rows[name] = sorted(map(tuple, conn.execute(select(*keys, func.sum(t.c.n)).group_by(*keys)
                                                        .having(func.sum(t.c.n) != 0))), key=repr)
    engine.dispose()
    return rows


@pytest.fixture
def ledger_with_files(app, world, s):
    """A closed task with a real photo on disk, an open one split-free, and an archived ledger."""
    upload = Path(app.config["UPLOAD_FOLDER"])
    photo = storage.store(upload, io.BytesIO(b"\xff\xd8 shuangma after"), kind="after",
                          filename="双马填埋场整改后.jpg", content_type="image/jpeg")
    closed = world.assigned(title="双马填埋场渗滤液处理不到位")
    world.advance(closed, "closed", files=[photo])
    open_task = world.assigned(title="涓水直排口整治不到位", lead="湘乡市人民政府")
    perform(s, open_task, "sign", world.m["unit_xx"], NOW)
    s.commit()
    when = dt.datetime(2026, 10, 8, 7, 30, tzinfo=SHANGHAI).astimezone(dt.UTC)
    archive.archive_month(s, "2026-09", when, Path(app.config["LEDGER_FOLDER"]), settings.time_settings(s),
                          base_url="https://zg.example.cn")
    s.commit()
    return closed, open_task, photo


def test_round_trip_restores_every_row_and_file(app, ledger_with_files, database_url, tmp_path):
    out = tmp_path / "backup.tar.gz"
    summary = backup.backup(app.extensions["tracker.engine"], folders_of(app), out, NOW)
    # the photo and one archived ledger per region with a supervisor or viewer
    assert summary.rows["task"] == 2 and summary.files == 1 + summary.rows["ledger_archive"] > 1
    with migrated_database(_postgres_url(), tmp_path) as target_url:
        target = create_app(TestConfig(target_url, str(tmp_path / "restored")))
        restored = backup.restore(target.extensions["tracker.engine"], folders_of(target), out)
        assert restored.rows["task"] == 2
        assert dump(target_url) == dump(database_url)
        engine = target.extensions["tracker.engine"]
        with engine.connect() as conn:
            evidence = conn.execute(select(Evidence.stored_name, Evidence.sha256)).one()
            stored = conn.scalars(select(LedgerArchive.stored_name)).all()
        path = storage.path_of(Path(target.config["UPLOAD_FOLDER"]), evidence.stored_name)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == evidence.sha256
        assert all((Path(target.config["LEDGER_FOLDER"]) / name).is_file() for name in stored)
        _restored_database_keeps_working(target)
        engine.dispose()


def _restored_database_keeps_working(target) -> None:
    """New rows get fresh ids (PostgreSQL sequences moved past the restored ones) and actions work."""
    session = target.extensions["tracker.sessionmaker"]()
    task = session.scalar(select(Task).where(Task.title == "涓水直排口整治不到位"))
    lead = next(tu.unit_id for tu in task.task_units if tu.role == "lead")
    member = session.scalar(select(Membership).where(Membership.unit_id == lead, Membership.role == "unit"))
    perform(session, task, "submit_plan", member, NOW, target="涓水达标排放", measures="截污纳管")
    session.commit()
    assert task.state == "signed" and task.plan_submitted_on is not None
    session.close()


def test_a_damaged_backup_is_refused_and_nothing_changes(app, ledger_with_files, database_url, tmp_path):
    out = tmp_path / "backup.tar.gz"
    backup.backup(app.extensions["tracker.engine"], folders_of(app), out, NOW)
    damaged = tmp_path / "damaged.tar.gz"
    with tarfile.open(out, "r:gz") as src, tarfile.open(damaged, "w:gz") as dst:
        for info in src:
            data = src.extractfile(info).read()
            if info.name == "tables/task.jsonl":
                data = data.replace("涓水".encode(), "浏阳".encode())
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
    before = dump(database_url)
    with pytest.raises(backup.BackupError, match="校验不符"):
        backup.restore(app.extensions["tracker.engine"], folders_of(app), damaged, force=True)
    assert dump(database_url) == before


def test_restoring_over_data_needs_force(app, ledger_with_files, database_url, tmp_path, s, world):
    out = tmp_path / "backup.tar.gz"
    backup.backup(app.extensions["tracker.engine"], folders_of(app), out, NOW)
    expected = dump(database_url)
    world.assigned(title="湘江干流沿岸非法码头")  # changed after the backup
    s.commit()
    s.close()
    with pytest.raises(backup.BackupError, match="--force"):
        backup.restore(app.extensions["tracker.engine"], folders_of(app), out)
    assert dump(database_url) != expected
    backup.restore(app.extensions["tracker.engine"], folders_of(app), out, force=True)
    assert dump(database_url) == expected


def test_an_unsafe_file_name_in_an_archive_is_refused(app, ledger_with_files, tmp_path):
    out = tmp_path / "backup.tar.gz"
    backup.backup(app.extensions["tracker.engine"], folders_of(app), out, NOW)
    evil = tmp_path / "evil.tar.gz"
    payload = b"owned"
    with tarfile.open(out, "r:gz") as src, tarfile.open(evil, "w:gz") as dst:
        manifest = json.loads(src.extractfile("manifest.json").read())
        manifest["members"]["files/uploads/../../escape"] = hashlib.sha256(payload).hexdigest()
        for info in src:
            if info.name != "manifest.json":
                dst.addfile(info, src.extractfile(info))
        for name, data in (("files/uploads/../../escape", payload),
                           ("manifest.json", json.dumps(manifest).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
    target = tmp_path / "fresh.sqlite3"
    engine = create_engine(f"sqlite:///{target}")
    with pytest.raises(backup.BackupError, match="不安全"):
        backup.restore(engine, backup.Folders(tmp_path / "u" / "a", tmp_path / "l"), evil)
    engine.dispose()
    assert not (tmp_path / "escape").exists() and not (tmp_path / "u" / "escape").exists()


def test_a_file_that_is_not_a_backup_is_refused(app, tmp_path):
    bogus = tmp_path / "ledger.tar.gz"
    with tarfile.open(bogus, "w:gz") as tar:
        info = tarfile.TarInfo("readme.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(backup.BackupError, match="不是整改台账的备份文件"):
        backup.read_manifest(bogus)
    (tmp_path / "plain.txt").write_text("not even a tar")
    with pytest.raises(backup.BackupError, match="无法读取"):
        backup.read_manifest(tmp_path / "plain.txt")


def test_an_old_backup_restores_into_a_fresh_database_and_is_migrated_to_head(tmp_path):
    old = create_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    migrate.upgrade(old, "0007")
    out = tmp_path / "old.tar.gz"
    summary = backup.backup(old, backup.Folders(tmp_path / "u", tmp_path / "l"), out, NOW)
    assert summary.revision == "0007" and summary.rows["region"] == 15  # 湖南省 and its 14 市州
    fresh = create_engine(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    backup.restore(fresh, backup.Folders(tmp_path / "u2", tmp_path / "l2"), out)
    with fresh.connect() as conn:
        head = migrate.script_directory(fresh).get_current_head()
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == head
        assert conn.exec_driver_sql("SELECT count(*) FROM region").scalar() == 15
    migrate.check(fresh)
    for engine in (old, fresh):
        engine.dispose()


def test_a_newer_database_refuses_an_older_backup(app, tmp_path):
    old = create_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    migrate.upgrade(old, "0007")
    out = tmp_path / "old.tar.gz"
    backup.backup(old, backup.Folders(tmp_path / "u", tmp_path / "l"), out, NOW)
    old.dispose()
    with pytest.raises(backup.BackupError, match="较新版本"):
        backup.restore(app.extensions["tracker.engine"], folders_of(app), out, force=True)


def test_the_cli_backs_up_and_restores(app, ledger_with_files, database_url, tmp_path, s):
    out = tmp_path / "cli.tar.gz"
    runner = app.test_cli_runner()
    result = runner.invoke(args=["backup", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "已备份" in result.output and out.is_file()
    refused = runner.invoke(args=["restore", str(out)])
    assert refused.exit_code == 1 and "--force" in refused.output
    restored = runner.invoke(args=["restore", str(out), "--force"])
    assert restored.exit_code == 0, restored.output
    assert "已恢复" in restored.output
    assert s.scalar(select(func.count()).select_from(Task)) == 2
