"""Work measured in a process of its own, so that its peak memory (``ru_maxrss``) is its own: the ledger
export, and its floor — XlsxWriter writing the same rows from a list in memory. Prints one JSON line.

    python -m bench.child export --database-url URL --region ID --month YYYY-MM --out FILE
    python -m bench.child xlsx-floor --csv FILE --out FILE
    python -m bench.child baseline --database-url URL
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import resource
import sys
import time
from pathlib import Path

import xlsxwriter
from sqlalchemy.orm import Session

from bench.app import create_app
from config import Config
from tracker import db, ledger, settings
from tracker.models import Region
from tracker.timeutil import local_date, utcnow


def _peak_mb() -> float:
    """This process's peak resident memory. VmHWM, not ``ru_maxrss``: Linux carries ``ru_maxrss`` over
    ``exec`` from the forking parent, so a child of a large parent would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _app(url: str, folder: str):
    return create_app(Config({"DATABASE_URL": url, "SECRET_KEY": "bench"}, instance_path=folder))


def export(args) -> dict:
    app = _app(args.database_url, str(Path(args.out).parent / "instance"))
    with app.app_context():
        s: Session = db.session()
        region = s.get(Region, args.region)
        started, cpu = time.perf_counter(), time.process_time()
        summary = ledger.export(s, region, args.month, Path(args.out), today=local_date(utcnow()),
                                settings=settings.time_settings(s))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"seconds": seconds, "cpu_seconds": cpu, "rows": summary.rows, "sheets": summary.sheets}


def xlsx_floor(args) -> dict:
    """The same rows (read from the ledger's CSV) written by XlsxWriter from a list: strings as strings,
    in constant_memory mode like the export, with one cell format — the least an XLSX of them costs."""
    with open(args.csv, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    started, cpu = time.perf_counter(), time.process_time()
    book = xlsxwriter.Workbook(args.out, {"constant_memory": True, "strings_to_numbers": False,
                                          "strings_to_formulas": False, "strings_to_urls": False})
    sheet = book.add_worksheet("整改台账")
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if value:
                sheet.write_string(r, c, value)
    book.close()
    return {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu, "rows": len(rows) - 2}


def baseline(args) -> dict:
    """Python with the app imported and connected: what every process holds before any work."""
    app = _app(args.database_url, "/tmp/bench-baseline")
    with app.app_context():
        db.session().get(Region, 1)
    return {"seconds": 0.0, "rows": 0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["export", "xlsx-floor", "baseline"])
    parser.add_argument("--database-url")
    parser.add_argument("--region", type=int)
    parser.add_argument("--month", default=dt.date.today().strftime("%Y-%m"))
    parser.add_argument("--csv")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    result = {"export": export, "xlsx-floor": xlsx_floor, "baseline": baseline}[args.command](args)
    result["peak_mb"] = _peak_mb()
    # A large export writes its rows' XML in a process of its own (``ledger._Writer``): its CPU time and
    # peak (an upper bound: the peak of this process when it started is carried over ``exec``).
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["children_cpu_seconds"] = children.ru_utime + children.ru_stime
    result["children_peak_mb"] = children.ru_maxrss / 1024
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
