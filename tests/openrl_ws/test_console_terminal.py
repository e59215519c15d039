"""The main command as a person sees it: in a terminal (a pseudo-terminal) a live footer with an ETA
and no third-party noise; in a log (a pipe) a status line every N iterations, also with an ETA."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from watchdog.eventlog import read_events

REPO = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
NOISE = ("Gym has been unmaintained", "FutureWarning", "DeprecationWarning", "Expected parameter loc", "Traceback")
# 20 iterations of 8 envs x 16 steps; one NaN batch at iteration 12 crashes OpenRL's update
SHORT = ["--watchdog", "--inject", "nan@12", "--num_envs", "8", "--episode_length", "16", "--train_timesteps", "2560",
         "--hidden_size", "32", "--ppo_epoch", "2"]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "PYTHONWARNINGS")}
    env["TERM"] = "xterm-256color"
    env["COLUMNS"], env["LINES"] = "100", "30"
    return env


def run_in_terminal(args: list[str], timeout: float = 180) -> tuple[int, str]:
    """Run train.py with stdout and stderr on a pseudo-terminal; (exit code, everything it showed)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    proc = subprocess.Popen([sys.executable, str(REPO / "openrl_ws" / "train.py"), *args], cwd=REPO, env=_env(),
                            stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return code, b"".join(chunks).decode("utf-8", "replace")


def test_terminal_shows_a_live_footer_with_eta_alerts_and_a_summary_without_noise(tmp_path):
    run_dir = tmp_path / "run"
    code, raw = run_in_terminal([*SHORT, "--run_dir", str(run_dir)])
    text = ANSI.sub("", raw)
    assert code == 0, text[-3000:]
    assert "\x1b[" in raw  # colours and cursor movement: a live display, not plain lines
    footer = re.findall(r"(\d+)/20 it  [\d,]+ env steps  [\d,.?]+ steps/s  ETA (\d+:\d\d:\d\d|\?)", text)
    assert footer and footer[-1][0] == "20", text[-3000:]
    assert any(eta != "?" for _, eta in footer) and "elapsed" in text and "state " in text
    for noise in NOISE:
        assert noise not in text, noise
    # the crash is one sentence, the alarm explains, the rollback is named, the summary closes
    flat = " ".join(text.split())  # sentences wrap at the terminal's width
    assert re.search(r"crashed on non-finite numbers( in the [a-z ]+)? \(ValueError\)", flat)
    assert "watchdog: alarm at it 12" in text and "must be finite" in text and "cause" in text
    assert "rolled back #1" in text and "finished: 20 iterations, 2,560 env steps" in text
    squeezed = re.sub(r"[\s│]", "", text)  # long paths fold inside the summary's box
    assert "eventlog" in squeezed and str(run_dir / "watchdog_events.jsonl") in squeezed
    failed, = [e for e in read_events(run_dir / "watchdog_events.jsonl").events if e["event"] == "iteration_failed"]
    assert "Expected parameter loc" in failed["error"] and failed["iteration"] == 12  # the full error is kept


def test_plain_output_has_a_status_line_every_n_iterations_with_eta(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, str(REPO / "openrl_ws" / "train.py"), *SHORT, "--run_dir", str(run_dir),
                           "--status_every", "5"], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "\x1b[" not in out
    status = [line for line in out.splitlines() if re.match(r"it \d+ \(\d+/20\) \|", line)]
    assert [line.split(" |")[0] for line in status] == ["it 0 (1/20)", "it 5 (6/20)", "it 10 (11/20)", "it 15 (16/20)",
                                                        "it 19 (20/20)"]
    assert all("ETA" in line and "steps/s" in line and "elapsed" in line for line in status)
    assert "[watchdog] ALARM it 12" in out and "[watchdog] ITERATION_FAILED it 12" in out
    assert "finished: 20 iterations" in out and re.search(r"\n  rollback #1: it 12 -> it \d+ \(.*\): \[nonfinite\]", out)
    for noise in NOISE:
        assert noise not in out + proc.stderr, noise
