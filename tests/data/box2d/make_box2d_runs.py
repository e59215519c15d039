"""Write the Box2D runs under tests/data/box2d/ with the real libraries (CPU), replayed blind.

    pip install swig box2d-py==2.3.5   # gymnasium's Box2D envs (not a dependency of the watchdog)
    PYTHONPATH=. python tests/data/box2d/make_box2d_runs.py [name ...]

Every run before these was MuJoCo, classic control or MAPush. LunarLander and BipedalWalker reward
differently: an episode ends in a crash (-100) or a landing (+100), a fall (-100) or a finish, so the
return is bimodal and jumps by hundreds while the run is healthy. These are ../mujoco/make_mujoco_runs.py's
functions, imported unchanged (the same library settings), on Box2D envs; made in session 26 after that
session's changes and replayed blind: no setting was changed after seeing them (README.md). Each
library's own TensorBoard logger wrote the events; the functions delete the checkpoints.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import gymnasium as gym

from tests.data.mujoco import make_mujoco_runs as m

HERE = Path(__file__).resolve().parent
# rl-baselines3-zoo hyperparams/ppo.yml, LunarLander-v2 (v3 is the same task in gymnasium 1.x / 0.29's v2)
m.ZOO.setdefault("LunarLander-v2", dict(n_envs=16, n_steps=1024, batch_size=64, gae_lambda=0.98, gamma=0.999,
                                        n_epochs=4, ent_coef=0.01, policy=None))
# SB3's own defaults. make_mujoco_runs.sb3 looks its settings up by env id, so LunarLander goes by a second id
gym.register("LunarLanderSB3Defaults-v2", entry_point="gymnasium.envs.box2d.lunar_lander:LunarLander",
             max_episode_steps=1000, reward_threshold=200)
m.ZOO.setdefault("LunarLanderSB3Defaults-v2", dict(policy=None))
# name -> (library, gymnasium id, envs or normalize, iterations or steps)
RUNS = {
    "rsl_rl_bipedalwalker": ("rsl_rl", "BipedalWalker-v3", 32, 1000),
    "rl_games_bipedalwalker": ("rl_games", "BipedalWalker-v3", 32, 1000),
    "skrl_bipedalwalker": ("skrl", "BipedalWalker-v3", 32, 1000),
    "sb3_lunarlander_zoo": ("sb3", "LunarLander-v2", False, 1_000_000),
    # SB3's own defaults (one env, 2,048 steps a rollout): 244 rollouts where the zoo's budget makes 61 (not named
    # "..._default": bench.detection reads a run whose path holds "fault" as one made with a fault)
    "sb3_lunarlander_sb3_hyperparams": ("sb3", "LunarLanderSB3Defaults-v2", False, 500_000),
    # the healthy rl_games run above with 4x the envs (its normalised critic loss burst at 32: does it at 128?)
    "rl_games_bipedalwalker_128envs": ("rl_games", "BipedalWalker-v3", 128, 600),
    # the learning rate x30 from update 250 on (../mujoco's lr_fault runs): a fault on the new reward
    "rsl_rl_bipedalwalker_lr_fault": ("rsl_rl", "BipedalWalker-v3", 32, 400, (250, 30.0)),
    "rl_games_bipedalwalker_lr_fault": ("rl_games", "BipedalWalker-v3", 32, 400, (250, 30.0)),
}


def main(argv: list[str]) -> int:
    from tests.data.make_each import make_each

    def make(name: str) -> None:
        library, *args = RUNS[name]
        out = HERE / name
        shutil.rmtree(out, ignore_errors=True)
        {"rsl_rl": m.rsl_rl, "rl_games": m.rl_games, "skrl": m.skrl, "sb3": m.sb3}[library](out, *args)

    return make_each(RUNS, make, argv)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
