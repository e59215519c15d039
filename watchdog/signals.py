"""The metric record one PPO iteration produces, and the stable metric keys.

Every producer (the live OpenRL hook, TensorBoard events, OpenRL's ``log.txt``, our event log)
turns its numbers into :class:`MetricRecord` with these keys, so the detectors see one vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping

VALUE_LOSS = "train/value_loss"
CRITIC_GRAD_NORM = "train/critic_grad_norm"
ACTOR_GRAD_NORM = "train/actor_grad_norm"
POLICY_LOSS = "train/policy_loss"
ENTROPY = "train/dist_entropy"
RATIO = "train/ratio"
APPROX_KL = "train/approx_kl"
LOG_STD_MAX = "train/log_std_max"  # largest log-std of a Gaussian policy (the live hook reports it)
LOG_STD_MEAN = "train/log_std_mean"  # log of its mean std (what SB3, rsl_rl and skrl log): a lower bound on the largest
STEP_REWARD = "rollout/average_step_reward"
# Other frameworks' signals (watchdog.frameworks maps their tags here).
EPISODE_RETURN = "rollout/episode_return"  # mean return of finished episodes (SB3, rsl_rl, CleanRL, skrl, rl_games)
POLICY_ENTROPY = "train/entropy"  # the policy's entropy as a framework reports it (not OpenRL's dist_entropy sum)
CLIP_FRACTION = "train/clip_fraction"
EXPLAINED_VARIANCE = "train/explained_variance"
LEARNING_RATE = "train/learning_rate"
STD_CLIMB_KEYS = (ENTROPY, LOG_STD_MAX, LOG_STD_MEAN)  # what the policy-std detector reads: a steady climb, not a change point
WATCHDOG_STATE = "watchdog/state"
WATCHDOG_ROLLBACKS = "watchdog/rollbacks"
WATCHDOG_ONSET = "watchdog/onset_iteration"
# The task's curriculum terms as the run logs them (Isaac Lab's ``Curriculum/<term>``): ``curriculum/<term>``.
CURRICULUM_PREFIX = "curriculum/"
# Resources of the training process (watchdog.resources): the machine, not the learning.
SYS_PREFIX = "sys/"
SYS_RSS_MB = "sys/rss_mb"  # resident memory of the training process (host)
SYS_MEM_TOTAL_MB = "sys/mem_total_mb"  # the machine's memory, or the cgroup's limit when lower
SYS_CUDA_ALLOCATED_MB = "sys/cuda_allocated_mb"  # torch's caching allocator: memory in live tensors
SYS_CUDA_RESERVED_MB = "sys/cuda_reserved_mb"  # ... held from the device (what runs out first)
SYS_CUDA_PEAK_MB = "sys/cuda_peak_mb"  # ... peak allocated since the process started
SYS_CUDA_TOTAL_MB = "sys/cuda_total_mb"  # the device's memory
SYS_GPU_UTIL = "sys/gpu_util"  # NVML: percent of time a kernel ran (device-wide)
SYS_GPU_TEMP_C = "sys/gpu_temp_c"  # NVML: degrees Celsius
SYS_STEPS_PER_S = "sys/steps_per_s"  # env steps per wall-clock second since the previous record
# (memory signal, its default limit) pairs the memory forecast judges
MEMORY_LIMITS = ((SYS_CUDA_RESERVED_MB, SYS_CUDA_TOTAL_MB), (SYS_RSS_MB, SYS_MEM_TOTAL_MB))
# Memory the watchdog holds by design: its in-memory copies of the retained stable checkpoints (weights,
# optimizer moments), on the host for OpenRL (CPU copies) and on the training's device for integrations that
# clone in place. They grow with every stable checkpoint until retention's bound (policy.keep_stable + 1), so the
# memory forecast fits its climb without them (a bounded climb is not a leak), while sys/rss_mb stays the real one.
SYS_WATCHDOG_HOST_MB = "sys/watchdog_host_mb"
SYS_WATCHDOG_CUDA_MB = "sys/watchdog_cuda_mb"
HELD_BY_SIGNAL = {SYS_RSS_MB: SYS_WATCHDOG_HOST_MB, SYS_CUDA_RESERVED_MB: SYS_WATCHDOG_CUDA_MB}

TRAIN_KEYS = (VALUE_LOSS, CRITIC_GRAD_NORM, ACTOR_GRAD_NORM, POLICY_LOSS, ENTROPY, RATIO, APPROX_KL, LOG_STD_MAX,
              LOG_STD_MEAN)
# Metrics whose non-finite value means the run is broken (others, e.g. extra scalars, are ignored).
TRACKED_KEYS = (VALUE_LOSS, CRITIC_GRAD_NORM, ACTOR_GRAD_NORM, POLICY_LOSS, ENTROPY, RATIO, STEP_REWARD, LOG_STD_MAX,
                LOG_STD_MEAN, EPISODE_RETURN, POLICY_ENTROPY)

_BARE_TO_KEY = {key.split("/", 1)[1]: key for key in TRAIN_KEYS}
_BARE_TO_KEY.update(
    {
        "average_step_reward": STEP_REWARD,
        "average step reward": STEP_REWARD,
        "entropy": ENTROPY,
        "approxkl": APPROX_KL,
    }
)
# OpenRL/MAPush reward components: `push_reward` -> `rollout/push_reward`.
_REWARD_SUFFIXES = ("_reward", "_punishment", "_reward_scale", "_rewards")


def normalize_key(name: str) -> str:
    """Map OpenRL's bare names (``value_loss``) and ours (``train/value_loss``) to one key."""
    name = name.strip()
    if "/" in name:
        return name
    if name in _BARE_TO_KEY:
        return _BARE_TO_KEY[name]
    if name.endswith(_REWARD_SUFFIXES):
        return f"rollout/{name}"
    return f"extra/{name}"


@dataclass
class MetricRecord:
    """One PPO iteration (OpenRL's "episode"): its index, env steps so far, and its scalars."""

    iteration: int
    env_steps: int
    metrics: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, iteration: int, env_steps: int, values: Mapping[str, object]) -> "MetricRecord":
        """Build a record from any mapping of names to numbers, normalising the names."""
        metrics: dict[str, float] = {}
        for name, value in values.items():
            try:
                metrics[normalize_key(str(name))] = float(value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                continue
        return cls(int(iteration), int(env_steps), metrics)

    def get(self, key: str) -> float | None:
        """The value of ``key`` (bare or namespaced), or None when this record lacks it."""
        return self.metrics.get(normalize_key(key))

    def surely_finite(self) -> bool:
        """True when every value is a finite float, found by one sum (NaN/Inf never sum to a finite
        float); False when some value may not be: :meth:`nonfinite_keys` decides."""
        try:
            total = sum(self.metrics.values())
        except (TypeError, OverflowError):  # not plain numbers
            return False
        return type(total) is float and total - total == 0

    def nonfinite_keys(self, keys: Iterable[str] = TRACKED_KEYS) -> list[str]:
        """Tracked keys whose value is NaN or infinite (``sys/*`` never: a counter is not the run)."""
        return [k for k in keys if k in self.metrics and not k.startswith(SYS_PREFIX)
                and not math.isfinite(self.metrics[k])]

    def to_dict(self) -> dict:
        """A JSON-ready dict; NaN/Inf become strings so the line stays valid JSON."""
        return {
            "iteration": self.iteration,
            "env_steps": self.env_steps,
            "metrics": {k: (v if math.isfinite(v) else str(v)) for k, v in self.metrics.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> "MetricRecord":
        """Inverse of :meth:`to_dict`."""
        return cls.from_mapping(data["iteration"], data["env_steps"], data.get("metrics", {}))
