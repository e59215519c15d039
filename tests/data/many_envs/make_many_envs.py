"""Write rsl_rl, rl_games and skrl runs at Isaac Lab's scale of envs under tests/data/many_envs/ (CPU).

    PYTHONPATH=. python tests/data/many_envs/make_many_envs.py [run ...]

Isaac Lab trains with thousands of envs, so the logged losses (means over tens of thousands of
transitions) are smooth and the mean reward is renewed every iteration, with far less noise than the
runs of 64 envs or fewer elsewhere in tests/data. The detectors are scale-free, judged against each run's own
noise; these runs check they do not take a smooth run's small wobbles for a departure. push_lite (our
torch-vectorised MAPush structure) with 512 envs x 2 agents = 1,024 actors, each library with the
settings ../mujoco uses (Isaac Lab's rsl_rl and skrl locomotion PPO, Isaac Gym's rl_games PPO). The
fault: the learning rate x30 from a known update on (the fixed schedule, as in ../mujoco). Each run's
checkpoints are deleted afterwards (rsl_rl's git-status folder too).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
DATE = "2026-11-30_18-00-00"
ENVS = 512
# run -> (library, iterations, keyword arguments of its function below: lr_jump (update, factor) of the
# learning-rate fault, seed (torch's and the envs', 0), obs_spike (iteration, actors, factor) of a one-step
# observation spike, entropy_jump (update, factor) of an entropy-coefficient fault)
RUNS = {
    "rsl_rl/push_lite_healthy": ("rsl_rl", 600, {}),
    "rsl_rl/push_lite_lr_fault": ("rsl_rl", 500, {"lr_jump": (300, 30.0)}),
    "rl_games/push_lite_healthy": ("rl_games", 600, {}),
    "rl_games/push_lite_lr_fault": ("rl_games", 500, {"lr_jump": (300, 30.0)}),
    # skrl learned nothing with either schedule: KLAdaptiveLR drove its lr to 2.6e-5 within 50 updates and the
    # return slid from 8 to -7.7; on the fixed 1e-3 (made as an lr x30 fault from 300) the surrogate loss
    # blew up at 68 and everything was NaN from 72, long before the jump (README.md)
    "skrl/push_lite_adaptive_lr": ("skrl", 600, {}),
    "skrl/push_lite_fixed_lr": ("skrl", 500, {"lr_jump": (300, 30.0)}),
    # the fixed schedule at 3e-4 (lr x0.3 from update 0), made to see whether skrl learns here without KL
    # adaptation: it learned (return 5 -> 9 by 80), then its surrogate loss spiked from 122 and blew up from 149,
    # NaN from 155
    "skrl/push_lite_fixed_lr3e-4": ("skrl", 400, {"lr_jump": (0, 0.3)}),
    # session 9: long healthy runs (Isaac Lab's runs go on for thousands of iterations after they plateau), on
    # another seed than the 600-iteration ones
    "rsl_rl/push_lite_long_healthy": ("rsl_rl", 3000, {"seed": 1}),
    "rl_games/push_lite_long_healthy": ("rl_games", 2000, {"seed": 1}),
    # session 9: a fault of another kind, as a simulator that blows up shows it (Isaac Gym's physics: a few envs'
    # states jump to huge values for a step): 8 of the 1,024 actors' observations x1e6 for one env step of epoch
    # 300, straight into rl_games' running input normaliser
    "rl_games/push_lite_obs_spike": ("rl_games", 500, {"obs_spike": (300, 8, 1e6)}),
    # the same spike into rsl_rl's running observation normaliser (on for this run only: Isaac Lab turns it on
    # for many tasks, empirical_normalization / actor_obs_normalization)
    "rsl_rl/push_lite_obs_spike": ("rsl_rl", 500, {"obs_spike": (300, 8, 1e6)}),
    # session 10: the entropy coefficient x100 from update 300 (0.005 -> 0.5, as a config changed on resume):
    # the bonus outweighs the reward's pull on the policy's noise
    "rsl_rl/push_lite_entropy_fault": ("rsl_rl", 500, {"entropy_jump": (300, 100.0)}),
}


def rsl_rl(name: str, iterations: int, lr_jump=None, seed: int = 0, obs_spike=None, entropy_jump=None) -> None:
    """rsl_rl's OnPolicyRunner with Isaac Lab's locomotion PPO settings (../mujoco's, 128-128 ELU) on the
    1,024 push_lite actors; ``lr_jump`` (update, factor) on the fixed schedule, as ../mujoco; ``obs_spike``
    (iteration, actors, factor): those actors' observations x factor for the first env step of that
    iteration, with the models' running observation normaliser on (off otherwise, as ../mujoco);
    ``entropy_jump`` (update, factor): that update (0-based) and every later one with the entropy
    coefficient x factor."""
    from tests.data.frameworks.make_runs import _push_lite_vecenv
    from tests.data.mujoco.make_mujoco_runs import rsl_rl_train

    out = HERE / name
    shutil.rmtree(out, ignore_errors=True)
    torch.manual_seed(seed)
    rsl_rl_train(_push_lite_vecenv(ENVS, None, 24, seed, obs_spike), [128, 128], out / "logs" / DATE, iterations,
                 lr_jump, save_interval=1000, obs_normalization=obs_spike is not None, entropy_jump=entropy_jump)


def rl_games(name: str, epochs: int, lr_jump=None, seed: int = 0, obs_spike=None) -> None:
    """rl_games' Runner with Isaac Gym's PPO settings (../mujoco's ``rl_games_train``, rewards as they are)
    on the 1,024 push_lite actors; ``lr_jump`` (epoch, factor): that epoch (0-based) and every later one at
    the learning rate x factor, on the fixed schedule; ``obs_spike`` (epoch, actors, factor): the
    observations of that many actors x factor for the first env step of that epoch (0-based; 16 steps an
    epoch), the env itself untouched."""
    import numpy as np
    from rl_games.common.ivecenv import IVecEnv

    from openrl_ws.envs.push_lite import PushLiteVecEnv
    from tests.data.frameworks.make_runs import push_lite_rl_games_info
    from tests.data.mujoco.make_mujoco_runs import rl_games_train

    class PushLiteActors(IVecEnv):
        """push_lite's (env, agent) pairs as rl_games actors."""

        def __init__(self):
            self.inner = PushLiteVecEnv(ENVS, seed=seed)
            self.agents = self.inner.agent_num
            self.actors = ENVS * self.agents
            self.steps = 0

        def step(self, actions):
            obs, rew, dones, _ = self.inner.step(np.asarray(actions).reshape(ENVS, self.agents, -1))
            obs = obs.reshape(self.actors, -1)
            if obs_spike is not None and self.steps == obs_spike[0] * 16:
                obs = obs.copy()
                obs[: obs_spike[1]] *= obs_spike[2]
            self.steps += 1
            return (obs, rew.reshape(self.actors).astype(np.float32),
                    dones.reshape(self.actors).astype(np.uint8), {})

        def reset(self):
            return self.inner.reset(seed=seed).reshape(self.actors, -1)

        def set_train_info(self, env_frames, algo=None, *args, **kwargs):
            """rl_games calls this before every epoch's update."""
            if lr_jump is not None and algo is not None and env_frames >= lr_jump[0] * 16 * self.actors:
                algo.last_lr = algo.config["learning_rate"] * lr_jump[1]

        def get_env_info(self):
            return push_lite_rl_games_info(self.inner, seed)

    out = HERE / name
    shutil.rmtree(out, ignore_errors=True)
    torch.manual_seed(seed)  # rl_games 1.6.5 seeds nothing for seed 0 (../long_runs/README.md)
    rl_games_train(out / "runs", "push_lite", PushLiteActors, ENVS * 2, epochs, reward_scale=1.0,
                   fixed=lr_jump is not None)


def skrl(name: str, updates: int, lr_jump=None) -> None:
    """skrl's PPO with Isaac Lab's locomotion skrl settings (../mujoco's ``skrl_train``, rewards as they
    are) on the 1,024 push_lite actors, seen through skrl's own gymnasium wrapper as a gymnasium vector env."""
    import gymnasium
    import numpy as np
    from skrl.envs.wrappers.torch import wrap_env
    from skrl.utils import set_seed

    from openrl_ws.envs.push_lite import PushLiteVecEnv
    from tests.data.mujoco.make_mujoco_runs import skrl_train

    class PushLiteActors(gymnasium.vector.VectorEnv):
        """push_lite's (env, agent) pairs as a gymnasium vector env (it resets finished envs itself)."""

        def __init__(self):
            self.inner = PushLiteVecEnv(ENVS, seed=0)
            self.agents = self.inner.agent_num
            first = self.inner.reset(seed=0)
            space = self.inner.action_space
            super().__init__(ENVS * self.agents, gymnasium.spaces.Box(-np.inf, np.inf, first.shape[-1:], np.float32),
                             gymnasium.spaces.Box(space.low, space.high, space.shape, np.float32))

        def reset(self, *, seed=None, options=None):
            return self.inner.reset(seed=0).reshape(self.num_envs, -1), {}

        def step(self, actions):
            obs, rew, dones, _ = self.inner.step(np.asarray(actions).reshape(ENVS, self.agents, -1))
            n = self.num_envs
            return obs.reshape(n, -1), rew.reshape(n), dones.reshape(n), np.zeros(n, dtype=bool), {}

    out = HERE / name
    shutil.rmtree(out, ignore_errors=True)
    set_seed(0)
    skrl_train(out, wrap_env(PushLiteActors(), wrapper="gymnasium"), updates,
               experiment="26-11-30_18-00-00-000000_PPO", seed=0, reward_scale=None, lr_jump=lr_jump)


def main(argv: list[str]) -> int:
    from tests.data.make_each import make_each

    def make(name: str) -> None:
        library, iterations, kwargs = RUNS[name]
        {"rsl_rl": rsl_rl, "rl_games": rl_games, "skrl": skrl}[library](name, iterations, **kwargs)

    return make_each(RUNS, make, argv)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
