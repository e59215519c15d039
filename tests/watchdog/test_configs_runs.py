"""Real healthy runs in configurations the other data lacks (tests/data/configs, sessions 20 to 22): no alarm, no
rollback, no run ending in ``warning``. Four kinds of them were false alarms before (the folder's README has the numbers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchdog.replay import iter_run_dirs, replay_run

DATA = Path(__file__).resolve().parents[1] / "data" / "configs"
RUNS = [p.relative_to(DATA).as_posix() for p in iter_run_dirs(DATA)]


def test_every_run_in_the_folder_is_found():
    assert len(RUNS) == 19 and {r.split("/")[0] for r in RUNS} == {"sb3", "rsl_rl", "skrl", "rl_games"}


@pytest.mark.parametrize("run", RUNS)
def test_a_healthy_run_in_a_new_configuration_replays_healthy(run):
    report = replay_run(DATA / run)
    said = [(e["event"], e["iteration"], e.get("detector")) for e in report.events
            if e["event"] in ("alarm", "rollback", "stop") or (e["event"] == "warning" and not e.get("advisory"))]
    assert report.verdict == "healthy" and said == [] and report.first_nonfinite is None, said
