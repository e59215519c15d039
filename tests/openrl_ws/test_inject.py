"""Fault injection: the spec grammar, and what the schedule sets on each iteration."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from openrl_ws.inject import Fault, FaultSchedule, parse_inject
from watchdog.errors import ConfigError


@pytest.mark.parametrize(
    ("spec", "kind", "start", "end", "value"),
    [
        ("reward_scale@30-34:50", "reward_scale", 30, 34, 50.0),
        ("reward_scale@30:0.5", "reward_scale", 30, None, 0.5),
        ("reward_scale@0-0:-1", "reward_scale", 0, 0, -1.0),
        ("nan@40", "nan", 40, None, None),
        ("lr_spike@25:20", "lr_spike", 25, None, 20.0),
        ("lr_spike@25:1e1", "lr_spike", 25, None, 10.0),
        ("obs_noise@10-19:0.5", "obs_noise", 10, 19, 0.5),
        ("obs_noise@10:0", "obs_noise", 10, None, 0.0),
        (" nan@3 ", "nan", 3, None, None),
        ("mem_leak@20", "mem_leak", 20, None, 64.0),
        ("mem_leak@20-30:8", "mem_leak", 20, 30, 8.0),
        ("slow@5", "slow", 5, None, 2.0),
        ("slow@5-9:1.5", "slow", 5, 9, 1.5),
    ],
)
def test_valid_specs_parse_to_fields(spec, kind, start, end, value):
    assert parse_inject(spec) == Fault(kind=kind, start=start, end=end, value=value, spec=spec.strip())


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("reward_scale", "it does not match the grammar"),
        ("reward_scale@:50", "it does not match the grammar"),
        ("reward_scale@-3:50", "it does not match the grammar"),
        ("reward_scale@30-34-40:50", "it does not match the grammar"),
        ("Reward_scale@30:50", "it does not match the grammar"),
        ("", "it does not match the grammar"),
        ("reward_scale@30-34", "reward_scale needs a :VALUE"),
        ("reward_scale@34-30:50", "END 30 is before START 34"),
        ("reward_scale@30:fifty", "VALUE 'fifty' is not a number"),
        ("reward_scale@30:inf", "VALUE 'inf' is not finite"),
        ("nan@40:1", "nan takes no :VALUE"),
        ("nan@40-45", "nan happens once at START and takes no -END"),
        ("lr_spike@25", "lr_spike needs a :VALUE"),
        ("lr_spike@25-30:20", "lr_spike happens once at START and takes no -END"),
        ("lr_spike@25:0", "lr_spike VALUE must be > 0"),
        ("obs_noise@10:-0.1", "obs_noise VALUE (a std) must be >= 0"),
        ("dropout@10:0.1", "unknown kind 'dropout'"),
        ("mem_leak@3:0", "mem_leak VALUE (MiB per iteration) must be > 0"),
        ("slow@3:0.5", "slow VALUE (a slow-down factor) must be >= 1"),
        ("slow@3:x", "VALUE 'x' is not a number"),
    ],
)
def test_malformed_specs_get_one_line_with_the_grammar(spec, why):
    with pytest.raises(ConfigError) as exc:
        parse_inject(spec)
    text = str(exc.value)
    assert text.startswith(f"bad --inject spec {spec!r}: {why}")
    assert "KIND@START[-END][:VALUE]" in text and "reward_scale@30-34:50" in text and "\n" not in text


def _env():
    return SimpleNamespace(reward_scale=1.0, obs_noise_std=0.0, nan_next_step=False)


def _trainer(lr=1e-3, critic_lr=2e-3):
    def adam(value):
        return torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))], lr=value)

    module = SimpleNamespace(optimizers={"policy": adam(lr), "critic": adam(critic_lr)}, lr=lr, critic_lr=critic_lr)
    return SimpleNamespace(algo_module=module)


def _lrs(trainer):
    return tuple(o.param_groups[0]["lr"] for o in trainer.algo_module.optimizers.values())


@pytest.mark.parametrize(
    ("specs", "expected_reward_scale"),
    [
        (["reward_scale@3-4:50"], [1, 1, 1, 50, 50, 1, 1]),
        (["reward_scale@2:0.5"], [1, 1, 0.5, 0.5, 0.5, 0.5, 0.5]),
        (["reward_scale@1-3:2", "reward_scale@3-5:10"], [1, 2, 2, 20, 10, 10, 1]),
        ([], [1, 1, 1, 1, 1, 1, 1]),
    ],
)
def test_reward_scale_follows_the_ranges(specs, expected_reward_scale):
    schedule, env = FaultSchedule.from_specs(specs), _env()
    seen = []
    for iteration in range(7):
        schedule.begin_iteration(iteration, env, _trainer())
        seen.append(env.reward_scale)
    assert seen == expected_reward_scale


def test_notes_are_written_only_when_something_changes():
    schedule, env, trainer = FaultSchedule.from_specs(["reward_scale@3-4:50"]), _env(), _trainer()
    notes = {i: schedule.begin_iteration(i, env, trainer) for i in range(7)}
    assert notes[3] == ["iteration 3: reward_scale 1 -> 50 (reward_scale@3-4:50)"]
    assert notes[5] == ["iteration 5: reward_scale back to 1"]
    assert all(notes[i] == [] for i in (0, 1, 2, 4, 6))


def test_obs_noise_overlaps_add_in_variance():
    schedule, env = FaultSchedule.from_specs(["obs_noise@0-1:0.3", "obs_noise@1-2:0.4"]), _env()
    stds = []
    for iteration in range(4):
        schedule.begin_iteration(iteration, env, _trainer())
        stds.append(round(env.obs_noise_std, 9))
    assert stds == [0.3, 0.5, 0.4, 0.0]


def test_nan_fires_one_batch_once_even_if_the_iteration_is_begun_twice():
    schedule, env, trainer = FaultSchedule.from_specs(["nan@2"]), _env(), _trainer()
    fired, noted = [], []
    for iteration in (0, 1, 2, 2, 3):
        noted.append(bool(schedule.begin_iteration(iteration, env, trainer)))
        fired.append(env.nan_next_step)
        env.nan_next_step = False  # the env clears it after the NaN step
    assert fired == [False, False, True, False, False]
    assert noted == fired


def test_lr_spike_scales_once_and_lasts():
    schedule, trainer = FaultSchedule.from_specs(["lr_spike@1:20"]), _trainer()
    lrs = []
    for iteration in range(4):
        notes = schedule.begin_iteration(iteration, _env(), trainer)
        lrs.append(tuple(round(v, 9) for v in _lrs(trainer)))
        if iteration == 1:
            assert notes == ["iteration 1: learning rates x20: lr 0.001 -> 0.02, critic_lr 0.002 -> 0.04 (lr_spike@1:20)"]
    assert lrs == [(1e-3, 2e-3), (2e-2, 4e-2), (2e-2, 4e-2), (2e-2, 4e-2)]


def test_transient_faults_do_not_recur_after_a_rollback():
    """The counter is iterations actually run: after rolling back from 5 to the weights of 2, it goes on at 6."""
    schedule, env, trainer = FaultSchedule.from_specs(["reward_scale@3-4:50", "lr_spike@3:10"]), _env(), _trainer()
    for iteration in range(6):
        schedule.begin_iteration(iteration, env, trainer)
    trainer = _trainer()  # the rollback restored the weights and learning rates
    for iteration in range(6, 10):
        assert schedule.begin_iteration(iteration, env, trainer) == []
    assert env.reward_scale == 1.0 and _lrs(trainer) == (1e-3, 2e-3)


def test_fired_faults_survive_state_dict_round_trip():
    first = FaultSchedule.from_specs(["nan@1", "lr_spike@1:5"])
    first.begin_iteration(1, _env(), _trainer())
    resumed = FaultSchedule.from_specs(["nan@1", "lr_spike@1:5"])
    resumed.load_state_dict(first.state_dict())
    env, trainer = _env(), _trainer()
    assert resumed.begin_iteration(1, env, trainer) == []
    assert env.nan_next_step is False and _lrs(trainer) == (1e-3, 2e-3)


def test_mem_leak_holds_value_mib_more_each_active_iteration_and_never_lets_go():
    schedule, env = FaultSchedule.from_specs(["mem_leak@2-3:1.5"]), _env()
    held = []
    for iteration in range(6):
        schedule.begin_iteration(iteration, env, _trainer())
        held.append(sum(t.numel() for t in schedule.held) / 2**20)
    assert held == [0, 0, 1.5, 3.0, 3.0, 3.0]
    assert all(t.device.type == "cpu" and int(t.min()) == 1 for t in schedule.held)  # written: resident


def test_slow_sleeps_factor_minus_one_times_the_previous_iterations_own_work(monkeypatch):
    import openrl_ws.inject as inject

    now, sleeps = [0.0], []
    monkeypatch.setattr(inject.time, "perf_counter", lambda: now[0])
    monkeypatch.setattr(inject.time, "sleep", lambda s: (sleeps.append(round(s, 9)), now.__setitem__(0, now[0] + s)))
    schedule = FaultSchedule.from_specs(["slow@2-3:3"])
    for iteration in range(5):
        schedule.begin_iteration(iteration, _env(), _trainer())
        now[0] += 0.5  # each iteration's own work
    assert sleeps == [1.0, 1.0]  # iterations 2 and 3 take 3 x 0.5 s; the sleep is not counted as work
