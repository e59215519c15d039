"""The checkpoint store: atomic writes, verified loads, fallback, retention; OpenRL module.pt reading."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from watchdog import checkpoints as ckpts
from watchdog.checkpoints import CheckpointStore, clone_tree, read_openrl_module
from watchdog.errors import CheckpointError, ConfigError, InternalError

REPO = Path(__file__).resolve().parents[2]
MAPUSH_CKPTS = REPO.parent / "shared/data/mapush_runs/10-15-23_cuboid/checkpoints"
needs_mapush = pytest.mark.skipif(not MAPUSH_CKPTS.is_dir(), reason=f"{MAPUSH_CKPTS} not present")


def _state(scale: float = 1.0) -> dict:
    return {
        "models": {"policy": {"w": torch.full((3, 2), scale), "b": torch.zeros(2)}},
        "optimizers": {"policy": {"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": [{"lr": 1e-3, "params": [0]}]}},
        "hot_params": {"clip_param": 0.2, "ppo_epoch": 5, "_use_max_grad_norm": True},
        "rng": torch.get_rng_state(),
    }


def _meta(steps: int, *, stable: bool = True) -> dict:
    return {"iteration": steps // 10, "env_steps": steps, "stable": stable}


def _assert_one_line(err: Exception) -> None:
    assert "\n" not in str(err) and str(err).strip() == str(err)


# --------------------------------------------------------------------------- save / load


def test_save_writes_state_and_meta_loadable_with_weights_only(tmp_path):
    store = CheckpointStore(tmp_path)
    info = store.save("iter_0001", _state(2.0), _meta(100))

    assert info.path == tmp_path / "iter_0001" and info.stable and info.env_steps == 100 and info.iteration == 10
    raw = torch.load(info.path / "state.pt", weights_only=True)
    assert torch.equal(raw["models"]["policy"]["w"], torch.full((3, 2), 2.0))
    meta = json.loads((info.path / "meta.json").read_text())
    assert {"sha256", "created", "format_version", "iteration", "env_steps", "stable", "tag"} <= set(meta)

    state, meta2 = store.load(info.path)
    assert state["hot_params"] == {"clip_param": 0.2, "ppo_epoch": 5, "_use_max_grad_norm": True}
    assert meta2["sha256"] == meta["sha256"]
    assert [c.tag for c in store.list()] == ["iter_0001"]


def test_load_rejects_a_modified_state_file_with_one_line(tmp_path):
    store = CheckpointStore(tmp_path)
    info = store.save("a", _state(), _meta(10))
    data = bytearray((info.path / "state.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (info.path / "state.pt").write_bytes(bytes(data))

    with pytest.raises(CheckpointError, match="sha256") as exc:
        store.load(info.path)
    _assert_one_line(exc.value)
    assert str(info.path) in str(exc.value)


@pytest.mark.parametrize(("key", "value"), [("iteration", "x"), ("iteration", None), ("env_steps", -5), ("env_steps", 1.5)])
def test_load_rejects_a_meta_whose_iteration_or_steps_are_no_count_with_one_line(tmp_path, key, value):
    """A helper's audit (session 22): `"iteration": "x"` in meta.json ended a resume (train.py --checkpoint) with a
    traceback, exit 1."""
    store = CheckpointStore(tmp_path)
    info = store.save("a", _state(), _meta(10))
    meta = json.loads((info.path / "meta.json").read_text())
    (info.path / "meta.json").write_text(json.dumps({**meta, key: value}))
    with pytest.raises(CheckpointError, match=f"meta.json has {key} {json.dumps(value)}, not a count") as exc:
        store.load(info.path)
    _assert_one_line(exc.value)


def test_load_rejects_nonfinite_weights(tmp_path):
    store = CheckpointStore(tmp_path)
    bad = _state()
    bad["models"]["policy"]["w"][1, 1] = float("nan")
    info = store.save("nan", bad, _meta(10))

    with pytest.raises(CheckpointError, match="NaN/Inf, first models.policy.w") as exc:
        store.load(info.path)
    _assert_one_line(exc.value)


def test_load_of_missing_checkpoint_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="no meta.json"):
        CheckpointStore(tmp_path).load(tmp_path / "nope")


def test_save_refuses_values_weights_only_cannot_read(tmp_path):
    import numpy as np

    with pytest.raises(InternalError, match="ndarray"):
        CheckpointStore(tmp_path).save("x", {"a": np.zeros(3)}, _meta(1))
    assert CheckpointStore(tmp_path).list() == []


def test_numpy_scalars_are_saved_as_the_numbers_they_hold(tmp_path):
    """rl_games' frame-counted linear schedule puts numpy float64 lrs into the optimizer's param groups: a
    float64 passes as a float, and every stable checkpoint was written and sha-verified, then unreadable
    with ``weights_only=True`` (so ``watchdog run`` restarted from scratch)."""
    import numpy as np

    state = {"optimizer": {"param_groups": [{"lr": np.float64(6e-4), "step": np.int64(3), "amsgrad": np.bool_(False)}]},
             "pair": (np.float32(0.5), 1)}
    info = CheckpointStore(tmp_path).save("x", state, _meta(1))
    loaded, _ = CheckpointStore(tmp_path).load(info.path)
    group = loaded["optimizer"]["param_groups"][0]
    assert group == {"lr": 6e-4, "step": 3, "amsgrad": False} and loaded["pair"] == (0.5, 1)
    assert [type(v) for v in group.values()] == [float, int, bool]
    assert clone_tree(state)["optimizer"]["param_groups"][0]["lr"].__class__ is float  # an in-memory snapshot too


@pytest.mark.parametrize("keep_last", [0, -1, 1.5, True])
def test_keep_last_must_be_a_positive_integer(tmp_path, keep_last):
    with pytest.raises(ConfigError, match="keep_last must be an integer >= 1"):
        CheckpointStore(tmp_path, keep_last=keep_last)


# --------------------------------------------------------------------------- atomicity


def test_crash_before_rename_leaves_no_checkpoint(tmp_path, monkeypatch):
    store = CheckpointStore(tmp_path)
    store.save("old", _state(), _meta(10))

    def crash(src, dst):
        raise OSError("simulated crash")

    monkeypatch.setattr(ckpts.os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        store.save("new", _state(), _meta(20))
    monkeypatch.undo()

    assert [c.tag for c in store.list()] == ["old"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]


def test_crash_while_writing_files_leaves_no_checkpoint(tmp_path, monkeypatch):
    store = CheckpointStore(tmp_path)
    real = ckpts._write_synced

    def write_then_die(path, data):
        if path.name == "meta.json":
            raise KeyboardInterrupt  # e.g. Ctrl-C between the two files
        real(path, data)

    monkeypatch.setattr(ckpts, "_write_synced", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        store.save("torn", _state(), _meta(10))
    assert store.list() == [] and list(tmp_path.iterdir()) == []


def test_leftovers_of_a_killed_process_are_ignored_then_removed(tmp_path, caplog):
    store = CheckpointStore(tmp_path)
    store.save("good", _state(), _meta(10))
    (tmp_path / ".tmp-next-1234abcd").mkdir()
    (tmp_path / ".tmp-next-1234abcd" / "state.pt").write_bytes(b"half")
    (tmp_path / "no_meta").mkdir()

    with caplog.at_level(logging.WARNING, logger="watchdog.checkpoints"):
        assert [c.tag for c in store.list()] == ["good"]
    assert "no_meta" in caplog.text

    CheckpointStore(tmp_path)
    assert not (tmp_path / ".tmp-next-1234abcd").exists()


def test_saving_an_existing_tag_replaces_it_completely(tmp_path):
    store = CheckpointStore(tmp_path)
    store.save("same", _state(1.0), _meta(10))
    store.save("same", _state(5.0), _meta(10))
    state, _ = store.load(tmp_path / "same")
    assert float(state["models"]["policy"]["w"][0, 0]) == 5.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same"]


# --------------------------------------------------------------------------- latest_stable


def test_latest_stable_falls_back_past_a_corrupt_one_with_a_warning(tmp_path, caplog):
    store = CheckpointStore(tmp_path)
    store.save("s10", _state(), _meta(10))
    store.save("s20", _state(), _meta(20))
    store.save("u30", _state(), _meta(30, stable=False))
    (tmp_path / "s20" / "state.pt").write_bytes(b"garbage")

    with caplog.at_level(logging.WARNING, logger="watchdog.checkpoints"):
        found = store.latest_stable()
    assert found.tag == "s10"
    assert "s20" in caplog.text and "falling back" in caplog.text


@pytest.mark.parametrize(
    ("before", "expected"),
    [(None, "s30"), (30, "s30"), (29, "s20"), (20, "s20"), (10, "s10"), (9, None)],
)
def test_latest_stable_respects_the_step_bound(tmp_path, before, expected):
    store = CheckpointStore(tmp_path)
    for steps in (10, 20, 30):
        store.save(f"s{steps}", _state(), _meta(steps))
    store.save("u25", _state(), _meta(25, stable=False))
    found = store.latest_stable(before)
    assert (found.tag if found else None) == expected


def test_load_latest_stable_returns_the_verified_state(tmp_path):
    store = CheckpointStore(tmp_path)
    store.save("s10", _state(3.0), _meta(10))
    info, state, meta = store.load_latest_stable()
    assert info.tag == "s10" and meta["env_steps"] == 10
    assert float(state["models"]["policy"]["w"][0, 0]) == 3.0


# --------------------------------------------------------------------------- retention


def test_retention_keeps_the_newest_stable_and_protected_ones(tmp_path):
    store = CheckpointStore(tmp_path, keep_last=2)
    store.save("s10", _state(), _meta(10))
    store.protect("s10")  # e.g. the last one before the current onset window
    store.save("u15", _state(), _meta(15, stable=False))
    for steps in (20, 30, 40, 50):
        store.save(f"s{steps}", _state(), _meta(steps))

    assert [c.tag for c in store.list()] == ["s10", "u15", "s40", "s50"]


def test_retention_never_deletes_the_newest_or_the_one_just_saved(tmp_path):
    store = CheckpointStore(tmp_path, keep_last=1)
    store.save("s50", _state(), _meta(50))
    store.save("s20", _state(), _meta(20))  # saved after a rollback, at fewer env steps
    assert {c.tag for c in store.list()} == {"s20", "s50"}
    store.save("s60", _state(), _meta(60))
    assert [c.tag for c in store.list()] == ["s60"]


# --------------------------------------------------------------------------- OpenRL module.pt


@needs_mapush
def test_reads_all_real_mapush_checkpoints_without_isaacgym():
    paths = sorted(MAPUSH_CKPTS.glob("rl_model_*_steps/module.pt"))
    assert len(paths) == 10
    for path in paths:
        ckpt = read_openrl_module(path)
        assert set(ckpt.state_dicts) == {"policy", "critic"}
        assert "base.mlp.fc1.0.weight" in ckpt.state_dicts["policy"]
        # GPU-trained: ValueNorm stats are tensor attributes, still recovered under state_dict names
        assert {"value_normalizer.running_mean", "value_normalizer.running_mean_sq",
                "value_normalizer.debiasing_term"} <= set(ckpt.state_dicts["critic"])
        assert ckpt.all_finite() and ckpt.nonfinite_keys() == []
        assert ckpt.config["hidden_size"] == ckpt.state_dicts["policy"]["base.mlp.fc1.0.weight"].shape[0]
        assert ckpt.module_class == "openrl.modules.ppo_module.PPOModule"
        opt = ckpt.optimizers["policy"]
        assert len(opt["param_groups"][0]["params"]) == len(ckpt.optimizer_param_names["policy"])
        assert {"exp_avg", "exp_avg_sq", "step"} <= set(opt["state"][0])
    assert "isaacgym" not in sys.modules


@needs_mapush
def test_reading_a_module_pt_imports_neither_openrl_nor_isaacgym():
    code = (
        "import sys; from watchdog.checkpoints import read_openrl_module as r; "
        f"c = r({str(next(MAPUSH_CKPTS.glob('*/module.pt')))!r}); "
        "assert c.all_finite(); bad = [m for m in ('openrl', 'isaacgym', 'gym') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_is_not_executed(tmp_path):
    evil = _Evil()
    evil.marker = tmp_path / "pwned"
    torch.save({"models": evil}, tmp_path / "module.pt")

    with pytest.raises(CheckpointError, match="not an OpenRL module"):
        read_openrl_module(tmp_path)
    assert not evil.marker.exists()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "missing"])
def test_damaged_module_pt_is_a_one_line_checkpoint_error(tmp_path, damage):
    path = tmp_path / "rl_model_10_steps" / "module.pt"
    path.parent.mkdir()
    torch.save({"x": torch.zeros(1000)}, path)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:500])
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint at all")
    else:
        path.unlink()

    with pytest.raises(CheckpointError) as exc:
        read_openrl_module(path.parent)
    _assert_one_line(exc.value)
    assert str(path) in str(exc.value)


def test_reads_a_module_pt_written_by_openrl_agent_save(tmp_path, monkeypatch):
    pytest.importorskip("openrl")
    from openrl.configs.config import create_config_parser
    from openrl.envs.common import make
    from openrl.modules.common import PPONet
    from openrl.runners.common import PPOAgent

    monkeypatch.chdir(tmp_path)
    env = make("CartPole-v1", env_num=2)
    cfg = create_config_parser().parse_args(["--hidden_size", "32", "--seed", "0"])
    net = PPONet(env, cfg=cfg)
    PPOAgent(net).save(tmp_path / "rl_model_0_steps")
    env.close()

    ckpt = read_openrl_module(tmp_path / "rl_model_0_steps")
    for name, model in net.module.models.items():
        live = model.state_dict()
        assert list(ckpt.state_dicts[name]) == list(live)
        assert all(torch.equal(ckpt.state_dicts[name][k], v) for k, v in live.items())
    assert "value_normalizer.running_mean" in ckpt.state_dicts["critic"]
    assert ckpt.config["hidden_size"] == 32
    net.module.optimizers["policy"].load_state_dict(ckpt.optimizers["policy"])  # torch format


def test_a_crash_between_the_two_renames_of_a_replace_keeps_the_old_checkpoint(tmp_path):
    """_replace_dir moves the old dir aside, then renames the new one in; dying in between must
    not lose the only copy (the next store renames the trash back)."""
    store = CheckpointStore(tmp_path, keep_last=5)
    store.save("stable_100_steps", {"w": torch.ones(3)}, {"iteration": 0, "env_steps": 100})
    os.replace(tmp_path / "stable_100_steps", tmp_path / ".trash-stable_100_steps-deadbeef")
    reopened = CheckpointStore(tmp_path, keep_last=5)
    [info] = reopened.list()
    state, meta = reopened.load(info)
    assert info.tag == "stable_100_steps" and torch.equal(state["w"], torch.ones(3))
