"""Specification of watchdog.logtxt: OpenRL's text log parser and its tail."""

from __future__ import annotations

import math

import pytest

from watchdog.errors import InputError
from watchdog.logtxt import LogTxtTail, parse_log_txt, torn_line_warning
from watchdog.signals import STEP_REWARD, VALUE_LOSS

BLOCK = """\
2025-11-07 17:40:53,572 [INFO] Episode: {n}/{m}
2025-11-07 17:41:24,260 [INFO] 
\taverage_step_reward: {r}
\tpush_reward: 1.6e-05

2025-11-07 17:41:24,268 [INFO] 
\tvalue_loss: {v}
\tratio: 0.99

"""
EPISODE = "2025-11-07 17:41:51,124 [INFO] Episode: {n}/{m}\n"


def test_real_log_has_260_records(mapush_runs):
    res = parse_log_txt(mapush_runs / "11-07-17_cuboid" / "log.txt", steps_per_iteration=100_000)
    assert len(res.records) == 260
    assert res.total_iterations == 1300
    assert res.steps_per_iteration_known
    assert res.warnings == []
    first = res.records[0]
    assert first.iteration == 0 and first.env_steps == 100_000
    assert first.metrics[VALUE_LOSS] == 5.043357959389686
    assert first.get("value_loss") == 5.043357959389686
    assert first.metrics[STEP_REWARD] == -0.019046641886234283
    assert [r.iteration for r in res.records[:3]] == [0, 5, 10]
    assert res.records[-1].iteration == 1295 and res.records[-1].env_steps == 129_600_000
    assert all(len(r.metrics) == 14 for r in res.records)


def test_every_real_log_parses(mapush_runs):
    for log in sorted(mapush_runs.glob("*/log.txt")):
        res = parse_log_txt(log)
        assert res.records and res.warnings == [], log
        assert not res.steps_per_iteration_known
        assert res.records[0].env_steps == res.records[0].iteration + 1


def test_values_nan_inf_and_junk_lines(tmp_path):
    text = (
        "Importing module 'gym_38' (/opt/isaacgym/python/isaacgym/_bindings/linux-x86_64/gym_38.so)\n"
        "Not connected to PVD\n+++ Using GPU PhysX\nPhysics Engine: PhysX\n"
        + BLOCK.format(n=0, m=10, r="nan", v="inf")
        + "\tvalue_loss: 1.0\n"  # a metric line after the block closed: junk
        + "Traceback (most recent call last):\n"
        + BLOCK.format(n=5, m=10, r="-inf", v="NaN")
        + "2025-11-07 17:44:24,734 [INFO] Episode: 6/10\n"
    )
    p = tmp_path / "log.txt"
    p.write_text(text)
    res = parse_log_txt(p, steps_per_iteration=500)
    assert [r.iteration for r in res.records] == [0, 5]  # episode 6 has no metrics
    assert [r.env_steps for r in res.records] == [500, 3000]
    r0, r5 = res.records
    assert math.isnan(r0.metrics[STEP_REWARD]) and r0.metrics[VALUE_LOSS] == math.inf
    assert r5.metrics[STEP_REWARD] == -math.inf and math.isnan(r5.metrics[VALUE_LOSS])
    assert r0.metrics["rollout/push_reward"] == 1.6e-05 and r0.metrics["train/ratio"] == 0.99
    assert res.total_iterations == 10


def test_torn_last_line_is_ignored_with_a_warning(tmp_path):
    p = tmp_path / "log.txt"
    p.write_text(BLOCK.format(n=0, m=10, r="0.5", v="0.25").rstrip("\n") + "\n\tpolicy_loss: 0.12")
    res = parse_log_txt(p)
    (rec,) = res.records
    assert rec.metrics[VALUE_LOSS] == 0.25 and "train/policy_loss" not in rec.metrics
    assert len(res.warnings) == 1 and "torn last line" in res.warnings[0] and "\n" not in res.warnings[0]


def test_file_without_metrics_gives_no_records(tmp_path):
    p = tmp_path / "log.txt"
    p.write_text(EPISODE.format(n=0, m=3) + EPISODE.format(n=1, m=3))
    res = parse_log_txt(p)
    assert res.records == [] and res.total_iterations == 3
    (tmp_path / "empty.txt").write_bytes(b"")
    assert parse_log_txt(tmp_path / "empty.txt").records == []


def test_unreadable_file_is_one_line_input_error(tmp_path):
    with pytest.raises(InputError) as err:
        parse_log_txt(tmp_path / "missing" / "log.txt")
    msg = str(err.value)
    assert "\n" not in msg and "log.txt" in msg and "not found" in msg
    with pytest.raises(InputError):
        parse_log_txt(tmp_path)


def test_tail_returns_only_complete_episode_blocks(tmp_path):
    p = tmp_path / "log.txt"
    tail = LogTxtTail(p, steps_per_iteration=100)
    assert tail.poll() == []  # not created yet
    with open(p, "w") as f:
        f.write(BLOCK.format(n=0, m=20, r="0.1", v="0.2"))
    assert tail.poll() == []  # episode 0 may still get more lines
    with open(p, "a") as f:
        f.write(EPISODE.format(n=1, m=20) + EPISODE.format(n=2, m=20)[:25])  # torn line
    (r0,) = tail.poll()
    assert r0.iteration == 0 and r0.env_steps == 100 and r0.metrics[VALUE_LOSS] == 0.2
    with open(p, "a") as f:
        f.write(EPISODE.format(n=2, m=20)[25:])
        f.write(BLOCK.format(n=5, m=20, r="0.3", v="0.4"))
    assert tail.poll() == []
    with open(p, "a") as f:
        f.write(BLOCK.format(n=10, m=20, r="0.5", v="0.6")[:90])
    (r5,) = tail.poll()
    assert r5.iteration == 5 and r5.metrics[VALUE_LOSS] == 0.4 and r5.metrics[STEP_REWARD] == 0.3
    with open(p, "a") as f:
        f.write(BLOCK.format(n=10, m=20, r="0.5", v="0.6")[90:])
    assert tail.poll() == []
    (r10,) = tail.poll(final=True)  # the run ended: flush the open episode
    assert r10.iteration == 10 and r10.metrics[VALUE_LOSS] == 0.6
    assert tail.total_iterations == 20 and tail.warnings == []


def test_a_tail_says_and_counts_the_values_that_are_not_numbers_as_the_parser_does(tmp_path):
    """A review (session 27): the tail left a `value_loss: tensor(0.65)` out of its record without a word, and a
    watch of the run ended a plain "healthy" (replay: its input line, and exit 2). It says them as replay does, a
    new line when their count grows, and counts them (replay's ``lost_lines``)."""
    p = tmp_path / "log.txt"
    tail = LogTxtTail(p)
    p.write_text(BLOCK.format(n=0, m=20, r="0.1", v="0.2") + BLOCK.format(n=1, m=20, r="0.1", v="tensor(0.65)"))
    tail.poll()
    said = f"{p}: ignored 1 metric line(s) whose value is not a number (first: 'value_loss: tensor(0.65)')"
    assert tail.warnings == [said] and tail.bad_values == 1
    tail.poll(final=True)
    assert tail.warnings == [said]  # once
    with open(p, "a") as f:
        f.write(BLOCK.format(n=2, m=20, r="0.1", v="abc"))
    tail.poll()
    assert tail.warnings[1:] == [said.replace("ignored 1", "ignored 2")] and tail.bad_values == 2
    assert tail.bad_values == parse_log_txt(p).bad_values and tail.warnings[-1] in parse_log_txt(p).warnings


def test_a_tail_says_a_torn_last_line_at_the_end_as_the_parser_does(tmp_path):
    """Found by a review (session 27): a watch's end left a log.txt's last line without its newline out without a word
    (replay says it). The tail says it at its final poll, once, as the parser does; before, it waits for the rest."""
    p = tmp_path / "log.txt"
    p.write_text(BLOCK.format(n=0, m=20, r="0.1", v="0.2") + "value_loss: 0.3")  # the run died mid-line
    tail = LogTxtTail(p)
    tail.poll()
    assert tail.warnings == []  # still being written, perhaps
    tail.poll(final=True)
    tail.poll(final=True)
    assert tail.warnings == parse_log_txt(p).warnings == [torn_line_warning(p, "value_loss: 0.3")]


def test_tail_matches_one_shot_parse_on_real_log(mapush_runs, tmp_path):
    data = (mapush_runs / "11-03-16_cuboid" / "log.txt").read_bytes()
    whole = parse_log_txt(mapush_runs / "11-03-16_cuboid" / "log.txt", steps_per_iteration=10_000)
    p = tmp_path / "log.txt"
    p.write_bytes(b"")
    tail = LogTxtTail(p, steps_per_iteration=10_000)
    got = []
    chunk = 7919  # odd size: cuts lines and blocks everywhere
    for i in range(0, len(data), chunk):
        with open(p, "ab") as f:
            f.write(data[i : i + chunk])
        got.extend(tail.poll())
    got.extend(tail.poll(final=True))
    assert len(got) == len(whole.records) == 2000
    assert [r.to_dict() for r in got] == [r.to_dict() for r in whole.records]


def test_a_value_that_is_not_a_number_bounds_the_replays_verdict(mapush_runs, tmp_path, capsys):
    """A helper's audit (session 22): `value_loss: abc` in a real log.txt was left out with a warning and the run
    replayed a plain HEALTHY, exit 0; the value lost may have been the one that mattered."""
    from watchdog.cli import main

    run = tmp_path / "run"
    run.mkdir()
    lines = (mapush_runs / "11-07-17_cuboid" / "log.txt").read_text().splitlines(keepends=True)
    at = [i for i, line in enumerate(lines) if line.strip().startswith("value_loss:")][100:102]
    for i in at:
        lines[i] = lines[i].split(":")[0] + ": abc\n"
    (run / "log.txt").write_text("".join(lines))
    assert parse_log_txt(run / "log.txt").bad_values == 2
    assert main(["replay", str(run)]) == 2
    assert "HEALTHY (without 2 damaged lines of its log.txt, whose values are lost)" in capsys.readouterr().out
