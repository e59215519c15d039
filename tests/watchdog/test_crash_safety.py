"""SIGKILL a real watched training run at random moments: what is on disk stays usable.

One run directory, several lives: each life resumes from the newest stable checkpoint and is
killed (``kill -9``: no ``finally``, no flush) at a moment drawn from a fixed seed, one of them
while a stable checkpoint is being written. After every kill: each checkpoint directory on disk
loads and verifies, the interrupted write left only a hidden ``.tmp-`` directory (never a torn
``stable_*`` one), and the event log reads with at most a torn-last-line warning. A last life
resumes from the newest stable checkpoint and finishes with exit 0.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from watchdog.checkpoints import CheckpointStore
from watchdog.eventlog import EVENTS_FILENAME, EventTail, read_events

REPO = Path(__file__).resolve().parents[2]
SMALL = ["--num_envs", "8", "--episode_length", "32", "--ppo_epoch", "2", "--hidden_size", "32"]
SEED = 20261125
ITERS = 16  # enough that a life resumed after a late random kill still writes a checkpoint to catch
TORN_TAIL = "last line is incomplete"


def start(run_dir: Path, wd_cfg: Path, checkpoint: Path | None, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "openrl_ws/train.py", *SMALL, "--watchdog", "--watchdog_config", str(wd_cfg),
           "--run_dir", str(run_dir), "--train_timesteps", str(8 * 32 * ITERS)]
    if checkpoint is not None:
        cmd += ["--checkpoint", str(checkpoint)]
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONWARNINGS": "ignore"})


def kill_after_iteration(proc: subprocess.Popen, tail: EventTail, iteration: int, delay: float) -> None:
    """SIGKILL once this life has logged ``iteration`` and ``delay`` more seconds have passed."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if any(e["event"] == "metrics" and e["iteration"] >= iteration for e in tail.poll()):
            time.sleep(delay)
            break
        time.sleep(0.01)
    assert proc.poll() is None, "training ended before the planned kill"
    proc.kill()


def kill_while_writing_checkpoint(proc: subprocess.Popen, ckpt_root: Path) -> str:
    """Freeze the process as soon as a ``.tmp-`` checkpoint dir appears; SIGKILL it if still there.

    SIGSTOP first, so the kill lands inside the write window (a small checkpoint is written in
    milliseconds); if the rename already happened, let it go on and wait for the next one.
    """
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        tmp = [n for n in _names(ckpt_root) if n.startswith(".tmp-")]
        if tmp:
            proc.send_signal(signal.SIGSTOP)
            still = [n for n in _names(ckpt_root) if n.startswith(".tmp-")]
            if still:
                proc.kill()
                return still[0]
            proc.send_signal(signal.SIGCONT)
        time.sleep(0.0005)
    raise AssertionError("no checkpoint write was caught in flight")


def _names(root: Path) -> list[str]:
    try:
        return os.listdir(root)
    except FileNotFoundError:
        return []


def check_after_kill(run_dir: Path, torn_before: int) -> tuple[Path, int]:
    """Every checkpoint dir verifies; the event log is intact but for a torn tail. Returns the newest stable."""
    root = run_dir / "checkpoints" / "watchdog"
    on_disk = [n for n in _names(root) if not n.startswith(".")]
    store = CheckpointStore(root)  # also clears the killed writer's .tmp-/.trash- leftovers
    listed = store.list()
    assert sorted(c.tag for c in listed) == sorted(on_disk)  # no half-written stable_* dir anywhere
    for ckpt in listed:
        state, meta = store.load(ckpt.path)  # sha256 + weights_only + finite, or CheckpointError
        assert meta["tag"] == ckpt.tag and state["models"]
    assert not [n for n in _names(root) if n.startswith((".tmp-", ".trash-"))]

    result = read_events(run_dir / EVENTS_FILENAME)
    torn = [w for w in result.warnings if TORN_TAIL in w]
    junk = [w for w in result.warnings if TORN_TAIL not in w]
    assert len(torn) <= 1 and len(junk) <= torn_before, result.warnings  # an earlier torn tail becomes one junk line
    assert result.events and result.events[0]["event"] == "start"
    latest = store.latest_stable()
    assert latest is not None
    return latest.path, torn_before + len(torn)


def test_sigkill_at_random_moments_leaves_verifiable_checkpoints_and_resumes(tmp_path):
    rng = random.Random(SEED)
    run_dir = tmp_path / "run"
    wd_cfg = tmp_path / "wd.yaml"
    wd_cfg.write_text("policy:\n  stable_every_iters: 2\n")
    log = tmp_path / "train.log"
    ckpt_root = run_dir / "checkpoints" / "watchdog"
    started = time.monotonic()

    latest, torn = None, 0
    for moment in ("random", "checkpoint_write", "random"):
        events = run_dir / EVENTS_FILENAME
        tail = EventTail(events)
        tail.offset = events.stat().st_size if events.exists() else 0
        proc = start(run_dir, wd_cfg, latest, log)
        if moment == "random":
            kill_after_iteration(proc, tail, rng.randint(1, 5), rng.uniform(0.0, 0.25))
        else:
            leftover = kill_while_writing_checkpoint(proc, ckpt_root)
            assert (ckpt_root / leftover).is_dir()  # the interrupted write is still a hidden temp dir
        assert proc.wait(timeout=30) == -signal.SIGKILL
        latest, torn = check_after_kill(run_dir, torn)

    proc = start(run_dir, wd_cfg, latest, log)
    assert proc.wait(timeout=120) == 0, log.read_text()[-3000:]
    assert f"resumed from watchdog checkpoint {latest}" in log.read_text()
    events = read_events(run_dir / EVENTS_FILENAME).events
    assert events[-1]["event"] == "end" and events[-1]["stopped"] is False
    check_after_kill(run_dir, torn)
    assert time.monotonic() - started < 120  # ~4 process start-ups; the bound only catches hangs
