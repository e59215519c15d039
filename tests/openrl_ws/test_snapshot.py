"""Save -> train -> roll back -> the live OpenRL trainer holds exactly the saved state (rsl_rl TestSaveLoad style)."""

from __future__ import annotations

import copy
import random

import numpy as np
import pytest
import torch

pytest.importorskip("openrl")

from openrl_ws import snapshot as S  # noqa: E402
from watchdog.checkpoints import CheckpointStore, clone_tree, read_openrl_module  # noqa: E402
from watchdog.errors import CheckpointError  # noqa: E402
from watchdog.session import reseed  # noqa: E402

from tests.openrl_ws.conftest import captured_driver, iterate  # noqa: E402

ARGS = ["--episode_length", "16", "--hidden_size", "64", "--layer_N", "1", "--seed", "0",
        "--ppo_epoch", "2", "--num_mini_batch", "2"]


def _make_net(args):
    from openrl.configs.config import create_config_parser
    from openrl.envs.common import make
    from openrl.modules.common import PPONet

    env = make("CartPole-v1", env_num=2)
    return env, PPONet(env, cfg=create_config_parser().parse_args(args))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A real PPOAgent.train() set-up whose driver stops before its loop, so tests step it by hand."""
    with captured_driver(tmp_path_factory.mktemp("openrl_run"), ARGS) as (driver, _env):
        iterate(driver)  # so Adam has moments and ValueNorm has statistics
        yield driver


def _live(trainer):
    module = trainer.algo_module
    return (
        {k: clone_tree(S.full_state(m)) for k, m in module.models.items()},
        {k: clone_tree(o.state_dict()) for k, o in module.optimizers.items()},
    )


def _assert_trees_equal(a, b, path="state"):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a.cpu(), b.cpu()), path
    elif isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            _assert_trees_equal(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_trees_equal(x, y, f"{path}.{i}")
    else:
        assert a == b, path


def _assert_matches_snapshot(trainer, snap):
    models, optimizers = _live(trainer)
    _assert_trees_equal(models, snap.models, "models")
    _assert_trees_equal(optimizers, snap.optimizers, "optimizers")
    for key, value in snap.hot_params.items():
        assert getattr(trainer, key) == value, key


def test_value_normaliser_is_part_of_the_captured_critic_state(run):
    critic = run.trainer.algo_module.models["critic"]
    assert "value_normalizer.running_mean" in critic.state_dict()  # CPU: registered Parameters
    snap = S.capture(run.trainer)
    assert {"value_normalizer.running_mean", "value_normalizer.running_mean_sq",
            "value_normalizer.debiasing_term"} <= set(snap.models["critic"])
    assert float(snap.models["critic"]["value_normalizer.debiasing_term"]) > 0  # it has been updated
    assert {"exp_avg", "exp_avg_sq", "step"} <= set(snap.optimizers["policy"]["state"][0])
    assert set(snap.hot_params) == set(S.HOT_PARAMS)


def test_rollback_restores_parameters_optimizer_state_and_hot_params_in_place(run):
    trainer = run.trainer
    module, policy_opt = trainer.algo_module, trainer.algo_module.optimizers["policy"]
    snap = S.capture(trainer)

    iterate(run)
    iterate(run)
    trainer.clip_param, trainer.max_grad_norm = 0.05, 0.1
    policy_opt.param_groups[0]["lr"] = 1.0
    models, _ = _live(trainer)
    assert not torch.equal(models["policy"]["base.mlp.fc1.0.weight"], snap.models["policy"]["base.mlp.fc1.0.weight"])
    assert not torch.equal(models["critic"]["value_normalizer.running_mean"],
                           snap.models["critic"]["value_normalizer.running_mean"])

    S.restore(trainer, snap)

    assert trainer.algo_module is module and module.optimizers["policy"] is policy_opt
    _assert_matches_snapshot(trainer, snap)
    assert policy_opt.param_groups[0]["lr"] == snap.learning_rates["policy"][0]


def test_the_same_snapshot_serves_two_rollbacks(run):
    snap = S.capture(run.trainer)
    frozen = copy.deepcopy(snap)
    S.restore(run.trainer, snap)
    iterate(run)  # Adam updates its moments in place: they must not be the snapshot's tensors
    _assert_trees_equal(snap.optimizers, frozen.optimizers, "snapshot after training")
    S.restore(run.trainer, snap)
    _assert_matches_snapshot(run.trainer, frozen)


def test_next_update_after_restore_starts_from_the_restored_state(run):
    trainer = run.trainer
    snap = S.capture(trainer)
    iterate(run)
    S.restore(trainer, snap)

    seen = {}

    def record_first_step(optimizer, args, kwargs):
        if "params" not in seen:
            seen["params"] = {k: clone_tree(m.state_dict()) for k, m in trainer.algo_module.models.items()}
            seen["adam"] = clone_tree(optimizer.state_dict()["state"])

    handle = trainer.algo_module.optimizers["policy"].register_step_pre_hook(record_first_step)
    try:
        run.actor_rollout()
        run.compute_returns()
        trainer.prep_training()
        trainer.train(run.buffer.data)
        run.buffer.after_update()
    finally:
        handle.remove()

    # before the first optimizer step of the update, weights and Adam moments are the restored ones
    for name, state in seen["params"].items():
        for key, value in state.items():
            if not key.startswith("value_normalizer"):  # ValueNorm.update runs inside the loss
                assert torch.equal(value, snap.models[name][key]), f"{name}.{key}"
    _assert_trees_equal(seen["adam"], snap.optimizers["policy"]["state"], "adam")


def test_restore_rng_replays_the_same_random_numbers(run):
    snap = S.capture(run.trainer)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    reseed(123)
    S.restore(run.trainer, snap, restore_rng=True)
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], got[0]) and np.array_equal(expected[1], got[1]) and expected[2] == got[2]


def test_reseed_changes_the_sampling_stream():
    reseed(1)
    a = torch.rand(4)
    reseed(2)
    assert not torch.equal(a, torch.rand(4))


def test_round_trip_through_the_checkpoint_store_on_disk(run, tmp_path):
    trainer = run.trainer
    snap = S.capture(trainer, extra={"detectors": {"value_loss": {"count": 3}}})
    store = CheckpointStore(tmp_path)
    info = store.save("iter_0005", S.to_state(snap), {"iteration": 5, "env_steps": 160, "stable": True})

    torch.load(info.path / "state.pt", weights_only=True)  # nothing but tensors and plain values
    iterate(run)
    state, meta = store.load(info.path)
    back = S.from_state(state)
    assert back.extra == {"detectors": {"value_loss": {"count": 3}}} and meta["env_steps"] == 160

    S.restore(trainer, back, restore_rng=True)
    _assert_matches_snapshot(trainer, snap)
    assert torch.equal(torch.get_rng_state(), snap.rng["torch_cpu"])
    assert np.array_equal(np.random.get_state()[1], snap.rng["numpy"][1])
    assert random.getstate() == snap.rng["python"]


def test_load_checkpoint_into_accepts_our_checkpoint_dir(run, tmp_path):
    snap = S.capture(run.trainer)
    info = CheckpointStore(tmp_path).save("s", S.to_state(snap), {"iteration": 1, "env_steps": 32})
    iterate(run)
    loaded = S.load_checkpoint_into(run.trainer, info.path)
    assert loaded["kind"] == "watchdog" and loaded["optimizers"] == ["critic", "policy"]
    _assert_matches_snapshot(run.trainer, snap)


def test_openrl_module_pt_round_trip(run, tmp_path):
    trainer = run.trainer
    snap = S.capture(trainer)
    path = S.save_openrl_module(trainer.algo_module, S.openrl_checkpoint_dir(tmp_path, 3200))
    assert path == tmp_path / "rl_model_3200_steps" / "module.pt"
    assert [p.name for p in path.parent.iterdir()] == ["module.pt"]  # no temp file left

    plain = torch.load(path, weights_only=False)  # what agent.load() does
    assert type(plain).__name__ == "PPOModule"
    _assert_trees_equal(plain.models["critic"].state_dict(), snap.models["critic"])
    read = read_openrl_module(path)
    _assert_trees_equal(read.state_dicts, snap.models)
    _assert_trees_equal(read.optimizers["policy"]["state"], snap.optimizers["policy"]["state"])

    iterate(run)
    loaded = S.load_checkpoint_into(trainer, path.parent)
    assert loaded["kind"] == "openrl"
    models, optimizers = _live(trainer)
    _assert_trees_equal(models, snap.models)
    _assert_trees_equal(optimizers["policy"]["state"], snap.optimizers["policy"]["state"])


def test_loading_a_checkpoint_of_another_width_names_the_flag(run, tmp_path):
    env, other = _make_net(["--hidden_size", "32", "--seed", "0"])
    env.close()
    path = S.save_openrl_module(other.module, tmp_path / "rl_model_1_steps")
    before, _ = _live(run.trainer)

    with pytest.raises(CheckpointError) as exc:
        S.load_checkpoint_into(run.trainer, path)
    message = str(exc.value)
    assert "was trained with hidden_size 32 but this run uses 64" in message
    assert "(pass --hidden_size 32)" in message and "\n" not in message
    after, _ = _live(run.trainer)
    _assert_trees_equal(after, before)  # checked before anything changed


def test_loading_a_diverged_openrl_checkpoint_is_refused(run, tmp_path):
    env, other = _make_net(ARGS)
    env.close()
    with torch.no_grad():
        other.module.models["policy"].base.mlp.fc1[0].weight[0, 0] = float("inf")
    path = S.save_openrl_module(other.module, tmp_path / "bad" / "module.pt")
    with pytest.raises(CheckpointError, match="NaN/Inf, first policy.base.mlp.fc1.0.weight"):
        S.load_checkpoint_into(run.trainer, path)


def test_gpu_layout_value_norm_is_captured_and_restored(tmp_path):
    """On CUDA, ValueNorm's `nn.Parameter(...).to(device)` leaves plain tensors outside state_dict()."""
    env, net = _make_net(["--hidden_size", "32", "--seed", "0"])
    env.close()
    vn = net.module.models["critic"].value_normalizer
    for name in ("running_mean", "running_mean_sq", "debiasing_term"):
        tensor = getattr(vn, name).detach().clone()
        delattr(vn, name)
        setattr(vn, name, tensor)  # now a plain attribute, as after .to("cuda")
    assert "value_normalizer.running_mean" not in net.module.models["critic"].state_dict()

    snap = S.capture(net.module)
    assert "value_normalizer.running_mean" in snap.models["critic"]
    vn.update(torch.full((8, 1), 100.0))
    S.restore(net.module, snap)
    assert torch.equal(vn.running_mean, snap.models["critic"]["value_normalizer.running_mean"])

    path = S.save_openrl_module(net.module, tmp_path / "gpu_like")
    assert "value_normalizer.running_mean" in read_openrl_module(path).state_dicts["critic"]
    vn.update(torch.full((8, 1), -5.0))
    S.load_checkpoint_into(net.module, path)
    assert torch.equal(vn.running_mean, snap.models["critic"]["value_normalizer.running_mean"])
