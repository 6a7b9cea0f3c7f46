"""Timing, query capture and the printed figure: each benchmark's result is shown beside the floor it
is measured against, from the same run, so the ratio holds on a noisy machine."""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import Engine, event


@dataclass
class Stats:
    """Samples of one measurement, in seconds."""

    samples: list[float]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def timed(fn: Callable[[], object], repeat: int, warmup: int = 1) -> Stats:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(max(1, repeat)):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return Stats(samples)


@dataclass
class Floor:
    name: str
    value: float  # seconds (or the figure's unit)


@dataclass
class Figure:
    """One result: p50/p95 (or a single value), in ``unit``, with its floors."""

    group: str
    name: str
    stats: Stats | None = None
    value: float | None = None  # for single figures (requests/s, MB, seconds of one run)
    unit: str = "ms"
    floors: list[Floor] = field(default_factory=list)
    note: str = ""
    higher_is_better: bool = False

    @property
    def main(self) -> float:
        return self.stats.p50 if self.stats is not None else float(self.value or 0)

    def ratio(self, floor: Floor) -> float:
        if not floor.value or not self.main:
            return float("nan")
        return floor.value / self.main if self.higher_is_better else self.main / floor.value

    def _show(self, seconds: float) -> str:
        if self.unit == "ms":
            return f"{seconds * 1000:.1f} ms"
        if self.unit == "s":
            return f"{seconds:.2f} s"
        return f"{seconds:.1f} {self.unit}"

    def describe(self) -> str:
        if self.stats is not None:
            head = f"p50 {self._show(self.stats.p50)}  p95 {self._show(self.stats.p95)}  (n={len(self.stats.samples)})"
        else:
            head = self._show(self.main)
        floors = "; ".join(f"{f.name} {self._show(f.value)} → ×{self.ratio(f):.1f}" for f in self.floors)
        note = f"  [{self.note}]" if self.note else ""
        return f"{self.group:<8} {self.name:<44} {head}" + (f"  | floor: {floors}" if floors else "") + note

    def as_json(self) -> dict:
        return {"group": self.group, "name": self.name, "unit": self.unit, "note": self.note,
                "p50": self.stats.p50 if self.stats else None, "p95": self.stats.p95 if self.stats else None,
                "samples": len(self.stats.samples) if self.stats else None, "value": self.value,
                "floors": [{"name": f.name, "value": f.value, "ratio": self.ratio(f)} for f in self.floors]}


@contextlib.contextmanager
def captured_queries(engine: Engine) -> Iterator[list[tuple[str, object]]]:
    """Every statement (and its parameters) sent through ``engine`` inside the block."""
    found: list[tuple[str, object]] = []

    def _record(_conn, _cursor, statement, parameters, _context, executemany):
        if not executemany:
            found.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", _record)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", _record)


def replay(engine: Engine, queries: list[tuple[str, object]]) -> Callable[[], None]:
    """A callable that sends the same read statements straight to the driver and fetches every row:
    the database's own share of a page, without the ORM, the view or the template."""
    reads = [(sql, params) for sql, params in queries if sql.lstrip().upper().startswith(("SELECT", "WITH"))]

    def run() -> None:
        with engine.connect() as conn:
            cursor = conn.connection.driver_connection.cursor()
            for sql, params in reads:
                cursor.execute(sql, params)
                cursor.fetchall()
            cursor.close()
            conn.rollback()

    return run
