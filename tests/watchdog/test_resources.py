"""Resource watch: the sampler's keys, the memory forecast and throughput detectors, the policy's
resource channel (never a rollback), the SaveResume action on every driver, and `watchdog run`
restarting a restartable (resource) stop. Real push_lite runs: tests/openrl_ws/test_resources_train.py.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from watchdog.config import WatchdogConfig
from watchdog.detectors import MemoryForecast, NonFinite, Throughput
from watchdog.driver import VirtualDriver, carry_out
from watchdog.eventlog import EVENTS_FILENAME, read_events
from watchdog.pipeline import Watchdog
from watchdog.policy import Rollback, SaveResume, SaveStable, State, Stop
from watchdog.resources import ResourceSampler
from watchdog.session import TrainingSession
from watchdog.signals import (
    SYS_CUDA_ALLOCATED_MB,
    SYS_CUDA_PEAK_MB,
    SYS_CUDA_RESERVED_MB,
    SYS_CUDA_TOTAL_MB,
    SYS_GPU_TEMP_C,
    SYS_GPU_UTIL,
    SYS_MEM_TOTAL_MB,
    SYS_RSS_MB,
    SYS_STEPS_PER_S,
    VALUE_LOSS,
    MetricRecord,
    normalize_key,
)
from tests.watchdog.test_supervise import as_openrl_train
from watchdog.supervise import get_flag, is_recovery

REPO = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- the sampler


class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_cpu_sample_has_resident_and_machine_memory_and_steps_per_second_from_the_second_sample():
    clock = _Clock()
    sampler = ResourceSampler("cpu", clock=clock)
    first = sampler.sample(0)
    assert first[SYS_RSS_MB] > 1 and first[SYS_MEM_TOTAL_MB] >= first[SYS_RSS_MB]
    assert SYS_STEPS_PER_S not in first and not any(k.startswith("sys/cuda") or k.startswith("sys/gpu") for k in first)
    clock.now += 2.0
    assert sampler.sample(1000)[SYS_STEPS_PER_S] == pytest.approx(500.0)


def test_an_iteration_that_crashed_part_way_gives_no_steps_per_second_and_the_next_measures_from_it():
    """A crashed iteration is judged right after its first NaN batch: a whole iteration's steps over a
    few milliseconds read 550k steps/s on push_lite's console."""
    clock = _Clock()
    sampler = ResourceSampler("cpu", clock=clock)
    sampler.sample(0)
    clock.now += 1.0
    assert sampler.sample(1000)[SYS_STEPS_PER_S] == pytest.approx(1000.0)
    sampler.interrupted()
    clock.now += 0.01
    assert SYS_STEPS_PER_S not in sampler.sample(2000)
    clock.now += 1.0
    assert sampler.sample(3000)[SYS_STEPS_PER_S] == pytest.approx(1000.0)


def test_a_crashed_iteration_judged_by_a_session_carries_no_steps_per_second(tmp_path):
    session = TrainingSession(watchdog=Watchdog(_cfg()), run_dir=tmp_path, safe_name="safe",
                              resources=ResourceSampler("cpu"))
    session.capture = lambda action: {}
    session.to_state = lambda snap: {}
    session.restore_snapshot = lambda snap, action: None
    session.apply_config = lambda action: __import__("watchdog.driver", fromlist=["ConfigSwitch"]).ConfigSwitch()
    for it in range(25):  # stable checkpoints to roll back to
        session.observe(MetricRecord.from_mapping(it, 100 * (it + 1), {"value_loss": 0.1}))
    crashed = MetricRecord.from_mapping(25, 2600, {"value_loss": float("nan")})
    assert session.judge_failed(lambda: session.observe(crashed), "update", FloatingPointError("nan"))
    after = MetricRecord.from_mapping(26, 2700, {"value_loss": 0.1})
    session.observe(after)
    session.close()
    assert session.result.rollbacks == 1
    assert SYS_STEPS_PER_S not in crashed.metrics and SYS_RSS_MB in crashed.metrics
    assert after.metrics[SYS_STEPS_PER_S] > 0  # measured from the crashed one on


def test_cuda_counters_are_read_through_torch_cuda_for_a_cuda_device(monkeypatch):
    """The CUDA path on a CPU machine: torch.cuda's counters replaced by fakes (no GPU here)."""
    import torch

    mib = 1024 * 1024
    calls = []
    fake = {
        "is_available": lambda: True,
        "current_device": lambda: 0,
        "get_device_properties": lambda dev: types.SimpleNamespace(total_memory=80 * 1024 * mib),
        "memory_allocated": lambda dev: calls.append(dev) or 100 * mib,
        "memory_reserved": lambda dev: 300 * mib,
        "max_memory_allocated": lambda dev: 250 * mib,
    }
    for name, fn in fake.items():
        monkeypatch.setattr(torch.cuda, name, fn)
    monkeypatch.setitem(sys.modules, "pynvml", None)  # NVML not installed: no utilisation/temperature
    out = ResourceSampler("cuda").sample(0)
    assert (out[SYS_CUDA_ALLOCATED_MB], out[SYS_CUDA_RESERVED_MB], out[SYS_CUDA_PEAK_MB], out[SYS_CUDA_TOTAL_MB]) == (
        100, 300, 250, 80 * 1024)
    assert calls == [torch.device("cuda", 0)] and SYS_GPU_UTIL not in out


def test_nvml_adds_utilisation_and_temperature_matched_by_uuid(monkeypatch):
    import torch

    handles = {}
    nvml = types.SimpleNamespace(
        NVML_TEMPERATURE_GPU=0, nvmlInit=lambda: None,
        nvmlDeviceGetHandleByUUID=lambda uuid: handles.setdefault("uuid", uuid),
        nvmlDeviceGetHandleByIndex=lambda i: handles.setdefault("index", i),
        nvmlDeviceGetUtilizationRates=lambda h: types.SimpleNamespace(gpu=87),
        nvmlDeviceGetTemperature=lambda h, kind: 71,
    )
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda dev: types.SimpleNamespace(total_memory=1024 ** 3, uuid="abc"))
    for name in ("memory_allocated", "memory_reserved", "max_memory_allocated"):
        monkeypatch.setattr(torch.cuda, name, lambda dev: 0)
    out = ResourceSampler("cuda:1").sample(0)
    assert (out[SYS_GPU_UTIL], out[SYS_GPU_TEMP_C]) == (87.0, 71.0) and handles == {"uuid": "GPU-abc"}


def test_sys_keys_stay_as_they_are_and_are_never_tracked_as_nonfinite():
    assert normalize_key(SYS_RSS_MB) == SYS_RSS_MB and normalize_key("sys/gpu_temp_c") == "sys/gpu_temp_c"
    record = MetricRecord.from_mapping(3, 30, {"value_loss": 0.1, SYS_STEPS_PER_S: math.nan, SYS_RSS_MB: math.inf})
    assert set(record.metrics) == {"train/value_loss", SYS_STEPS_PER_S, SYS_RSS_MB}
    assert record.nonfinite_keys() == [] and record.nonfinite_keys([SYS_RSS_MB]) == []
    assert NonFinite(WatchdogConfig().nonfinite, WatchdogConfig().warmup).update(record) is None


def _fake_cgroups(root: Path, own: str, files: dict[str, str]) -> Path:
    """A fake ``/proc/self/cgroup`` (``own``) and ``/sys/fs/cgroup`` tree (``files``: path -> text) under ``root``."""
    (root / "proc" / "self").mkdir(parents=True)
    (root / "proc" / "self" / "cgroup").write_text(own)
    for path, text in files.items():
        (root / "sys" / "fs" / "cgroup" / path).parent.mkdir(parents=True, exist_ok=True)
        (root / "sys" / "fs" / "cgroup" / path).write_text(text)
    return root


MiB = 1024 * 1024
UNLIMITED_V1 = "9223372036854771712\n"


@pytest.mark.parametrize(("own", "files", "expected_mb"), [
    # v2, a Slurm step / systemd unit without a cgroup namespace: the job's limit, two levels up; the root has none
    ("0::/system.slice/job_42/step_0\n", {"system.slice/job_42/memory.max": f"{512 * MiB}\n",
                                           "system.slice/job_42/step_0/memory.max": "max\n",
                                           "system.slice/memory.max": f"{900 * MiB}\n"}, 512),
    # v2 in a container with its own cgroup namespace: its cgroup is the mount's root
    ("0::/\n", {"memory.max": f"{256 * MiB}\n"}, 256),
    # v1 (hybrid: v2 for nothing), the memory controller nested: each level's limit and the kernel's own sum
    ("5:cpu,cpuacct:/slurm/uid_0/job_7\n4:memory:/slurm/uid_0/job_7\n0::/\n",
     {"memory/memory.limit_in_bytes": UNLIMITED_V1, "memory/slurm/uid_0/memory.limit_in_bytes": f"{768 * MiB}\n",
      "memory/slurm/uid_0/job_7/memory.limit_in_bytes": UNLIMITED_V1,
      "memory/slurm/uid_0/job_7/memory.stat": f"cache 0\nhierarchical_memory_limit {768 * MiB}\n"}, 768),
    ("4:memory:/slurm/job_7\n", {"memory/slurm/job_7/memory.stat": f"hierarchical_memory_limit {300 * MiB}\n"}, 300),
    # v1 in a container without a cgroup namespace: the host's path is not under the mount; its root is the container's
    ("4:memory:/docker/0123abcd\n", {"memory/memory.limit_in_bytes": f"{384 * MiB}\n"}, 384),
])
def test_the_memory_limit_is_the_smallest_on_the_path_from_the_process_own_cgroup_to_the_root(tmp_path, own, files,
                                                                                               expected_mb):
    """Found by an audit (session 18): only the top of the tree was read, so a process in a nested cgroup (Slurm,
    systemd, Kubernetes without a cgroup namespace) was forecast against the whole machine."""
    from watchdog.resources import machine_memory_mb

    assert machine_memory_mb(_fake_cgroups(tmp_path, own, files)) == expected_mb


def test_without_any_cgroup_limit_the_machine_memory_is_the_limit(tmp_path):
    from watchdog.resources import machine_memory_mb

    machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / MiB
    assert machine_memory_mb(_fake_cgroups(tmp_path, "0::/user.slice\n", {"user.slice/memory.max": "max\n"})) == machine
    assert machine_memory_mb(tmp_path / "nothing") == machine  # no /proc, no /sys (not Linux)


# --------------------------------------------------------------------------- detectors


def _cfg(**memory) -> WatchdogConfig:
    return WatchdogConfig.model_validate({
        "memory": {"warmup_points": 2, "window_points": 5, "warn_within_iters": 30, "alarm_within_iters": 8,
                   "min_climb_mb": 16, **memory},
        "throughput": {"warmup_points": 2, "baseline_points": 5, "patience_points": 3},
    })


def _memory_verdicts(rss: list[float], **memory) -> dict[int, str]:
    det = MemoryForecast(_cfg(**memory).memory, WatchdogConfig().warmup)
    out = {}
    for i, mb in enumerate(rss):
        v = det.update(MetricRecord(i, i * 10, {SYS_RSS_MB: mb, SYS_MEM_TOTAL_MB: 1000.0}))
        if v is not None:
            out[i] = v.level
    return out


FLAT = [300, 350] + [400 + (i % 3) for i in range(40)]  # start-up growth (the 2 warm-up points), then flat
LEAK = [405.0] * 5 + [405 + 25 * k for k in range(1, 40)]  # +25 MiB per iteration from iteration 5


@pytest.mark.parametrize(("rss", "limit", "expected"), [
    (FLAT, None, {}),                                            # flat after warm-up: never, at any limit
    (FLAT, 420.0, {}),
    (LEAK, None, {6: "warning", 20: "alarm"}),                   # 1000 MiB machine: 30 iterations out, then 8
    (LEAK, 800.0, {6: "warning", 12: "alarm"}),                  # a configured limit comes sooner
    ([400.0] * 10, 350.0, {2: "alarm"}),                         # already above the limit: at once after warm-up
])
def test_memory_forecast_warns_then_alarms_before_the_limit(rss, limit, expected):
    verdicts = _memory_verdicts(rss, rss_limit_mb=limit)
    firsts = {}
    for i, level in verdicts.items():
        firsts.setdefault(level, i)
    assert {i: level for level, i in firsts.items()} == expected
    if "alarm" in firsts:  # every point from the first alarm on is still under the limit it forecasts
        assert rss[firsts["alarm"]] < (limit or 1000.0) or expected == {2: "alarm"}


def _default_memory_verdicts(rss: list[float], limit: float) -> list[tuple[int, str, str]]:
    det = MemoryForecast(WatchdogConfig().memory, WatchdogConfig().warmup)
    verdicts = (det.update(MetricRecord(i, i * 10, {SYS_RSS_MB: mb, SYS_MEM_TOTAL_MB: limit})) for i, mb in enumerate(rss))
    return [(v.iteration, v.level, v.reason) for v in verdicts if v is not None]


@pytest.mark.parametrize(("step_mb", "headroom_mb"), [(256, 6000), (1024, 20000), (1024, 2400), (2048, 5000), (512, 1200)])
def test_memory_that_rose_once_and_stayed_flat_is_no_leak(step_mb, headroom_mb):
    """A cache or buffer allocated once (a step, flat before and after) with the default settings. Found by an audit
    (session 20): one least-squares slope over the window read a 1 GiB step as +46 MiB/iteration, a warning with
    20 GiB left and an alarm (a stop, by default) with 2.4 GiB left; `watchdog run` restarted the healthy run and
    it was stopped again at the same point of each process until the restart budget was spent."""
    rss = [2000.0] * 60 + [2000.0 + step_mb] * 100
    assert _default_memory_verdicts(rss, 2000.0 + step_mb + headroom_mb) == []


@pytest.mark.parametrize("leak_mb", [20, 40, 80])
def test_a_leak_that_begins_late_is_forecast_at_its_present_speed(leak_mb):
    """Flat for 100 iterations, then leaking ``leak_mb`` a iteration towards a 3000 MiB limit: the first verdict
    comes within 15 iterations of the leak's start and its time to out-of-memory is the true one (the window's
    slope across the leak's start forecast it 8-17x too slow until session 20: 'about 350 iterations' with 21 left)."""
    rss = [1000.0] * 100 + [1000.0 + leak_mb * k for k in range(1, 200)]
    oom = next(i for i, mb in enumerate(rss) if mb >= 3000)
    verdicts = [v for v in _default_memory_verdicts(rss[:oom], 3000.0)]
    first, level, reason = verdicts[0]
    assert first <= 115 and f"climbing +{leak_mb:.1f} MiB/iteration" in reason
    assert float(reason.split("out of memory in about ")[1].split()[0]) == pytest.approx(oom - first, abs=1)
    assert any(lvl == "alarm" for _, lvl, _ in verdicts)  # and an alarm before the limit


@pytest.mark.parametrize("used", [7000.0, 7500.0])
def test_flat_memory_with_jitter_near_its_limit_is_no_leak_and_a_jittery_leak_still_alarms(used):
    """A review of session 29: a flat resident memory with +-30 MiB of jitter at 7,000-7,500 of 8,000 MiB read as a
    climb of +2-10 MiB/iteration from the window's newest third alone: 58-82 warnings in 3,000 iterations and an
    alarm (a stop, by default). A climb must stand out of the memory's own jitter now. A leak of 5 MiB/iteration
    with the same jitter is still an alarm before its out-of-memory."""
    import random

    rng = random.Random(3)
    flat = _default_memory_verdicts([used + rng.gauss(0, 30) for _ in range(3000)], 8000.0)
    assert not [v for v in flat if v[1] == "alarm"] and len(flat) <= 2
    leak = [4000.0 + 5 * i + rng.gauss(0, 30) for i in range(800)]
    oom = next(i for i, mb in enumerate(leak) if mb >= 8000)
    assert any(level == "alarm" for it, level, _ in _default_memory_verdicts(leak[:oom], 8000.0))


def test_memory_forecast_reads_cuda_reserved_against_the_device_total():
    det = MemoryForecast(_cfg().memory, WatchdogConfig().warmup)
    verdict = None
    for i in range(12):
        rec = MetricRecord(i, i, {SYS_CUDA_RESERVED_MB: 1000 + (500 * max(0, i - 3)), SYS_CUDA_TOTAL_MB: 8000.0,
                                  SYS_RSS_MB: 400.0, SYS_MEM_TOTAL_MB: 64000.0})
        verdict = det.update(rec) or verdict
    assert verdict.signal == SYS_CUDA_RESERVED_MB and verdict.level == "alarm" and verdict.threshold == 8000
    assert "CUDA memory reserved by torch" in verdict.reason and "out of memory in about" in verdict.reason


def _throughput_verdicts(rates: list[float]) -> dict[int, float]:
    det = Throughput(_cfg().throughput, WatchdogConfig().warmup)
    out = {}
    for i, rate in enumerate(rates):
        v = det.update(MetricRecord(i, i, {SYS_STEPS_PER_S: rate}))
        if v is not None:
            out[i] = v.onset_hint
    return out


@pytest.mark.parametrize(("rates", "expected"), [
    ([900, 700, 800, 760, 880, 790, 820] * 5, {}),                               # noise, no drop
    ([900] * 12 + [300] * 6, {14: 12, 15: 12, 16: 12, 17: 12}),                  # a third of the rate: 3 points
    ([900] * 12 + [300, 300, 900, 300, 300, 900], {}),                          # patience resets
    ([1000] * 10 + [1000 - 60 * k for k in range(1, 15)], {20: 18, 21: 18, 22: 18, 23: 18}),  # a slow slide
])
def test_throughput_warns_below_half_the_settled_rate_for_patience_points(rates, expected):
    assert _throughput_verdicts(rates) == expected


def _speed_records(start: int, rates: list[float], value_loss: float = 0.05) -> list[MetricRecord]:
    return [MetricRecord(start + i, (start + i + 1) * 100, {VALUE_LOSS: value_loss, SYS_STEPS_PER_S: rate})
            for i, rate in enumerate(rates)]


def _throughput_warnings(events: list[dict]) -> list[int]:
    return [e["iteration"] for e in events if e["event"] == "warning" and e.get("detector") == "throughput"]


def test_throughput_relearns_its_rate_after_the_watchdogs_own_rollback_and_config_switch():
    """Found by an audit (session 18): after a rollback onto the safe config (more PPO epochs: slower iterations) the
    detector kept the old settled rate and warned for the rest of the run, blaming the hardware."""
    cfg = WatchdogConfig.model_validate({**_cfg().model_dump(), "policy": {"stable_every_iters": 5},
                                         "warmup": {"min_iters": 0}})
    before = _speed_records(0, [1000.0] * 15) + _speed_records(15, [1000.0], value_loss=math.nan)
    after = _speed_records(16, [400.0] * 20)  # the safe config's own speed
    wd, events, _ = _drive(cfg, before + after)
    assert [e["event"] for e in events].count("rollback") == 1 and _throughput_warnings(events) == []
    settled = next(d for d in wd.detectors if isinstance(d, Throughput)).settled
    assert settled == 400.0  # learnt again: a real drop from the new rate is still caught
    for rec in _speed_records(36, [100.0] * 4):
        carry_out(wd, wd.observe(rec), VirtualDriver(), config_name="safe")
    assert wd.last_verdicts and wd.last_verdicts[0].detector == "throughput"


def test_replay_of_a_restart_judges_the_new_process_memory_and_speed_as_its_own():
    """A restarted process's memory starts over and its speed is its own (another node, another config): replay's
    restart starts the resource detectors over as a live restarted process builds them afresh."""
    events: list[dict] = []
    wd = Watchdog(_cfg(), listeners=[events.append])
    for rec in _speed_records(0, [1000.0] * 15):
        rec.metrics.update({SYS_RSS_MB: 900.0 + rec.iteration, SYS_MEM_TOTAL_MB: 1000.0})
        wd.observe(rec)
    wd.restart_replayed({"event": "restart", "iteration": 14, "env_steps": 1500, "checkpoint": None,
                         "cause": "resource"}, recovery=False)
    memory, speed = (next(d for d in wd.detectors if isinstance(d, kind)) for kind in (MemoryForecast, Throughput))
    assert memory.history == {} and memory.seen == 0 and speed.settled is None
    for rec in _speed_records(15, [400.0] * 20):
        wd.observe(rec)
    assert _throughput_warnings(events) == []


# --------------------------------------------------------------------------- the policy's resource channel


def _leaking_records(n: int = 30) -> list[MetricRecord]:
    return [MetricRecord(i, (i + 1) * 100, {"value_loss": 0.05, SYS_RSS_MB: 400.0 + 25 * max(0, i - 4),
                                            SYS_MEM_TOTAL_MB: 1000.0}) for i in range(n)]


def _drive(cfg: WatchdogConfig, records: list[MetricRecord], driver=None):
    events: list[dict] = []
    wd = Watchdog(cfg, listeners=[events.append])
    actions_seen = []
    for rec in records:
        actions = wd.observe(rec)
        actions_seen += actions
        if not carry_out(wd, actions, driver or VirtualDriver(), config_name="safe"):
            break
    return wd, events, actions_seen


def test_throughput_relearns_its_rate_when_the_task_takes_a_staged_step():
    """A curriculum term stepping from 1000 to 250 (a shorter rollout: a quarter of the env steps an iteration, the
    same update time) is a task change: the speed is the task's, not the hardware's. Found by an audit (session 20):
    the detector kept the old settled rate and blamed thermal throttling 4 iterations after the change."""
    cfg = WatchdogConfig.model_validate({**_cfg().model_dump(), "warmup": {"min_iters": 0},
                                         "curriculum": {"still_iters": 10}})
    records = [MetricRecord(i, (i + 1) * 100, {VALUE_LOSS: 0.05, SYS_STEPS_PER_S: 1000.0 if i < 30 else 250.0,
                                               "curriculum/horizon": 1000.0 if i < 30 else 250.0}) for i in range(60)]
    _, events, _ = _drive(cfg, records)
    assert [e["iteration"] for e in events if e["event"] == "task_change"] == [30] and _throughput_warnings(events) == []


@pytest.mark.parametrize(("action", "expected"), [
    ("alert", []),
    ("checkpoint", [SaveResume]),
    ("stop", [SaveResume, Stop]),
])
def test_a_memory_alarm_never_rolls_back_and_acts_as_configured(action, expected):
    wd, events, actions = _drive(_cfg(action=action), _leaking_records())
    resource_actions = [type(a) for a in actions if not isinstance(a, SaveStable)]
    assert resource_actions == expected and not any(isinstance(a, Rollback) for a in actions)
    warning, alarm = [e for e in events if e["event"] in ("warning", "alarm")][:2]
    assert (warning["detector"], alarm["detector"]) == ("memory", "memory") and warning["resource"] is True
    assert warning["iteration"] < alarm["iteration"] and [e["event"] for e in events].count("alarm") == 1
    if action == "stop":
        stop, = [e for e in events if e["event"] == "stop"]
        assert stop["restartable"] is True and wd.state is State.STOPPED
        saved = next(a for a in actions if isinstance(a, SaveResume))
        assert saved.stable and saved.tag == f"stable_{saved.env_steps}_steps"  # healthy: also a stable checkpoint
        resume, = [e for e in events if e["event"] == "resume_checkpoint"]
        assert resume["stable"] is True and wd.policy.registry.refs[-1].iteration == saved.iteration
    else:  # the training's own state is not the resources': healthy all along, stable checkpoints go on
        assert wd.state is State.HEALTHY
        assert max(e["iteration"] for e in events if e["event"] == "stable_checkpoint") >= alarm["iteration"]


def test_a_resource_checkpoint_during_a_divergence_warning_is_not_stable():
    cfg = WatchdogConfig.model_validate({**_cfg(action="checkpoint").model_dump(), "policy": {"recover_points": 1000}})
    wd = Watchdog(cfg)
    wd.policy.state = State.WARNING  # e.g. the value-loss trend is warning
    actions = []
    for rec in _leaking_records():
        actions += wd.observe(rec)
    saved, = [a for a in actions if isinstance(a, SaveResume)]
    assert not saved.stable and saved.tag.startswith("resume_")


class _MinimalSession(TrainingSession):
    """What an SB3/rsl_rl integration implements: the four framework methods, nothing about resources."""

    def __init__(self, run_dir: Path, cfg: WatchdogConfig):
        super().__init__(watchdog=Watchdog(cfg), run_dir=run_dir, safe_name="safe")
        self.weights = 0

    def capture(self, action):
        return {"w": self.weights}

    def to_state(self, snap):
        import torch

        return {"w": torch.tensor(float(snap["w"]))}

    def from_state(self, state):
        return {"w": float(state["w"])}

    def restore_snapshot(self, snap, action):
        self.weights = snap["w"]

    def apply_config(self, action):
        from watchdog.driver import ConfigSwitch

        return ConfigSwitch()


def test_a_training_session_subclass_saves_a_resumable_checkpoint_and_stops_restartable_unchanged(tmp_path):
    session = _MinimalSession(tmp_path / "run", _cfg(action="stop"))
    for rec in _leaking_records():
        if not session.observe(rec):
            break
    session.close()
    res = session.result
    assert res.stopped and res.restartable and Path(res.resume_checkpoint).is_dir()
    from watchdog.checkpoints import load_checkpoint

    state, meta = load_checkpoint(res.resume_checkpoint)
    assert meta["stable"] is True and meta["watchdog"]["policy"]["state"] == "stopped"
    events = read_events(tmp_path / "run" / EVENTS_FILENAME).events
    assert [e["event"] for e in events][-4:] == ["stop", "stable_checkpoint", "resume_checkpoint", "end"]


def test_a_checkpoint_a_rollback_abandons_is_marked_on_disk_before_training_goes_on(tmp_path):
    """Found by an audit (session 16): the mark was written on the checkpoint thread and waited for only at the
    next record, so a crash in the iteration after a rollback left a rejected checkpoint marked stable, and
    `watchdog run` restarted from it (it takes the newest one marked stable)."""
    from watchdog.checkpoints import load_checkpoint
    from watchdog.policy import CheckpointRef, SaveStable
    from watchdog.supervise import choose_restart_point

    session = _MinimalSession(tmp_path / "run", _cfg())
    for iteration in (10, 20):
        path = session.save(SaveStable(iteration, iteration * 100), session.watchdog.state_dict)
        session.settle()
        ref = CheckpointRef(f"stable_{iteration * 100}_steps", iteration, iteration * 100, path)
    mark = session.store.mark_unstable

    def slow_mark(*args, **kwargs):  # a busy disk: the mark lands a while after it was asked for
        time.sleep(0.3)
        return mark(*args, **kwargs)

    session.store.mark_unstable = slow_mark
    session.forget(ref, abandoned=True)  # no settle(), no next record: a crash could come now
    assert load_checkpoint(ref.path)[1]["stable"] is False
    assert choose_restart_point(tmp_path / "run").iteration == 10
    session.close()


def test_the_sampler_is_opt_in_for_sessions_and_its_keys_reach_the_event_log_and_tensorboard(tmp_path):
    scalars = []
    session = TrainingSession(watchdog=Watchdog(_cfg()), run_dir=tmp_path, safe_name="safe",
                              scalar=lambda tag, value, step: scalars.append(tag), resources=ResourceSampler("cpu"))
    session.capture = lambda action: {}
    session.to_state = lambda snap: {}
    session.observe(MetricRecord(0, 100, {"value_loss": 0.1}))
    session.close()
    metrics = next(e for e in read_events(tmp_path / EVENTS_FILENAME).events if e["event"] == "metrics")["metrics"]
    assert SYS_RSS_MB in metrics and SYS_RSS_MB in scalars and SYS_MEM_TOTAL_MB in scalars


class _BigSnapshotSession(TrainingSession):
    """A session whose snapshots are 16 MiB CPU copies, as OpenRL's of a large net: resident memory climbs with every
    stable checkpoint until retention's bound, then stays."""

    def capture(self, action):
        import torch

        return {"weights": torch.ones(4 * 1024 * 1024)}  # 16 MiB, touched: resident

    def to_state(self, snap):
        return snap


def test_the_watchdogs_own_checkpoint_copies_are_left_out_of_the_memory_forecast_and_rss_stays_real(tmp_path):
    """Found by an audit (session 18): the in-memory copies of the retained stable checkpoints (up to keep_stable + 1)
    made resident memory climb for keep_stable checkpoints, and the forecast stopped a healthy run as a leak."""
    from watchdog.resources import rss_mb
    from watchdog.signals import SYS_WATCHDOG_HOST_MB
    from watchdog.session import release_freed_memory

    release_freed_memory()  # earlier tests' freed heap: the copies below make resident memory climb, as in a run
    cfg = WatchdogConfig.model_validate({
        "memory": {"warmup_points": 2, "window_points": 5, "warn_within_iters": 30, "alarm_within_iters": 8,
                   "min_climb_mb": 16, "rss_limit_mb": rss_mb() + 200},
        "policy": {"stable_every_iters": 1, "keep_stable": 7},
        "warmup": {"min_iters": 0},
    })
    session = _BigSnapshotSession(watchdog=Watchdog(cfg), run_dir=tmp_path, safe_name="safe",
                                  resources=ResourceSampler("cpu"))
    for i in range(14):
        assert session.observe(MetricRecord(i, (i + 1) * 100, {"value_loss": 0.05}))
        # each sample after the previous checkpoint's disk write: a write in flight holds its serialised copy (one
        # more 16 MiB for a moment), which made the flatness below fail now and then
        session.settle()
    session.close()
    events = read_events(tmp_path / EVENTS_FILENAME).events
    assert [e for e in events if e.get("detector") == "memory"] == []
    metrics = [e["metrics"] for e in events if e["event"] == "metrics"]
    held = [m[SYS_WATCHDOG_HOST_MB] for m in metrics]
    assert held[0] == 0 and max(held) == pytest.approx(16 * 8) and held[-1] == max(held)  # keep_stable + 1 copies
    rss = [m[SYS_RSS_MB] for m in metrics]
    assert rss[9] - rss[1] > 16 * 6  # the logged resident memory is the real one, copies included
    # flat once retention holds the copies at their bound: a dropped copy's memory went back to the system
    assert max(rss[9:]) - min(rss[9:]) < 16


# --------------------------------------------------------------------------- the supervisor


def _supervise(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "watchdog.cli", "run", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})


def test_a_restartable_stop_is_restarted_with_the_attempts_own_config_and_spends_no_rollback_budget(tmp_path):
    run_dir = tmp_path / "run"
    # first attempt: a resource stop (exit 1, `stop` with restartable: true); the restart finishes
    code = ("import sys, json, os; d = sys.argv[2]; os.makedirs(d, exist_ok=True); "
            "restart = os.environ.get('WATCHDOG_RESTART'); print('attempt', restart, sys.argv[3:]); "
            "restart or open(os.path.join(d, 'watchdog_events.jsonl'), 'a').write(json.dumps({'event': 'stop', "
            "'iteration': 3, 'env_steps': 30, 'state': 'stopped', 'time': 0, 'reason': 'memory', "
            "'restartable': True}) + '\\n'); sys.exit(0 if restart else 1)")
    proc = _supervise("--max-restarts", "1", "--", sys.executable, str(as_openrl_train(tmp_path, code)),
                      "--run_dir", str(run_dir), "--config", "mine.yaml")
    assert proc.returncode == 0, proc.stderr
    restart, = [e for e in read_events(run_dir / EVENTS_FILENAME).events if e["event"] == "restart"]
    assert restart["cause"] == "resource" and restart["exit_code"] == 1 and not is_recovery(restart)
    assert get_flag(restart["command"], "--config") == "mine.yaml" and restart["config"] == "mine.yaml"
    assert "attempt 1 ['--config', 'mine.yaml']" in proc.stdout  # WATCHDOG_RESTART=1 in the restart's env
    assert "stopped by its watchdog for a restart (a resource alarm; exit 1)" in proc.stderr


def test_a_restartable_stop_of_a_run_that_had_rolled_back_is_restarted_on_the_safe_config(tmp_path):
    """Found by an audit (session 16): the run had rolled back (its watchdog switched it to the safe config live),
    then stopped for a resource alarm; the restart took the attempt's own config, the one that had diverged (a
    checkpoint holds weights, not the settings switched live). It now stays on the safe config; the budget is
    still not spent by the resource stop."""
    from watchdog.supervise import on_safe_config

    run_dir = tmp_path / "run"
    code = ("import sys, json, os; d = sys.argv[2]; os.makedirs(d, exist_ok=True); "
            "restart = os.environ.get('WATCHDOG_RESTART'); print('attempt', restart, sys.argv[3:]); "
            "log = open(os.path.join(d, 'watchdog_events.jsonl'), 'a'); "
            "restart or log.write(json.dumps({'event': 'rollback', 'iteration': 2, 'env_steps': 20, 'state': "
            "'rolled_back', 'time': 0}) + '\\n' + json.dumps({'event': 'stop', 'iteration': 3, 'env_steps': 30, "
            "'state': 'stopped', 'time': 0, 'reason': 'memory', 'restartable': True}) + '\\n'); "
            "sys.exit(0 if restart else 1)")
    mine = tmp_path / "mine.yaml"
    mine.write_text("lr: 0.001\n")
    proc = _supervise("--max-restarts", "1", "--", sys.executable, str(as_openrl_train(tmp_path, code)),
                      "--run_dir", str(run_dir), "--config", str(mine))
    assert proc.returncode == 0, proc.stderr
    events = read_events(run_dir / EVENTS_FILENAME).events
    restart, = [e for e in events if e["event"] == "restart"]
    assert restart["cause"] == "resource" and not is_recovery(restart) and on_safe_config(events)
    safe = get_flag(restart["command"], "--config")
    assert safe != str(mine) and restart["config"] == safe and "safe" in Path(safe).name, restart
    assert not on_safe_config([{"event": "stop", "restartable": True}, restart])


RESOURCE_ALARM = {"event": "alarm", "iteration": 3, "env_steps": 300, "state": "healthy", "time": 0,
                  "detector": "memory", "signal": SYS_RSS_MB, "resource": True}
DIVERGENCE_ALARM = {"event": "alarm", "iteration": 4, "env_steps": 400, "state": "alarm", "time": 0,
                    "detector": "value_loss"}


@pytest.mark.parametrize(("alarms", "death", "restarted"), [
    ([RESOURCE_ALARM], "os.kill(os.getpid(), 9)", True),                       # the kernel's OOM killer
    ([RESOURCE_ALARM], "sys.exit(1)", True),                                   # torch: "can't allocate memory"
    ([RESOURCE_ALARM, DIVERGENCE_ALARM], "sys.exit(1)", False),               # a divergence came after it: a crash
])
def test_the_death_a_resource_alarm_forecast_is_restarted_as_a_resource_end(tmp_path, alarms, death, restarted):
    """Found by an audit (session 18): with memory.action: checkpoint the watchdog saved its resume point and trained
    on, and the out-of-memory death it had forecast was restarted as a crash: on the safe config, spending the
    rollback budget. A rollback budget of 0 shows which: a crash restart gives up, a resource restart does not."""
    import json

    import torch

    from watchdog.checkpoints import CheckpointStore

    run_dir = tmp_path / "run"
    saved = CheckpointStore(run_dir / "checkpoints" / "watchdog").save(
        "stable_300_steps", {"w": torch.zeros(2)}, {"iteration": 3, "env_steps": 300})
    lines = [json.dumps(e) for e in alarms] + [json.dumps({
        "event": "resume_checkpoint", "iteration": 3, "env_steps": 300, "state": "healthy", "time": 0,
        "checkpoint": str(saved.path), "checkpoint_iteration": 3, "stable": True})]
    code = ("import sys, os; d = sys.argv[2]; restart = os.environ.get('WATCHDOG_RESTART'); "
            "print('attempt', restart, sys.argv[3:]); restart and sys.exit(0); "
            f"open(os.path.join(d, 'watchdog_events.jsonl'), 'a').write({chr(10).join(lines)!r} + '\\n'); {death}")
    (tmp_path / "wd.yaml").write_text("policy: {rollback_budget: 0}\n")
    proc = _supervise("--max-restarts", "1", "--", sys.executable, str(as_openrl_train(tmp_path, code)),
                      "--run_dir", str(run_dir), "--config", "mine.yaml", "--watchdog", "--watchdog_config",
                      str(tmp_path / "wd.yaml"))
    restarts = [e for e in read_events(run_dir / EVENTS_FILENAME).events if e["event"] == "restart"]
    if not restarted:
        assert proc.returncode == 1 and restarts == [] and "rollback budget (0) spent" in proc.stderr
        return
    assert proc.returncode == 0, proc.stderr
    restart, = restarts
    assert restart["cause"] == "resource" and not is_recovery(restart)
    assert restart["checkpoint"] == str(saved.path) and get_flag(restart["command"], "--checkpoint") == str(saved.path)
    assert get_flag(restart["command"], "--config") == "mine.yaml" and restart["config"] == "mine.yaml"
    assert "after its watchdog's resource alarm (the out-of-memory death it forecast)" in proc.stderr


def test_a_stop_without_restartable_stays_final():
    assert is_recovery({"event": "restart"}) and is_recovery({"event": "restart", "cause": "crash"})
    assert is_recovery({"event": "rollback"}) and not is_recovery({"event": "stop", "restartable": True})


# --------------------------------------------------------------------------- replay and watch


def _tensorboard_run(run_dir: Path, rss: list[float]) -> Path:
    """A run whose TensorBoard root events hold value loss and the sys/* keys (as train.py writes them)."""
    from watchdog.tfevents import ScalarWriter

    with ScalarWriter(run_dir / "logs") as writer:
        for i, mb in enumerate(rss):
            for tag, value in (("train/value_loss", 0.05), (SYS_RSS_MB, mb), (SYS_MEM_TOTAL_MB, 1000.0)):
                writer.add_scalar(tag, value, (i + 1) * 100, wall_time=1000.0 + i)
    return run_dir


def test_replay_and_watch_report_resource_keys_and_neither_calls_a_memory_alarm_divergence(tmp_path):
    import yaml

    from watchdog.replay import replay_run

    run_dir = _tensorboard_run(tmp_path / "run", LEAK[:30])
    report = replay_run(run_dir, _cfg())
    assert report.source == "tensorboard" and all(SYS_RSS_MB in r.metrics for r in report.records)
    alarm = next(e for e in report.events if e["event"] == "alarm")
    assert alarm["detector"] == "memory" and alarm["resource"] is True
    assert report.verdict == "healthy" and report.first_alarm is None and report.stopped["restartable"] is True

    config = tmp_path / "wd.yaml"
    config.write_text(yaml.safe_dump(_cfg().model_dump(mode="json")))
    proc = subprocess.run([sys.executable, "-m", "watchdog.cli", "watch", str(run_dir), "--config", str(config),
                           "--idle-exit", "1", "--interval", "0.2", "--on-alarm", "echo ON_ALARM $WATCHDOG_DETECTOR"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr  # 1 would mean a divergence
    assert "ON_ALARM memory" in proc.stdout and "mem 8" in proc.stdout  # status line: "mem 8xx MiB"


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(("yaml_text", "message"), [
    ("memory:\n  action: reboot\n", "key 'memory.action': Input should be 'alert', 'checkpoint' or 'stop', got 'reboot'"),
    ("memory:\n  warn_within_iters: 10\n  alarm_within_iters: 20\n", "alarm_within_iters (20) must not exceed"),
    ("memory:\n  rss_limit_mb: 0\n", "key 'memory.rss_limit_mb': Input should be greater than 0"),
    ("throughput:\n  drop_fraction: 1.5\n", "key 'throughput.drop_fraction': Input should be less than 1, got 1.5"),
    ("throughput:\n  warmup_iters: 3\n", "unknown key 'throughput.warmup_iters'"),
])
def test_bad_resource_config_is_one_line_naming_the_key(tmp_path, yaml_text, message):
    from watchdog.config import load_watchdog_config
    from watchdog.errors import ConfigError

    path = tmp_path / "wd.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as exc:
        load_watchdog_config(path)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_the_shipped_config_spells_out_the_resource_defaults():
    from watchdog.config import load_watchdog_config

    shipped = load_watchdog_config(REPO / "cfgs" / "watchdog.yaml")
    assert shipped.memory == WatchdogConfig().memory and shipped.throughput == WatchdogConfig().throughput


def test_replay_judges_memory_against_the_live_runs_configured_limit(tmp_path):
    """Found by an audit (session 20): a run stopped live against its configured rss_limit_mb replayed against the
    machine's memory and said healthy. Replay takes the live run's memory section from its start event, unless the
    config it is given has memory settings of its own."""
    from watchdog.eventlog import EVENTS_FILENAME, EventLog, make_event
    from watchdog.replay import replay_run

    live = WatchdogConfig.model_validate({"memory": {"rss_limit_mb": 1000.0}})
    with EventLog(tmp_path / EVENTS_FILENAME) as events:
        events.write(make_event("start", iteration=0, env_steps=0, state="healthy", config=live.model_dump()))
        for it in range(60):
            events.write(make_event("metrics", iteration=it, env_steps=(it + 1) * 100, state="healthy",
                                    metrics={VALUE_LOSS: 0.05, SYS_RSS_MB: 400.0 + 10.0 * it, SYS_MEM_TOTAL_MB: 24000.0}))
    report = replay_run(tmp_path)
    memory = [e for e in report.events if e["event"] in ("warning", "alarm") and e["detector"] == "memory"]
    assert memory and memory[0]["threshold"] == 1000.0 and any(e["event"] == "alarm" for e in memory)
    own = WatchdogConfig.model_validate({"memory": {"rss_limit_mb": 50000.0}})  # a config's own memory settings win
    assert not [e for e in replay_run(tmp_path, own).events if e.get("detector") == "memory"]


def test_a_leak_that_climbs_in_steps_far_apart_is_forecast_and_one_step_is_not():
    """From a review (session 20) of the climb-throughout rule: a staircase (CUDA memory reserved in 64 MiB segments
    every 32 iterations) is flat on one side of each step within a 30-point window, so it read as separate one-off
    steps and was killed unwarned. Three rises among the last 12 levels (a third of a window apart), the newest
    recent, none undone, are a leak, said as a warning only: a buffer that filled in three steps and stopped looks
    the same until it stops (it is said for 40 iterations, and never stops a run)."""
    stairs = [1000.0 + 64 * (i // 32) for i in range(672)]  # out of memory at 672
    verdicts = _default_memory_verdicts(stairs, 1000.0 + 64 * 20 + 1)
    assert verdicts[0][0] < 200 and {level for _, level, _ in verdicts} == {"warning"}
    assert "in steps" in verdicts[0][2] and verdicts[-1][0] == 671  # said up to the end, out of memory in ~1 iteration
    filled = [1000.0 + 256 * min(i // 32, 3) for i in range(600)]  # three 256 MiB steps, then flat
    said = _default_memory_verdicts(filled, 1000.0 + 3 * 256 + 400.0)
    assert {level for _, level, _ in said} == {"warning"} and said[-1][0] < 150
    # two allocations (a level taken mid-step is half of it: one step, not two), or one and a 4 MiB bump: no staircase
    two = [1000.0 + 1024 * ((i >= 35) + (i >= 65)) for i in range(300)]
    bump = [1000.0 + 1024 * (i >= 35) + 4 * (i >= 50) for i in range(300)]
    assert _default_memory_verdicts(two, 2 * 1024 + 1000.0 + 4000.0) == []
    assert _default_memory_verdicts(bump, 1024 + 1000.0 + 4000.0) == []
