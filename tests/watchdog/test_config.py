"""Config loading: the shipped files are valid; bad ones fail in one line naming file, key, value."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchdog.cli import main
from watchdog.config import (
    PPOConfig,
    WatchdogConfig,
    STARTUP_PPO_KEYS,
    startup_keys_kept,
    load_any_config,
    load_ppo_config,
    load_watchdog_config,
)
from watchdog.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_configs_are_valid_and_match_the_field_report():
    assert load_watchdog_config(ROOT / "cfgs/watchdog.yaml") == WatchdogConfig()
    safe = load_ppo_config(ROOT / "cfgs/ppo_safe.yaml")
    assert (safe.lr, safe.critic_lr, safe.max_grad_norm, safe.use_adv_normalize, safe.clip_param) == (3e-4, 3e-4, 0.5, True, 0.2)
    base = load_ppo_config(ROOT / "cfgs/ppo.yaml")
    assert (base.lr, base.max_grad_norm, base.use_adv_normalize) == (5e-3, None, False)
    assert set(safe.live_values()) == {"lr", "critic_lr", "max_grad_norm", "use_max_grad_norm", "use_adv_normalize", "clip_param"}
    # the whole field-report config, not a delta: ppo.yaml's start-up keys are all there, unchanged
    assert {k: v for k, v in safe.set_values().items() if k in STARTUP_PPO_KEYS} == \
        {k: v for k, v in base.set_values().items() if k in STARTUP_PPO_KEYS} == \
        {"episode_length": 200, "log_interval": 5, "use_recurrent_policy": False, "use_joint_action_loss": False,
         "use_valuenorm": True}
    assert startup_keys_kept(safe, base.set_values()) == {}


@pytest.mark.parametrize(
    ("text", "loader", "expected"),
    [
        ("lr: 3e-4\nmax_grad_nrom: 0.5\n", load_ppo_config, ["unknown key 'max_grad_nrom'", "0.5", "max_grad_norm"]),
        ("lr: fast\n", load_ppo_config, ["key 'lr'", "'fast'"]),
        ("lr: -1\n", load_ppo_config, ["key 'lr'", "greater than 0", "-1"]),
        ("clip_param: 2\n", load_ppo_config, ["key 'clip_param'", "less than 1", "2"]),
        ("value_loss:\n  value_loss_max: -0.2\n", load_watchdog_config, ["value_loss.value_loss_max", "-0.2"]),
        ("policy:\n  rollbak_budget: 2\n", load_watchdog_config, ["policy.rollbak_budget", "rollback_budget"]),
        ("action: panic\n", load_watchdog_config, ["'action'", "'rollback' or 'alert'", "panic"]),
        ("lr: [3e-4\n", load_ppo_config, ["malformed YAML", "line"]),
        ("- 1\n- 2\n", load_watchdog_config, ["expected a mapping"]),
        # a misspelt signal left its detector seeing nothing: a diverging run replayed HEALTHY (until session 17)
        ("blowup:\n  signals: [train/valueloss]\n", load_watchdog_config,
         ["blowup.signals", "'train/valueloss' is not a metric key we read", "train/value_loss"]),
        ("reward_collapse:\n  signal: rollout/foo\n", load_watchdog_config, ["reward_collapse.signal", "rollout/foo"]),
        # the last one won, silently (until session 17)
        ("lr: 3e-4\nmax_grad_norm: 0.5\nlr: 1e-3\n", load_ppo_config, ["key 'lr' is given twice (lines 1 and 3)"]),
        # true/false where a number is asked for was read as 1 (until session 18): a budget of one rollback
        ("policy:\n  rollback_budget: true\n", load_watchdog_config, ["policy.rollback_budget", "true/false", "True"]),
        ("lr: yes\n", load_ppo_config, ["key 'lr'", "true/false"]),
        ("framework: rl_games\nmini_epochs: on\n", load_any_config, ["key 'mini_epochs'", "true/false"]),
        ("n_epochs: true\n", load_any_config, ["key 'n_epochs'", "true/false"]),  # SB3's safe config
        # the one float without a bound took .nan: every comparison with it false, the log-std climb never dated
        ("policy_std:\n  saturated_log_std: .nan\n", load_watchdog_config, ["policy_std.saturated_log_std", "nan"]),
        # a loss weight of .inf was taken: the first update's loss inf, every parameter NaN after the safe switch
        ("value_loss_coef: .inf\n", load_ppo_config, ["key 'value_loss_coef'", "finite", "inf"]),
        ("framework: rl_games\ncritic_coef: .inf\n", load_any_config, ["key 'critic_coef'", "finite"]),
        ("ent_coef: .inf\n", load_any_config, ["key 'ent_coef'", "finite"]),
    ],
)
def test_bad_configs_fail_in_one_line(tmp_path, text, loader, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        loader(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    for part in expected:
        assert part in message


def test_safe_config_keys_fixed_at_start_up_are_kept_with_the_reason():
    kept = startup_keys_kept(PPOConfig(hidden_size=512, episode_length=200, lr=3e-4),
                             {"hidden_size": 256, "episode_length": 200, "lr": 5e-3})
    assert list(kept) == ["hidden_size"] and "keeps 256" in kept["hidden_size"] and "512" in kept["hidden_size"]


def test_missing_file_is_a_one_line_error(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_watchdog_config(tmp_path / "nope.yaml")


def test_check_command_exit_codes(tmp_path, capsys):
    assert main(["check", str(ROOT / "cfgs/ppo_safe.yaml")]) == 0
    out = capsys.readouterr().out
    assert "valid PPO config" in out and "max_grad_norm" in out and "0.5" in out
    assert main(["check", str(ROOT / "cfgs/watchdog.yaml")]) == 0
    assert "value_loss.value_loss_max" in capsys.readouterr().out
    bad = tmp_path / "ppo.yaml"
    bad.write_text("lr: 3e-4\nmax_grad_nrom: 0.5\n")
    assert main(["check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "max_grad_nrom" in err
    # an unset "$CFG" (found by a review, session 27: ".: cannot read file: Is a directory")
    run = ROOT / "tests" / "data" / "box2d" / "skrl_bipedalwalker"
    for argv in (["check", ""], ["replay", str(run), "--config", ""]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "an empty path (an unset variable?) names no config file" in err, err
