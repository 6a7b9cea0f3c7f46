"""Backup and restore (``tracker backup`` / ``tracker restore``): the database and the files, consistent.

A backup is one ``.tar.gz`` holding ``manifest.json`` (format, Alembic revision, row counts and the
SHA-256 of every member), one JSON-lines file per table, and the evidence and archived-ledger files
the rows refer to. The rows are read in one read-only snapshot (REPEATABLE READ on PostgreSQL, one
read transaction on SQLite), so they agree with each other; files are written once under random names
and never changed, so copying those the snapshot names gives the same state.

Tables are read by reflection, not from the models, so a backup holds exactly what the database held
at its revision. A restore migrates the target to the backup's revision, replaces every row in one
transaction, then upgrades to the current head: an old backup restores into a new release. Values
are decoded by the target's column types; restoring across database kinds is not a tested path.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Connection, Date, DateTime, Engine, MetaData, Table, func, insert, select, text, update
from sqlalchemy.exc import NoSuchTableError

from tracker import migrate, periods, tally

FORMAT = "zhenggai-backup/1"
BATCH = 1000
# The tallies are counts of the tasks: recounted on restore (``tally.rebuild``), never backed up; nor are
# the spans of 序时进度, recomputed after a restore by the scheduler (``periods.forget``).
SKIPPED_TABLES = {"alembic_version", *tally.TABLE_NAMES, *periods.TABLE_NAMES}
# (table, column holding the stored name, manifest folder) of the files rows refer to.
FILE_COLUMNS = (("evidence", "stored_name", "uploads"), ("ledger_archive", "stored_name", "ledgers"))


class BackupError(Exception):
    """A backup that cannot be written or restored; the message is Chinese and names the cause."""


@dataclass
class Folders:
    """Where the files of the rows live: evidence uploads and archived ledgers."""

    uploads: Path
    ledgers: Path

    def of(self, kind: str) -> Path:
        return self.uploads if kind == "uploads" else self.ledgers


@dataclass
class BackupSummary:
    path: Path
    revision: str
    rows: dict[str, int] = field(default_factory=dict)
    files: int = 0

    def describe(self) -> str:
        return f"{sum(self.rows.values())}行数据、{self.files}个文件（数据库版本{self.revision}）"


# --- writing ---------------------------------------------------------------------------------------


def backup(engine: Engine, folders: Folders, out: Path, now: dt.datetime) -> BackupSummary:
    """Write the database and the files its rows name to ``out`` (a .tar.gz), from one snapshot."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with engine.connect() as conn, tempfile.TemporaryDirectory() as scratch:
        _begin_snapshot(conn)
        revision = _revision(conn)
        if revision is None:
            raise BackupError("数据库尚未初始化（没有迁移版本），无法备份")
        tables = _reflect(conn)
        summary = BackupSummary(out, revision)
        members: dict[str, str] = {}
        with tarfile.open(partial, "w:gz") as tar:
            for table in tables:
                member = f"tables/{table.name}.jsonl"
                summary.rows[table.name], members[member] = _add_table(conn, tar, table, Path(scratch))
            for kind, name, path in _referenced_files(conn, tables, folders):
                if not path.is_file():
                    raise BackupError(f"文件缺失：{path}（{kind}），备份未完成")
                members[f"files/{kind}/{name}"] = _add_file(tar, path, f"files/{kind}/{name}")
                summary.files += 1
            manifest = {"format": FORMAT, "revision": revision, "created_at": now.isoformat(),
                        "dialect": conn.dialect.name, "rows": summary.rows, "members": members}
            _add_bytes(tar, "manifest.json", json.dumps(manifest, ensure_ascii=False, indent=1).encode())
        conn.rollback()
    partial.replace(out)
    return summary


def _begin_snapshot(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
    else:
        conn.exec_driver_sql("BEGIN")  # one read transaction: SQLite keeps it consistent


def _revision(conn: Connection) -> str | None:
    try:
        version = Table("alembic_version", MetaData(), autoload_with=conn)
    except NoSuchTableError:
        return None
    return conn.scalar(select(version.c.version_num))


def _reflect(conn: Connection) -> list[Table]:
    meta = MetaData()
    meta.reflect(conn)
    return [t for t in meta.sorted_tables if t.name not in SKIPPED_TABLES]


def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


def _add_table(conn: Connection, tar: tarfile.TarFile, table: Table, scratch: Path) -> tuple[int, str]:
    order = [c for c in table.primary_key.columns] or list(table.columns)
    path = scratch / f"{table.name}.jsonl"
    count = 0
    with open(path, "w", encoding="utf-8") as out:
        result = conn.execution_options(yield_per=BATCH).execute(select(table).order_by(*order))
        for row in result:
            out.write(json.dumps({k: _encode(v) for k, v in row._mapping.items()}, ensure_ascii=False))
            out.write("\n")
            count += 1
    return count, _add_file(tar, path, f"tables/{table.name}.jsonl")


def _referenced_files(conn: Connection, tables: list[Table], folders: Folders) -> Iterator[tuple[str, str, Path]]:
    by_name = {t.name: t for t in tables}
    for table_name, column, kind in FILE_COLUMNS:
        table = by_name.get(table_name)
        if table is None:
            continue
        for (name,) in conn.execute(select(table.c[column]).order_by(table.c[column])):
            if not safe_relative(name):
                raise BackupError(f"数据中的文件名不安全：{name}")
            yield kind, name, folders.of(kind) / name


def safe_relative(name: str) -> bool:
    """A stored name made of plain parts (``2026-01/12-ab.xlsx``): no absolute path, no ``..``."""
    parts = name.split("/")
    return bool(name) and "\\" not in name and all(p not in ("", ".", "..") for p in parts)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 16):
            digest.update(chunk)
    return digest.hexdigest()


def _add_file(tar: tarfile.TarFile, path: Path, arcname: str) -> str:
    tar.add(path, arcname=arcname, recursive=False)
    return _sha256_file(path)


def _add_bytes(tar: tarfile.TarFile, arcname: str, data: bytes) -> None:
    info = tarfile.TarInfo(arcname)
    info.size = len(data)
    info.mtime = int(dt.datetime.now(dt.UTC).timestamp())
    tar.addfile(info, io.BytesIO(data))


# --- reading ---------------------------------------------------------------------------------------


@dataclass
class RestoreSummary:
    revision: str
    rows: dict[str, int]
    files: int

    def describe(self) -> str:
        return f"已恢复{sum(self.rows.values())}行数据、{self.files}个文件（备份时数据库版本{self.revision}）"


def read_manifest(archive: Path) -> dict[str, Any]:
    """The manifest, after checking every member's SHA-256 against it (nothing is restored from a damaged file)."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            manifest = _load_manifest(tar)
            seen = set()
            for info in tar:
                if info.name == "manifest.json":
                    continue
                expected = manifest["members"].get(info.name)
                if expected is None or not info.isfile():
                    raise BackupError(f"备份文件含有清单以外的内容：{info.name}")
                if _sha256_member(tar, info) != expected:
                    raise BackupError(f"备份文件已损坏：{info.name}校验不符")
                seen.add(info.name)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupError(f"无法读取备份文件：{exc}") from exc
    missing = set(manifest["members"]) - seen
    if missing:
        raise BackupError(f"备份文件不完整，缺少{len(missing)}项，例如{sorted(missing)[0]}")
    return manifest


def _load_manifest(tar: tarfile.TarFile) -> dict[str, Any]:
    try:
        member = tar.extractfile("manifest.json")
        manifest = json.loads(member.read()) if member else None
    except (KeyError, json.JSONDecodeError) as exc:
        raise BackupError("不是整改台账的备份文件（缺少有效的manifest.json）") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError("不是整改台账的备份文件，或备份格式不受支持")
    return manifest


def _sha256_member(tar: tarfile.TarFile, info: tarfile.TarInfo) -> str:
    digest = hashlib.sha256()
    handle = tar.extractfile(info)
    while handle and (chunk := handle.read(1 << 16)):
        digest.update(chunk)
    return digest.hexdigest()


def restore(engine: Engine, folders: Folders, archive: Path, *, force: bool = False) -> RestoreSummary:
    """Replace the database's rows and files with the backup's, then migrate to the current head.

    Refuses, changing nothing, when the archive is damaged, when the database is already at a newer
    revision than the backup, or when it holds tasks or users and ``force`` is not given.
    """
    manifest = read_manifest(archive)
    revision = manifest["revision"]
    _prepare_schema(engine, revision, force)
    with tarfile.open(archive, "r:gz") as tar, engine.begin() as conn:
        tables = _reflect(conn)
        clear_tables(conn, tables)
        for table in tables:
            _load_table(conn, tar, table, f"tables/{table.name}.jsonl" in manifest["members"])
        reset_sequences(conn, tables)
        rows = {t.name: conn.scalar(select(func.count()).select_from(t)) for t in tables}
    files = _restore_files(archive, folders, manifest)
    migrate.upgrade(engine)
    with engine.begin() as conn:  # the restored tasks went through the tallies' triggers as well
        tally.rebuild(conn)
        periods.forget(conn)
    return RestoreSummary(revision, rows, files)


def _prepare_schema(engine: Engine, revision: str, force: bool) -> None:
    with engine.connect() as conn:
        current = _revision(conn)
        if current is not None:
            scripts = migrate.script_directory(engine)
            if revision not in {r.revision for r in scripts.walk_revisions()}:
                raise BackupError(f"备份的数据库版本{revision}不为本程序所知，请用更新的版本恢复")
            if current != revision and not _is_ancestor(scripts, current, revision):
                raise BackupError(f"数据库已是较新版本{current}，不能恢复较旧版本{revision}的备份；"
                                  "请恢复到一个空数据库")
            if not force and _holds_data(conn):
                raise BackupError("数据库中已有用户或任务；确认要覆盖时请加 --force")
    migrate.upgrade(engine, revision)


def _is_ancestor(scripts, older: str, newer: str) -> bool:
    return any(r.revision == older for r in scripts.iterate_revisions(newer, "base"))


def _holds_data(conn: Connection) -> bool:
    for name in ("task", "user_account"):
        try:
            table = Table(name, MetaData(), autoload_with=conn)
        except NoSuchTableError:
            continue
        if conn.scalar(select(func.count()).select_from(table)):
            return True
    return False


def clear_tables(conn: Connection, tables: list[Table]) -> None:
    """Empty the tables (TRUNCATE on PostgreSQL; deletes in reverse dependency order elsewhere)."""
    if conn.dialect.name == "postgresql":
        names = ", ".join(f'"{t.name}"' for t in tables)
        conn.execute(text(f"TRUNCATE {names} CASCADE"))
        return
    for table in reversed(tables):
        conn.execute(table.delete())
    for table in tables:  # the tasks' triggers counted their deletion into the tallies emptied before them
        if table.name in tally.TABLE_NAMES:
            conn.execute(table.delete())


def _decoder(table: Table):
    kinds = {}
    for column in table.columns:
        if isinstance(column.type, DateTime):
            kinds[column.name] = dt.datetime.fromisoformat
        elif isinstance(column.type, Date):
            kinds[column.name] = dt.date.fromisoformat
        elif isinstance(column.type, JSON):
            kinds[column.name] = None  # already a Python value

    def decode(row: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for key, value in row.items():
            if key not in table.c:
                raise BackupError(f"备份中{table.name}表的列{key}在数据库中不存在")
            convert = kinds.get(key)
            out[key] = convert(value) if convert and value is not None else value
        return out

    return decode


def _self_references(table: Table) -> list[str]:
    return [fk.parent.name for fk in table.foreign_keys if fk.column.table.name == table.name]


def _load_table(conn: Connection, tar: tarfile.TarFile, table: Table, present: bool) -> None:
    """Insert in batches; columns pointing at the same table are filled in afterwards (any order holds)."""
    if not present:
        return
    decode, later = _decoder(table), _self_references(table)
    handle = tar.extractfile(f"tables/{table.name}.jsonl")
    batch: list[dict[str, Any]] = []
    deferred: list[dict[str, Any]] = []
    for line in io.TextIOWrapper(handle, encoding="utf-8"):
        row = decode(json.loads(line))
        if later and any(row.get(c) is not None for c in later):
            deferred.append({"_pk": row["id"], **{c: row[c] for c in later}})
            row = {**row, **{c: None for c in later}}
        batch.append(row)
        if len(batch) >= BATCH:
            conn.execute(insert(table), batch)
            batch = []
    if batch:
        conn.execute(insert(table), batch)
    for row in deferred:
        conn.execute(update(table).where(table.c.id == row.pop("_pk")).values(**row))


def reset_sequences(conn: Connection, tables: list[Table]) -> None:
    """After explicit ids were inserted, move PostgreSQL's id sequences past them."""
    if conn.dialect.name != "postgresql":
        return
    for table in tables:
        if "id" in table.c and table.c.id.primary_key:  # setval(NULL, …) is NULL: no sequence, no change
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                              f"COALESCE((SELECT MAX(id) FROM \"{table.name}\"), 0) + 1, false)"))


def _restore_files(archive: Path, folders: Folders, manifest: dict[str, Any]) -> int:
    count = 0
    with tarfile.open(archive, "r:gz") as tar:
        for info in tar:
            prefix, _, rest = info.name.partition("/")
            kind, _, name = rest.partition("/")
            if prefix != "files" or kind not in ("uploads", "ledgers"):
                continue
            if not safe_relative(name) or info.name not in manifest["members"]:
                raise BackupError(f"备份中的文件名不安全：{info.name}")
            target = folders.of(kind) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(info)
            with open(target, "wb") as out:
                shutil.copyfileobj(source, out)
            count += 1
    return count
