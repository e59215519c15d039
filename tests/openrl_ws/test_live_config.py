"""Live PPO overrides reach the running OpenRL trainer and change what the next update does."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("openrl")

from openrl_ws import snapshot as S  # noqa: E402
from openrl_ws.live_config import LIVE_KEYS, apply_ppo_overrides, current_values, scale_learning_rates  # noqa: E402
from watchdog.errors import ConfigError  # noqa: E402

from tests.openrl_ws.conftest import captured_driver, iterate  # noqa: E402

ARGS = ["--episode_length", "16", "--hidden_size", "64", "--layer_N", "1", "--seed", "0",
        "--ppo_epoch", "2", "--num_mini_batch", "2", "--lr", "5e-4", "--critic_lr", "5e-4"]


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    """A real PPOAgent.train() set-up whose driver stops before its loop."""
    with captured_driver(tmp_path_factory.mktemp("openrl_live"), ARGS) as (drv, _env):
        yield drv


@pytest.fixture
def trainer(driver):
    """The live trainer, rolled back to its start state after each test."""
    snap = S.capture(driver.trainer)
    yield driver.trainer
    S.restore(driver.trainer, snap)


def test_safe_values_land_in_the_live_optimizers_and_trainer(trainer):
    trainer._use_max_grad_norm = False

    changed = apply_ppo_overrides(trainer, {"lr": 3e-4, "critic_lr": 3e-4, "max_grad_norm": 0.5})

    assert changed == {
        "lr": (5e-4, 3e-4),
        "critic_lr": (5e-4, 3e-4),
        "max_grad_norm": (10.0, 0.5),
        "use_max_grad_norm": (False, True),
    }
    for opt in trainer.algo_module.optimizers.values():
        assert [g["lr"] for g in opt.param_groups] == [3e-4]
    assert trainer.max_grad_norm == 0.5 and trainer._use_max_grad_norm is True
    assert (trainer.algo_module.lr, trainer.algo_module.critic_lr) == (3e-4, 3e-4)  # lr_decay base


def test_the_next_real_update_clips_gradients_at_the_new_norm(driver, trainer, monkeypatch):
    apply_ppo_overrides(trainer, {"max_grad_norm": 0.5, "ppo_epoch": 3, "num_mini_batch": 1})
    real_clip = torch.nn.utils.clip_grad_norm_
    calls = []

    def spy(parameters, max_norm, *args, **kwargs):
        params = list(parameters)
        before = real_clip(params, max_norm, *args, **kwargs)
        after = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params if p.grad is not None]))
        calls.append((max_norm, float(before), float(after)))
        return before

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)  # ppo.py calls nn.utils.clip_grad_norm_
    info = iterate(driver)

    assert len(calls) == 2 * 3 * 1  # (actor + critic) x ppo_epoch x num_mini_batch: both live too
    assert all(max_norm == 0.5 for max_norm, _, _ in calls)
    assert max(before for _, before, _ in calls) > 0.5  # the critic's raw gradient is far larger
    assert all(after <= 0.5 * (1 + 1e-4) for _, _, after in calls)
    assert info["critic_grad_norm"] > 0.5  # OpenRL logs the norm before clipping


def test_only_changed_keys_are_reported(trainer):
    apply_ppo_overrides(trainer, {"clip_param": 0.1, "entropy_coef": 0.0})
    assert apply_ppo_overrides(trainer, {"clip_param": 0.1, "entropy_coef": 0, "use_max_grad_norm": True}) == {}


def test_linear_lr_decay_continues_from_the_new_lr(trainer):
    apply_ppo_overrides(trainer, {"lr": 1e-4})
    trainer.algo_module.lr_decay(5, 10)  # what learner_update does when use_linear_lr_decay is on
    assert trainer.algo_module.optimizers["policy"].param_groups[0]["lr"] == pytest.approx(0.5e-4)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"use_valuenorm": False}, "'use_valuenorm' cannot change during training (the critic's ValueNorm"),
        ({"gamma": 0.9}, "'gamma' cannot change during training"),
        ({"lr": -1e-4}, "'lr' must be a finite number > 0, got -0.0001"),
        ({"lr": float("nan")}, "'lr' must be a finite number > 0"),
        ({"ppo_epoch": 0}, "'ppo_epoch' must be an integer >= 1, got 0"),
        ({"num_mini_batch": 2.0}, "'num_mini_batch' must be an integer >= 1"),
        ({"use_adv_normalize": "yes"}, "'use_adv_normalize' must be true or false"),
        ({"entropy_coef": -0.01}, "'entropy_coef' must be a finite number >= 0"),
    ],
)
def test_bad_keys_and_values_are_refused_before_anything_changes(trainer, values, message):
    before = current_values(trainer)
    with pytest.raises(ConfigError) as exc:
        apply_ppo_overrides(trainer, {"clip_param": 0.05, **values})
    assert message in str(exc.value) and "\n" not in str(exc.value)
    assert current_values(trainer) == before


def test_scale_learning_rates_multiplies_every_optimizer(trainer):
    changed = scale_learning_rates(trainer, 10)
    assert changed == {"lr": (5e-4, pytest.approx(5e-3)), "critic_lr": (5e-4, pytest.approx(5e-3))}
    assert trainer.algo_module.optimizers["critic"].param_groups[0]["lr"] == pytest.approx(5e-3)
    with pytest.raises(ConfigError, match="scale factor must be a finite number > 0"):
        scale_learning_rates(trainer, 0)


def test_current_values_reports_every_live_key(trainer):
    values = current_values(trainer)
    assert set(values) == set(LIVE_KEYS)
    assert values["ppo_epoch"] == 2 and values["num_mini_batch"] == 2 and values["use_max_grad_norm"] is True
