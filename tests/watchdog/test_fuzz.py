"""Property tests for the readers of user input: log.txt, the event log, the YAML configs; and for the pipeline
on any record stream a log can hold.

Each reader, given valid input, returns exactly what was written; given damaged input (cut
short, bits flipped, unicode junk, NaN/Inf spellings, wrong types, huge numbers) it either
returns what is still valid or raises a one-line ``WatchdogError``: never another exception,
never a hang. ``bench/fuzz_long.py`` runs the same properties with many more examples.
(The TensorBoard reader has its own property test in ``test_tfevents.py``.)
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from watchdog.config import (MAX_EPISODE_LENGTH, MAX_HIDDEN_SIZE, PPOConfig, WatchdogConfig, load_ppo_config,
                             load_watchdog_config)
from watchdog.errors import WatchdogError
from watchdog.eventlog import EventLog, make_event, read_events
from watchdog.logtxt import parse_log_txt
from watchdog.signals import normalize_key
from watchdog.tfevents import ScalarWriter, read_run_scalars

EXAMPLES = int(os.environ.get("WATCHDOG_FUZZ_EXAMPLES", "100"))  # bench/fuzz_long.py raises it
MAX_SECONDS = 30.0  # one example; the readers take milliseconds: only a hang (or a loaded CI box) gets near it
# CI runs the same examples every time (a red CI must be reproducible); the long fuzz run
# (bench/fuzz_long.py sets WATCHDOG_FUZZ_EXAMPLES) explores with fresh random examples.
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,  # failures print their example
                derandomize="WATCHDOG_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow])
_SCRATCH = Path(tempfile.mkdtemp(prefix="watchdog-fuzz-"))
CALLS: dict[str, int] = {}  # reader calls made, for bench/fuzz_long.py


def write(name: str, data: bytes) -> Path:
    path = _SCRATCH / name
    path.write_bytes(data)
    return path


def call(fn, *args):
    """``fn(*args)``, or the WatchdogError it raised (checked to be one line); timed."""
    CALLS[fn.__name__] = CALLS.get(fn.__name__, 0) + 1
    start = time.perf_counter()
    try:
        result = fn(*args)
    except WatchdogError as err:
        text = str(err)
        assert "\n" not in text and text == text.strip() and text, repr(text)
        result = err
    assert time.perf_counter() - start < MAX_SECONDS, f"{fn.__name__} took {time.perf_counter() - start:.1f} s"
    return result


# --------------------------------------------------------------------------- damage


@st.composite
def damaged(draw, data: bytes) -> bytes:
    """``data`` cut short, with flipped bits, and/or with junk spliced in."""
    out = bytearray(data)
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["truncate", "flip", "insert", "delete"]))
        pos = draw(st.integers(0, len(out)))
        if kind == "truncate":
            del out[pos:]
        elif kind == "flip" and out:
            i = min(pos, len(out) - 1)
            out[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            out[pos:pos] = draw(JUNK)
        elif kind == "delete":
            del out[pos:pos + draw(st.integers(1, 50))]
    return bytes(out)


JUNK = st.one_of(
    st.binary(max_size=40),
    st.text(max_size=20).map(lambda s: s.encode("utf-8")),
    st.sampled_from([b"NaN", b"-Infinity", b"inf", b"1e99999", b"-0", b"\x00", b"\xff\xfe", b"\r", b"\n", b"\t",
                     b"\xe2\x80\xa8", b"99999999999999999999999999", b"{", b"}", b'"', b"\\", b": ", b"[INFO]",
                     "\u0661\u0662".encode(), "\U0001F525".encode()]),
)
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e308, -1e-308, 5e-324]))


# --------------------------------------------------------------------------- log.txt

METRIC_NAMES = ["value_loss", "policy_loss", "dist_entropy", "critic_grad_norm", "average_step_rewards",
                "ratio", "Learner_0/value_loss"]
HEAD = "2025-11-07 17:40:53,572 [INFO] "


@st.composite
def log_txt(draw) -> tuple[str, list[tuple[int, dict[str, float]]]]:
    """An OpenRL log.txt (as openrl_ws/run_logger.py writes it) and the records it holds."""
    total = draw(st.integers(1, 10**6))
    episodes = sorted(draw(st.sets(st.integers(0, total), min_size=0, max_size=6)))
    text, records = "", []
    for n in episodes:
        names = draw(st.lists(st.sampled_from(METRIC_NAMES), min_size=1, max_size=5, unique=True))
        metrics = {name: draw(FLOATS) for name in names}
        text += f"{HEAD}Episode: {n}/{total}\n{HEAD}\n" + "".join(f"\t{k}: {v}\n" for k, v in metrics.items())
        text += draw(st.sampled_from(["", "\n", "Traceback (most recent call last):\n", "+++ Using GPU PhysX\n"]))
        records.append((n, {normalize_key(k): v for k, v in metrics.items()}))
    return text, records


def same_metrics(got: dict[str, float], want: dict[str, float]) -> bool:
    return got.keys() == want.keys() and all(
        (math.isnan(a) and math.isnan(b)) or a == b for a, b in ((got[k], want[k]) for k in want))


@FUZZ
@given(log=log_txt(), steps=st.one_of(st.none(), st.integers(1, 10**12)))
def test_log_txt_round_trips(log, steps):
    text, records = log
    res = call(lambda path: parse_log_txt(path, steps_per_iteration=steps), write("log.txt", text.encode()))
    assert [r.iteration for r in res.records] == [n for n, _ in records]
    assert all(same_metrics(r.metrics, m) for r, (_, m) in zip(res.records, records))
    assert [r.env_steps for r in res.records] == [(n + 1) * (steps or 1) for n, _ in records]
    assert res.warnings == []


@FUZZ
@given(log=log_txt(), cut=st.floats(0, 1))
def test_log_txt_cut_short_keeps_every_complete_record(log, cut):
    text, records = log
    data = text.encode()
    res = call(parse_log_txt, write("log.txt", data[: int(len(data) * cut)]))
    assert not isinstance(res, WatchdogError)
    # every record but the last read one was complete: it equals the original
    for rec in res.records[:-1]:
        original = dict(records)[rec.iteration]
        assert same_metrics(rec.metrics, original)
    assert [r.iteration for r in res.records] == [n for n, _ in records][: len(res.records)]


@FUZZ
@given(data=log_txt().flatmap(lambda log: damaged(log[0].encode())))
def test_damaged_log_txt_never_raises_anything_else(data):
    res = call(parse_log_txt, write("log.txt", data))
    if not isinstance(res, WatchdogError):
        assert all(isinstance(v, float) for r in res.records for v in r.metrics.values())
        assert all("\n" not in w for w in res.warnings)


# --------------------------------------------------------------------------- the event log

EVENT_FIELDS = st.dictionaries(
    st.text(min_size=1, max_size=10).filter(lambda k: k not in ("time", "event", "iteration", "env_steps", "state")),
    st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), FLOATS, st.text(max_size=20)),
                 lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                 max_leaves=8),
    max_size=4,
)


@st.composite
def event_log(draw) -> tuple[bytes, list[dict]]:
    """Bytes of a log written by EventLog, and the events as a reader should see them."""
    path = _SCRATCH / "write.jsonl"
    path.unlink(missing_ok=True)
    with EventLog(path) as log:
        for i in range(draw(st.integers(0, 6))):
            event = make_event(draw(st.sampled_from(["metrics", "warning", "alarm", "rollback", "restart"])),
                               iteration=i, env_steps=draw(st.integers(0, 10**15)), state="healthy",
                               **draw(EVENT_FIELDS))
            log.write({**event, "time": 1.7e9 + i})  # fixed: the drawn damage must not depend on the clock
    data = path.read_bytes()
    return data, [json.loads(line) for line in data.splitlines()]


@FUZZ
@given(log=event_log(), cut=st.floats(0, 1))
def test_event_log_cut_short_reads_the_complete_lines_and_warns_once(log, cut):
    data, events = log
    kept = data[: int(len(data) * cut)]
    res = call(read_events, write("events.jsonl", kept))
    complete = kept.count(b"\n")
    assert res.events == events[:complete]
    torn = not kept.endswith(b"\n") and kept != b""
    assert len(res.warnings) == int(torn) and (not torn or "incomplete" in res.warnings[0])


@FUZZ
@given(data=event_log().flatmap(lambda log: damaged(log[0])))
def test_damaged_event_log_never_raises_anything_else(data):
    res = call(read_events, write("events.jsonl", data))
    assert not isinstance(res, WatchdogError)
    assert all(isinstance(e, dict) and isinstance(e["event"], str) for e in res.events)
    assert all("\n" not in w for w in res.warnings)
    intact = [line for line in data.split(b"\n")[:-1] if _is_event_line(line)]
    assert len(res.events) == len(intact)


def _is_event_line(line: bytes) -> bool:
    try:
        obj = json.loads(line.decode("utf-8"))
    except ValueError:
        return False
    return isinstance(obj, dict) and isinstance(obj.get("event"), str)


# --------------------------------------------------------------------------- YAML configs

LOADERS = [load_watchdog_config, load_ppo_config]
ANY_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**40, 10**40), FLOATS, st.text(max_size=15),
              st.sampled_from(["nan", ".nan", "inf", "-.inf", "1e999", "0x10", "yes", "~", "1_000"])),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _keys(model) -> list[str]:
    return list(model.model_fields)


def _wd_mapping():
    sections = {name: list(f.annotation.model_fields) for name, f in WatchdogConfig.model_fields.items()
                if isinstance(f.annotation, type) and hasattr(f.annotation, "model_fields")}
    section = st.sampled_from(sorted(sections)).flatmap(lambda s: st.tuples(st.just(s), st.dictionaries(
        st.sampled_from(sections[s]) | st.text(max_size=8), ANY_VALUE, max_size=3) | ANY_VALUE))
    return st.lists(section, max_size=4).map(dict) | st.dictionaries(st.just("action"), ANY_VALUE)


MAPPINGS = st.one_of(
    st.dictionaries(st.sampled_from(_keys(PPOConfig)) | st.text(max_size=8), ANY_VALUE, max_size=5),
    _wd_mapping(),
    ANY_VALUE,
)


def _yaml_bytes(value) -> bytes:
    return yaml.safe_dump(value, allow_unicode=True).encode("utf-8")


@FUZZ
@given(data=MAPPINGS.map(_yaml_bytes), loader=st.sampled_from(LOADERS))
def test_config_from_random_mapping_loads_or_is_a_one_line_error(data, loader):
    res = call(loader, write("cfg.yaml", data))
    assert isinstance(res, (WatchdogError, WatchdogConfig, PPOConfig))


@FUZZ
@given(data=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                      damaged(Path(__file__).resolve().parents[2].joinpath("cfgs/watchdog.yaml").read_bytes()),
                      damaged(Path(__file__).resolve().parents[2].joinpath("cfgs/ppo.yaml").read_bytes())),
       loader=st.sampled_from(LOADERS))
def test_config_from_random_or_damaged_text_loads_or_is_a_one_line_error(data, loader):
    res = call(loader, write("cfg.yaml", data))
    assert isinstance(res, (WatchdogError, WatchdogConfig, PPOConfig))


VALID_PPO = {
    "lr": st.floats(1e-9, 1, exclude_max=True), "critic_lr": st.floats(1e-9, 1, exclude_max=True),
    "max_grad_norm": st.floats(1e-9, 1e9), "use_adv_normalize": st.booleans(),
    "clip_param": st.floats(1e-6, 1, exclude_max=True), "entropy_coef": st.floats(0, 10),
    "ppo_epoch": st.integers(1, 100), "num_mini_batch": st.integers(1, 1024),
    "episode_length": st.integers(1, MAX_EPISODE_LENGTH), "hidden_size": st.integers(1, MAX_HIDDEN_SIZE),
    "layer_N": st.integers(1, 8),
    "gamma": st.floats(1e-6, 1), "gae_lambda": st.floats(0, 1), "seed": st.integers(-10**30, 10**30),
    # YAML folds the line breaks NEL/LS/PS inside a plain scalar to spaces: not ours to round-trip
    "run_dir": st.text(st.characters(blacklist_characters="\x85\u2028\u2029", blacklist_categories=("Cs",)),
                       max_size=20),
    "use_recurrent_policy": st.booleans(),
}


@FUZZ
@given(data=st.fixed_dictionaries({}, optional=VALID_PPO))
def test_a_valid_ppo_config_loads_exactly(data):
    cfg = call(load_ppo_config, write("ppo.yaml", _yaml_bytes(data)))
    assert isinstance(cfg, PPOConfig), cfg
    assert cfg.set_values() == data


# --------------------------------------------------------------------------- awkward run-dir names


@pytest.mark.parametrize("name", ["run dir with spaces", "Lauf ü ß 日本語 ✓", "  lead and tail  ", "tab\tand 🔥"])
def test_run_dir_names_with_spaces_and_unicode(tmp_path, name):
    run = tmp_path / name
    run.mkdir()
    (run / "log.txt").write_text(f"{HEAD}Episode: 0/5\n{HEAD}\n\tvalue_loss: 0.25\n", encoding="utf-8")
    with EventLog(run / "watchdog_events.jsonl") as log:
        log.write(make_event("start", iteration=0, env_steps=0, state="healthy", run_dir=str(run)))
    with ScalarWriter(run / "logs" / "value_loss" / "value_loss") as tb:
        tb.add_scalar("value_loss", 0.25, 500)

    assert parse_log_txt(run / "log.txt").records[0].metrics == {"train/value_loss": 0.25}
    assert read_events(run / "watchdog_events.jsonl").events[0]["run_dir"] == str(run)
    scalars = read_run_scalars(run).scalars
    assert list(scalars) == ["train/value_loss"] and list(scalars["train/value_loss"].values) == [0.25]


# --------------------------------------------------------------------------- regressions found by fuzzing

HUGE = "9" * 5000  # more digits than int() converts by default (sys.get_int_max_str_digits() == 4300)


def test_huge_episode_number_is_not_a_crash():
    res = call(parse_log_txt, write("log.txt", f"{HEAD}Episode: {HUGE}/1\n".encode()))
    assert not isinstance(res, Exception) and res.records == []


def test_deeply_nested_json_line_is_a_skipped_line():
    res = call(read_events, write("events.jsonl", b"[" * 100_000 + b"\n"))
    assert res.events == [] and len(res.warnings) == 1


def test_deeply_nested_yaml_is_a_one_line_error():
    assert isinstance(call(load_ppo_config, write("cfg.yaml", b"[" * 1500 + b"]" * 1500)), WatchdogError)


def test_error_message_for_an_alias_bomb_is_short():
    levels = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(6))
    err = call(load_watchdog_config, write("cfg.yaml", (levels + "trend: {signals: *g}\n").encode()))
    assert isinstance(err, WatchdogError) and len(str(err)) < 2000


def test_a_long_blank_run_in_a_metric_line_is_linear():
    """A ReDoS guard, not a speed test: the old pattern needed ~2 min on this line, the fixed one ~2 ms."""
    data = f"{HEAD}Episode: 0/1\n{HEAD}\n\ta{' ' * 200_000}b\n".encode()
    start = time.perf_counter()
    parse_log_txt(write("log.txt", data))
    assert time.perf_counter() - start < 20.0


# --- the pipeline: any record stream a log can hold -------------------------------------------

ODD_VALUES = (math.nan, math.inf, -math.inf, -1.0, 0.0, 1e300, 5e-324, 1e-300)
FRAMEWORKS = ("openrl", "sb3", "rsl_rl", "rl_games", "skrl", "cleanrl")


def _record_stream(rng) -> list:
    """A log's records: a random walk in log space (a climb, a falling return, a policy std running away, memory
    creeping and throughput falling in some), a random subset of the signals, each missing now and then, odd values
    (NaN, +-inf, negative, zero, huge, denormal), gaps, repeated iterations, and the iterations going back (a run
    resumed into its own folder, a restart from scratch)."""
    from watchdog import signals as s

    values = {  # (state) -> value, per signal
        s.VALUE_LOSS: lambda v: math.exp(v["level"]), s.CRITIC_GRAD_NORM: lambda v: math.exp(v["level"] / 2),
        s.ACTOR_GRAD_NORM: lambda v: abs(rng.normal(0.5, 0.1)), s.POLICY_LOSS: lambda v: rng.normal(0, 0.01),
        s.ENTROPY: lambda v: 2 + rng.normal(0, 0.01), s.APPROX_KL: lambda v: abs(rng.normal(0.01, 0.005)),
        s.LOG_STD_MAX: lambda v: rng.normal(0, 0.05) + v["std"], s.LOG_STD_MEAN: lambda v: rng.normal(-0.5, 0.01),
        s.STEP_REWARD: lambda v: v["reward"] / 100, s.EPISODE_RETURN: lambda v: v["reward"],
        s.POLICY_ENTROPY: lambda v: 1 + rng.normal(0, 0.01), s.CLIP_FRACTION: lambda v: abs(rng.normal(0.1, 0.02)),
        s.EXPLAINED_VARIANCE: lambda v: rng.uniform(-1, 1), s.LEARNING_RATE: lambda v: 3e-4,
        "curriculum/terrain_level": lambda v: v["task"], s.SYS_RSS_MB: lambda v: v["mem"],
        s.SYS_MEM_TOTAL_MB: lambda v: 64000.0, s.SYS_STEPS_PER_S: lambda v: v["speed"],
        s.SYS_CUDA_RESERVED_MB: lambda v: v["mem"] / 2, s.SYS_CUDA_TOTAL_MB: lambda v: 80000.0}
    keys = [k for k in values if rng.random() < 0.6] or [s.VALUE_LOSS]
    n, climbs, every = int(rng.integers(5, 700)), rng.random() < 0.4, int(rng.integers(1, 6))
    state = {"level": rng.normal(-3, 2), "reward": rng.normal(0, 10), "std": 0.0, "task": 0.0, "mem": 1000.0,
             "speed": 5000.0}
    out, it = [], int(rng.integers(0, 100))
    for i in range(n):
        r = rng.random()
        if r < 0.01 and it > 20:
            it -= int(rng.integers(1, it))
        elif r >= 0.015:  # (else the same iteration again)
            it += every if rng.random() < 0.95 else int(rng.integers(1, 300))
        late = climbs and i > 0.6 * n
        state["level"] += rng.normal(0, rng.choice([0.05, 0.3, 1.0])) + (0.15 if late else 0.0)
        state["reward"] += rng.normal(0, 0.5) - (1.0 if late else 0.0)
        state["std"] += 0.01 if late else 0.0
        state["mem"] *= 1.01 if climbs else 1.0
        state["speed"] *= 0.97 if late else 1.0
        state["task"] += 1.0 if rng.random() < 0.01 else 0.0
        metrics = {}
        for key in keys:
            if rng.random() < 0.05:
                continue
            odd = rng.random() < 0.01
            metrics[key] = float(ODD_VALUES[int(rng.integers(len(ODD_VALUES)))] if odd else values[key](state))
        out.append(s.MetricRecord(it, it * 1000, metrics))
    return out


@pytest.mark.filterwarnings("error::RuntimeWarning")  # numpy's overflow warnings on a replay's console: none
@FUZZ
@given(seed=st.integers(0, 2**32 - 1))
@example(seed=69)  # the IndexError (before ef09e31)
@example(seed=63)  # an onset after its alarm, the iterations gone back (before 23f438f)
@example(seed=70)  # replay's hindsight onset after the first alarm
@example(seed=147)
@example(seed=277)  # a reward of 1e300: numpy overflow warnings from the onset fit
def test_the_pipeline_judges_any_record_stream_and_never_dates_a_divergence_after_its_alarm(seed):
    """Found by a fuzz of session 29 (each now a test of its own): a departure ending before a gap in the log was an
    IndexError out of replay and watch; after the iterations went back, an onset was dated after its alarm and a
    rollback went "back" to a checkpoint of the abandoned stretch; replay's hindsight fit dated an onset after the
    first alarm. Replay's path (the pipeline and dispatch live runs use, each framework's settings, rollback or
    alert) on any stream: no exception (numpy's warnings included: a reward of 1e300 overflowed the onset fit's
    squares), every onset at or before its alarm, every rollback target at or before its onset, the offline onset at
    or before the first alarm."""
    import numpy as np

    from watchdog.replay import RunData, config_for_run, refine_onset, replay_records

    rng = np.random.default_rng(seed)
    records = _record_stream(rng)
    info = {"framework": FRAMEWORKS[int(rng.integers(len(FRAMEWORKS)))], "value_targets_normalized": rng.random() < 0.5}
    cfg = config_for_run(WatchdogConfig(action="alert" if rng.random() < 0.5 else "rollback"), info)
    CALLS["replay_records"] = CALLS.get("replay_records", 0) + 1
    data = RunData(records=records, source="fuzz", info=info, steps_per_iteration=1000)
    report = replay_records(data, cfg)
    for alarm in (e for e in report.events if e["event"] == "alarm" and e.get("onset_iteration") is not None):
        assert alarm["onset_iteration"] <= alarm["iteration"], alarm
    for rollback in report.would_roll_back:
        assert rollback["to_iteration"] <= rollback["onset_iteration"] <= rollback["iteration"], rollback
    if report.first_alarm is not None:
        onset = refine_onset(records, report, 1000, cfg.warmup.min_iters)
        assert onset["iteration"] <= report.first_alarm["iteration"], (onset, report.first_alarm)
