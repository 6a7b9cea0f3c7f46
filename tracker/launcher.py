"""``make run``'s launcher: the web server and the scheduler side by side, stopped together.

``python -m tracker.launcher --port 5000`` starts gunicorn and ``tracker scheduler run`` as child
processes. Ctrl-C, SIGTERM or SIGHUP stops both; when either one exits, the other is stopped too (a
web server without its scheduler, or the reverse, is not a working app). Production runs the two as
separate services instead (README, Production deployment).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence

POLL_SECONDS = 0.1
GRACE_SECONDS = 20.0  # after SIGTERM, how long a child may take to stop before it is killed
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def default_commands(host: str, port: int, workers: int = 2) -> dict[str, list[str]]:
    """The two processes of the app, run with this interpreter (the virtualenv's)."""
    python = sys.executable
    return {
        "web": [python, "-m", "gunicorn", "--workers", str(workers), "--threads", "4", "--bind", f"{host}:{port}",
                "--access-logfile", "-", "tracker:create_app()"],
        "scheduler": [python, "-m", "flask", "--app", "tracker", "scheduler", "run"],
    }


def supervise(commands: Mapping[str, Sequence[str]], *, grace: float = GRACE_SECONDS,
              poll: float = POLL_SECONDS) -> int:
    """Run the commands until one exits or KeyboardInterrupt; then stop the others. An exit code.

    Each child gets a process group of its own, so a Ctrl-C in the terminal reaches only this
    launcher, which then stops every child once, with SIGTERM (their graceful shutdown).
    """
    children: dict[str, subprocess.Popen] = {}
    try:
        for name, command in commands.items():
            children[name] = subprocess.Popen(list(command), process_group=0)
        return _until_one_exits(children, poll)
    except KeyboardInterrupt:
        _say("正在停止……")
        return 0
    finally:
        stop_all(children, grace)


def _until_one_exits(children: Mapping[str, subprocess.Popen], poll: float) -> int:
    while True:
        for name, child in children.items():
            code = child.poll()
            if code is not None:
                _say(f"{name} 已退出（退出码 {code}），停止其余进程")
                return code if code >= 0 else 128 - code
        time.sleep(poll)


def stop_all(children: Mapping[str, subprocess.Popen], grace: float) -> None:
    """SIGTERM to every child still running, then wait; kill what is left after ``grace`` seconds."""
    for child in children.values():
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + grace
    try:
        for name, child in children.items():
            try:
                child.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _say(f"{name} 未在{grace:.0f}秒内停止，强制结束")
                child.kill()
                child.wait()
    except KeyboardInterrupt:  # a second Ctrl-C: do not wait any longer
        for child in children.values():
            if child.poll() is None:
                child.kill()
        raise


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP stop the launcher as Ctrl-C does (in the main thread)."""
    previous = {sig: signal.signal(sig, _interrupt) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _say(message: str) -> None:
    print(f"[launcher] {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None, commands: Mapping[str, Sequence[str]] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tracker.launcher", description="启动网站和调度进程")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn 工作进程数")
    args = parser.parse_args(argv)
    with stop_on_signals():
        return supervise(commands or default_commands(args.host, args.port, args.workers))


if __name__ == "__main__":
    sys.exit(main())
