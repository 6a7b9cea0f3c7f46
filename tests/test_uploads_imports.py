"""Hostile files (issue 9, item 2): uploads over the size limit, files whose bytes are not what their name
says, Chinese and crafted file names, path traversal on download; imports that are zip bombs or sheets far
too large, refused in a moment before a parser reads them, with nothing imported."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path
from urllib.parse import quote

import openpyxl
import pytest
import xlwt
from playwright.sync_api import expect
from sqlalchemy import func, select
from werkzeug.http import parse_options_header

from tests.browser import LiveServer
from tests.conftest import csrf_token, login
from tests.test_browser import logged_in
from tests.test_hostile_input import _task_at, changed, snapshot
from tracker import intake, jobs, plan_import, storage, tokens
from tracker.models import BackgroundJob, Evidence, Task
from tracker.timeutil import utcnow

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + "双马填埋场整改后".encode()
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
PDF = "%PDF-1.7\n% 监测报告\n".encode()
HTML = b"<!doctype html><html><script>alert(document.cookie)</script></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>'
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff"
ELF = b"\x7fELF\x02\x01\x01\x00"


def _report(client, task: Task, files: list[tuple[bytes, str, str]]):
    """报送进展 with evidence files (bytes, file name, the type the browser claims), through the task page."""
    html = client.get(f"/tasks/{task.id}").get_data(as_text=True)
    data = {"report-csrf_token": csrf_token(html), "report-version": str(task.version),
            "report-text": "渗滤液处理站主体完工", "report-evidence_kind": "after",
            "report-files": [(io.BytesIO(content), name, claimed) for content, name, claimed in files]}
    return client.post(f"/tasks/{task.id}/act/report", data=data, content_type="multipart/form-data")


def _evidence(s, task: Task) -> list[Evidence]:
    s.expire_all()
    return list(s.scalars(select(Evidence).where(Evidence.task_id == task.id).order_by(Evidence.id)))


def _files(folder: Path) -> set[Path]:
    return set(folder.rglob("*")) if folder.exists() else set()


@pytest.fixture
def rectifying(app, world, s):
    task = _task_at(world, "rectifying")
    s.commit()
    client = app.test_client()
    assert login(client, "unit_yh").status_code == 302
    return task, client


# --- size ------------------------------------------------------------------------------------------------------


def test_an_upload_over_the_limit_gets_a_chinese_page_naming_the_limit_and_saves_nothing(app, s, rectifying):
    task, client = rectifying
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    folder = Path(app.config["UPLOAD_FOLDER"])
    before, on_disk = snapshot(app), _files(folder)
    response = _report(client, task, [(JPEG + b"\x00" * (1024 * 1024), "双马填埋场航拍.jpg", "image/jpeg")])
    assert response.status_code == 413
    html = response.get_data(as_text=True)
    assert "上传的文件过大" in html and "不能超过 1 MB" in html
    assert changed(before, snapshot(app)) == {} and _files(folder) == on_disk
    assert _report(client, task, [(JPEG, "双马填埋场航拍.jpg", "image/jpeg")]).status_code == 302  # a small one goes


def test_the_api_refuses_an_upload_over_the_limit_as_a_problem(app, world, s, rectifying):
    task, _client = rectifying
    app.config["MAX_CONTENT_LENGTH"] = 256 * 1024
    made = tokens.create_token(s, world.m["unit_yh"], utcnow(), world.user("unit_yh"), world.m["unit_yh"], "对接")
    s.commit()
    before = snapshot(app)
    response = app.test_client().post(
        f"/api/v1/tasks/{task.id}/actions/report", headers={"Authorization": f"Bearer {made.secret}"},
        data={"version": str(task.version), "text": "进展", "files": [(io.BytesIO(b"\xff" * 300_000), "大.jpg")]},
        content_type="multipart/form-data")
    assert response.status_code == 413 and response.get_json()["code"] == "PAYLOAD_TOO_LARGE"
    assert changed(before, snapshot(app)) == {}


# --- type by content ---------------------------------------------------------------------------------------------

TYPE_CASES = [
    # (bytes, name, what the browser claims, stored and served type)
    (HTML, "整改后现场照片.jpg", "image/jpeg", "application/octet-stream"),
    (SVG, "监测点位图.png", "image/png", "application/octet-stream"),
    (SVG, "监测点位图.svg", "image/svg+xml", "application/octet-stream"),
    (EXE, "照片.jpg", "image/jpeg", "application/octet-stream"),
    (ELF, "报告.pdf", "application/pdf", "application/octet-stream"),
    (HTML, "说明.html", "text/html", "application/octet-stream"),
    (PDF, "监测报告.jpg", "image/jpeg", "application/pdf"),
    (JPEG, "整改后.pdf", "application/pdf", "image/jpeg"),
    (PNG, "现场.png", "text/html", "image/png"),
    (JPEG, "现场", "x" * 300, "image/jpeg"),  # a claimed type longer than the column: ignored, not stored
]


@pytest.mark.parametrize(("content", "name", "claimed", "expected"), TYPE_CASES)
def test_the_stored_and_served_type_comes_from_the_bytes_not_the_name(app, s, rectifying, content, name, claimed,
                                                                       expected):
    task, client = rectifying
    assert _report(client, task, [(content, name, claimed)]).status_code == 302
    [evidence] = _evidence(s, task)
    assert evidence.content_type == expected
    response = client.get(f"/evidence/{evidence.id}")
    assert response.status_code == 200 and response.data == content
    assert response.mimetype == expected
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_stored_type_the_bytes_do_not_bear_out_is_served_as_a_plain_download(app, world, s, rectifying):
    """A row written before types were sniffed (the browser's claim kept): the file's bytes decide."""
    task, client = rectifying
    assert _report(client, task, [(HTML, "旧照片.jpg", "image/jpeg")]).status_code == 302
    [evidence] = _evidence(s, task)
    evidence.content_type = "image/jpeg"
    s.commit()
    made = tokens.create_token(s, world.m["unit_yh"], utcnow(), world.user("unit_yh"), world.m["unit_yh"], "对接")
    s.commit()
    for response in (client.get(f"/evidence/{evidence.id}"),
                     app.test_client().get(f"/api/v1/evidence/{evidence.id}/file",
                                           headers={"Authorization": f"Bearer {made.secret}"})):
        assert response.status_code == 200
        assert response.mimetype == "application/octet-stream"
        assert response.headers["Content-Disposition"].startswith("attachment;")


def test_sniffing_reads_magic_numbers_only():
    assert storage.sniff(JPEG) == "image/jpeg" and storage.sniff(PNG) == "image/png"
    assert storage.sniff(PDF) == "application/pdf"
    for content in (HTML, SVG, EXE, ELF, b"", b"\xff\xd8", b"%PDF", b"GIF89a", b"PK\x03\x04"):
        assert storage.sniff(content) == "application/octet-stream"


# --- names -------------------------------------------------------------------------------------------------------

NAMES = [
    # (the name as sent, the name kept)
    ("双马填埋场整改后现场照片（2026年3月）.jpg", "双马填埋场整改后现场照片（2026年3月）.jpg"),
    ("../../etc/passwd", "passwd"),
    ("..\\..\\windows\\win.ini", None),  # the multipart parser reads the backslashes as escapes
    ("/var/www/涓水直排口.pdf", "涓水直排口.pdf"),
    ('整改"报告";filename=evil.html.pdf', None),  # the client encodes the quotes its own way
    ("\u202egpj.exe", "gpj.exe"),
    ("..", "file"),
    ("💩 现场 照片.png", "💩 现场 照片.png"),
]


@pytest.mark.parametrize(("sent", "kept"), NAMES)
def test_file_names_are_kept_safely_and_sent_back_in_rfc_5987_form(app, s, rectifying, sent, kept):
    task, client = rectifying
    folder = Path(app.config["UPLOAD_FOLDER"])
    outside = _files(folder.parent.parent)
    assert _report(client, task, [(JPEG, sent, "image/jpeg")]).status_code == 302
    [evidence] = _evidence(s, task)
    name = evidence.original_name
    assert name == kept if kept is not None else name.isprintable()
    assert "/" not in name and "\\" not in name and not name.startswith(".")
    kept = name
    new = _files(folder.parent.parent) - outside
    assert new and all(p.parent == folder and storage.STORED_NAME.fullmatch(p.name) for p in new if p.is_file())
    disposition = client.get(f"/evidence/{evidence.id}").headers["Content-Disposition"]
    assert "\r" not in disposition and "\n" not in disposition
    assert parse_options_header(disposition) == ("attachment", {"filename": name})
    if not kept.isascii():
        assert f"filename*=UTF-8''{quote(kept, safe='!#$&+^`|~')}" in disposition
        assert "filename=" in disposition.replace("filename*=", "")  # an ASCII fallback for old clients


def test_downloads_take_ids_only_and_never_a_path(app, world, s, rectifying):
    task, client = rectifying
    assert _report(client, task, [(JPEG, "照片.jpg", "image/jpeg")]).status_code == 302
    for url in ("/evidence/../../etc/passwd", "/evidence/..%2F..%2Fetc%2Fpasswd", "/evidence/%2e%2e/%2e%2e/etc/passwd",
                "/evidence/1%2F..%2F..", "/evidence/-1", "/evidence/99999999999999999999", "/evidence/0x1",
                "/jobs/..%2F..%2Fetc/download", "/archives/..%2Fsecret_key", "/static/../config.py",
                "/static/..%2F..%2Finstance%2Fsecret_key"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert b"root:" not in response.data and b"SECRET" not in response.data
    made = tokens.create_token(s, world.m["unit_yh"], utcnow(), world.user("unit_yh"), world.m["unit_yh"], "对接")
    s.commit()
    for url in ("/api/v1/evidence/..%2F..%2Fetc%2Fpasswd/file", "/api/v1/evidence/1.0/file",
                "/api/v1/evidence/%EF%BC%91/file"):  # a full-width digit
        response = app.test_client().get(url, headers={"Authorization": f"Bearer {made.secret}"})
        assert response.status_code == 404 and response.mimetype == "application/problem+json", url
    for name in ("../etc/passwd", "..", "", "中文名字", "A" * 32, "0" * 31, "/etc/passwd"):
        with pytest.raises(ValueError):
            storage.path_of(Path(app.config["UPLOAD_FOLDER"]), name)


# --- imports: zip bombs and huge sheets ----------------------------------------------------------------------------

WORKBOOK_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
        'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships'
        '+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override '
        'PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.'
        'spreadsheetml.worksheet+xml"/></Types>'),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
        'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/'
        'main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet '
        'name="整改台账" sheetId="1" r:id="rId1"/></sheets></workbook>'),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
        'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'),
}
SHEET_START = ('<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
               'spreadsheetml/2006/main"><sheetData>')
HEADER_ROW = ('<row r="1"><c r="A1" t="inlineStr"><is><t>编号</t></is></c><c r="B1" t="inlineStr"><is><t>问题名称</t>'
              '</is></c><c r="C1" t="inlineStr"><is><t>属地</t></is></c><c r="D1" t="inlineStr"><is><t>交办渠道</t>'
              '</is></c><c r="E1" t="inlineStr"><is><t>批次</t></is></c></row>')


def workbook(path: Path, sheet_chunks, extra: dict[str, bytes] | None = None) -> Path:
    """An .xlsx written part by part; the sheet streamed from ``sheet_chunks`` (so it may unpack to gigabytes)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, text in WORKBOOK_PARTS.items():
            archive.writestr(name, text)
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            for chunk in sheet_chunks:
                sheet.write(chunk)
        for name, content in (extra or {}).items():
            archive.writestr(name, content)
    return path


def _rows(n: int):
    yield (SHEET_START + HEADER_ROW).encode()
    for r in range(2, n + 2):
        yield (f'<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>XT-{r}</t></is></c><c r="B{r}" t="inlineStr"><is>'
               f'<t>双马填埋场渗滤液处理不到位</t></is></c></row>').encode()
    yield b"</sheetData></worksheet>"


def _bomb():
    yield (SHEET_START + HEADER_ROW + '<row r="2"><c r="A2" t="inlineStr"><is><t>').encode()
    block = "湘" * (1024 * 1024 // 3)
    for _ in range(300):  # about 300 MB of text in one cell, a few hundred KB packed
        yield block.encode()
    yield b"</t></is></c></row></sheetData></worksheet>"


def _one_cell_far_away(ref: str):
    yield (SHEET_START + HEADER_ROW + f'<row r="{ref[3:]}"><c r="{ref}" t="inlineStr"><is><t>远</t></is></c></row>'
           "</sheetData></worksheet>").encode()


def _merged(ref: str):
    yield (SHEET_START + HEADER_ROW + f'</sheetData><mergeCells count="1"><mergeCell ref="{ref}"/></mergeCells>'
           "</worksheet>").encode()


def _refused_quickly(s, world, path: Path, message: str, seconds: float = 3) -> None:
    before = s.scalar(select(func.count()).select_from(Task))
    started = time.monotonic()
    report = intake.import_ledger(s, path, world.m["sup_xt"], utcnow())
    assert time.monotonic() - started < seconds, "the refusal was not cheap"
    assert [p.message for p in report.errors] == [message] or message in report.errors[0].message, report.errors
    s.rollback()
    assert s.scalar(select(func.count()).select_from(Task)) == before


def test_a_zip_bomb_workbook_is_refused_before_it_is_unpacked(s, world, tmp_path):
    path = workbook(tmp_path / "湘潭市整改台账.xlsx", _bomb())
    assert path.stat().st_size < 2 * 1024 * 1024
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo("xl/worksheets/sheet1.xml").file_size > intake.MAX_UNCOMPRESSED_BYTES
    _refused_quickly(s, world, path, "文件解压后超过256MB")


@pytest.mark.parametrize(("case", "sheet", "message"), [
    ("too many rows", lambda: _rows(intake.MAX_ROWS + 1), f"工作表超过{intake.MAX_ROWS}行"),
    ("a cell in the last row", lambda: _one_cell_far_away("XFD1048576"), "工作表超过"),
    ("a cell in the last column", lambda: _one_cell_far_away("XFD1"), f"工作表超过{intake.MAX_COLUMNS}列"),
    ("a merged range over the whole sheet", lambda: _merged("A1:XFD1048576"), "工作表超过"),
])
def test_a_sheet_too_large_is_refused_before_it_is_parsed(s, world, tmp_path, case, sheet, message):
    _refused_quickly(s, world, workbook(tmp_path / "台账.xlsx", sheet()), message)


def test_a_workbook_of_too_many_parts_is_refused(s, world, tmp_path):
    extra = {f"xl/media/image{i}.png": b"" for i in range(intake.MAX_ARCHIVE_MEMBERS)}
    _refused_quickly(s, world, workbook(tmp_path / "台账.xlsx", _rows(3), extra), "文件包含的部件过多")


def test_an_xls_sheet_of_too_many_rows_is_refused(s, world, tmp_path):
    book = xlwt.Workbook()
    sheet = book.add_sheet("整改台账")
    for c, header in enumerate(["编号", "问题名称", "属地", "交办渠道", "批次"]):
        sheet.write(0, c, header)
    for r in range(1, intake.MAX_ROWS + 2):
        sheet.write(r, 0, r)
    path = tmp_path / "台账.xls"
    book.save(str(path))
    # An .xls is not compressed: xlrd reads it in time proportional to the file, which the size limit bounds;
    # the rows are counted before a grid of Python values is built.
    _refused_quickly(s, world, path, f"工作表超过{intake.MAX_ROWS}行", seconds=10)


def test_a_sheet_within_the_limits_still_imports(s, world, tmp_path):
    """The limits leave an ordinary ledger alone (merged cells included)."""
    book = openpyxl.Workbook()
    ws = book.active
    ws.append(["编号", "问题名称", "属地", "交办渠道", "批次", "完成情况"])
    ws.append(["XT-201", "涓水直排口生活污水直排", "湘乡市", "省级生态环境保护督察", "第一轮", "待交办"])
    ws.merge_cells("G1:H1")
    path = tmp_path / "台账.xlsx"
    book.save(path)
    report = intake.import_ledger(s, path, world.m["sup_xt"], utcnow())
    assert report.errors == [] and report.created == 1


def test_a_zip_bomb_uploaded_on_the_import_page_fails_its_job_in_chinese_with_nothing_imported(app, world, s,
                                                                                               tmp_path):
    path = workbook(tmp_path / "湘潭市整改台账.xlsx", _bomb())
    client = app.test_client()
    login(client, "sup_xt")
    html = client.get("/import").get_data(as_text=True)
    response = client.post("/import", data={"csrf_token": csrf_token(html), "file": (path.open("rb"), path.name)},
                           content_type="multipart/form-data")
    assert response.status_code == 302
    before = snapshot(app)["task"]
    started = time.monotonic()
    jobs.run_pending(app)
    assert time.monotonic() - started < 5
    s.expire_all()
    job = s.scalar(select(BackgroundJob).order_by(BackgroundJob.id.desc()).limit(1))
    assert job.state == jobs.FAILED
    assert "文件解压后超过256MB" in job.result["report"]["errors"][0]["message"]
    assert snapshot(app)["task"] == before
    assert "文件解压后超过256MB" in client.get(f"/jobs/{job.id}").get_data(as_text=True)


def test_an_import_upload_over_the_limit_is_refused_with_a_chinese_page(app, world):
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    client = app.test_client()
    login(client, "sup_xt")
    html = client.get("/import").get_data(as_text=True)
    before = snapshot(app)
    response = client.post("/import", data={"csrf_token": csrf_token(html),
                                            "file": (io.BytesIO(b"PK\x03\x04" + b"\x00" * (2 * 1024 * 1024)),
                                                     "台账.xlsx")}, content_type="multipart/form-data")
    assert response.status_code == 413 and "不能超过 1 MB" in response.get_data(as_text=True)
    assert changed(before, snapshot(app)) == {}


def test_a_plan_file_too_large_is_refused_before_it_is_read(app, world, tmp_path):
    path = tmp_path / "整改方案.txt"
    with path.open("w", encoding="utf-8") as fh:
        for _ in range(plan_import.MAX_PLAN_BYTES // 60 + 1):
            fh.write("（四）加强双马填埋场渗滤液处理（省生态环境厅牵头，省水利厅等参与）。\n")
    before = snapshot(app)
    result = app.test_cli_runner().invoke(args=["plan", "import", str(path), "--channel", "攻坚战交办", "--issuer",
                                                "省生态环境厅", "--issued", "2026-03-02"])
    assert result.exit_code == 1 and "不像是整改方案的文本" in result.output
    assert changed(before, snapshot(app)) == {}


@pytest.mark.browser
def test_the_browser_stops_an_upload_over_the_limit_before_sending_it(app, s, rectifying, browser):
    task, _client = rectifying
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    requests: list[str] = []
    with LiveServer(app) as server:
        page = logged_in(browser, server.url, "unit_yh")
        page.goto(f"{server.url}/tasks/{task.id}")
        page.on("request", lambda request: requests.append(request.method))
        box = page.locator("#action-report")
        box.locator("summary").click()
        box.get_by_label("进展情况", exact=True).fill("渗滤液处理站主体完工")
        box.get_by_label("佐证材料", exact=True).set_input_files(
            [{"name": "双马填埋场航拍.jpg", "mimeType": "image/jpeg", "buffer": JPEG + b"\x00" * (1536 * 1024)}])
        box.locator("button[type=submit]").click()
        expect(box.locator(".upload-too-large")).to_contain_text("所选文件合计 1.5 MB，超过了一次提交 1 MB 的上限")
    assert "POST" not in requests
    assert _evidence(s, task) == []
