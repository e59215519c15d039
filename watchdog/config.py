"""Typed configuration: one pydantic model per component, validated once, with one-line errors.

``cfgs/watchdog.yaml`` maps onto :class:`WatchdogConfig`; ``cfgs/ppo.yaml`` and
``cfgs/ppo_safe.yaml`` map onto :class:`PPOConfig`. Unknown keys, wrong types and impossible
values raise :class:`~watchdog.errors.ConfigError` naming the file, the key, the value and the
legal range.
"""

from __future__ import annotations

import reprlib
import types
from pathlib import Path
from typing import Any, Literal, Mapping, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from watchdog.errors import ConfigError

_STRICT = ConfigDict(extra="forbid", validate_assignment=True)


def _number_not_bool(annotation: Any) -> bool:
    """Whether a field asks for a number and not for true/false (int, float, or a union holding one, no bool):
    pydantic's lax mode takes true as 1 there."""
    if annotation is int or annotation is float:
        return True
    if get_origin(annotation) in (Union, types.UnionType):
        args = get_args(annotation)
        return bool not in args and any(_number_not_bool(a) for a in args)
    return False


class _Config(BaseModel):
    """The base of every config: an unknown key is an error, and so is true/false where a number is asked for
    (pydantic's lax mode read `rollback_budget: true` as 1 and `lr: yes` as 1.0 until session 18)."""

    model_config = _STRICT

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and _number_not_bool(cls.model_fields[info.field_name].annotation):
            raise ValueError("true/false given where a number is asked for")
        return value


class WarmupConfig(_Config):
    """When the detectors may start judging the run."""

    min_iters: int = Field(
        50, ge=0, description="No verdict (except non-finite values and blow-ups) in a detector's first this many "
                              "iterations (counted from the first point it sees, so a resumed run warms up again).",
    )
    baseline_points: int = Field(
        10, ge=3, le=10_000, description="Points a detector needs after warm-up to learn its baseline."
    )


class ValueLossThresholdConfig(_Config):
    """The user's rule: divergence when value loss rises above ``value_loss_max``, away from its settled level.

    Only meaningful where value targets are normalised (OpenRL's ``use_valuenorm``, as in MAPush);
    for frameworks that do not normalise them (SB3, rsl_rl, ...) set ``enabled: false`` and rely on
    the scale-free detectors.
    """

    enabled: bool = True
    value_loss_max: float = Field(0.2, gt=0, description="Value loss above this (after arming) is divergence.")
    arm_fraction: float = Field(
        0.5, gt=0, le=1, description="Arm once the median of the last arm_points points is below arm_fraction * value_loss_max..."
    )
    arm_points: int = Field(
        20, ge=3, le=100_000,
        description="...and their arm_quantile quantile is not above value_loss_max (points, so that arming needs "
                    "this much evidence at any logging resolution).",
    )
    arm_iters: int = Field(
        100, ge=0, le=10_000_000, description="...covering at least this many iterations (per-iteration data arms on "
                                              "as much of the run as logged data)."
    )
    arm_quantile: float = Field(
        0.9, gt=0.5, le=1, description="1.0: no point of the arming window may be above value_loss_max; 0.9: "
                                       "isolated spikes (a tenth of the points) are allowed.",
    )
    departure_ratio: float = Field(
        3.0, ge=1, description="A point departs when it is this many times the settled level...",
    )
    departure_sigmas: float = Field(
        3.0, ge=0, description="...and this many of the run's own robust sigmas (log space) above it.",
    )
    baseline_iters: int = Field(100, ge=1, le=10_000_000, description="The settled level: the median over this many iterations...")
    lag_iters: int = Field(
        100, ge=0, le=10_000_000, description="...ending this many iterations before the newest point (a slow climb is not absorbed)."
    )
    patience_points: int = Field(
        2, ge=1, le=1000, description="Consecutive departing points before the alarm (the last above value_loss_max)..."
    )
    patience_iters: int = Field(
        5, ge=0, le=100_000, description="...spanning at least this many iterations (the same evidence per iteration "
                                         "and per log_interval)."
    )
    excursion_factor: float | None = Field(
        1.5, ge=1, description="An alarm's 3-point level must be this many times every 3-point level of a departure "
                               "the run came back from (and held its settled level after) within baseline_iters "
                               "iterations (trend's excursion test; null: off): a loss that visits 0.2-1 and returns, "
                               "again and again, crossing 0.2 once more is not news.",
    )


def _keys_we_read(value):
    """A detector's signal is a metric key we read: a misspelt one (``train/valueloss``) left its detector seeing
    nothing, and a diverging run replayed HEALTHY (until session 17)."""
    from watchdog.frameworks import MAPPABLE_KEYS

    for key in [value] if isinstance(value, str) else value or []:
        if key not in MAPPABLE_KEYS:
            raise ValueError(f"'{key}' is not a metric key we read (legal: {', '.join(MAPPABLE_KEYS)})")
    return value


class BlowUpConfig(_Config):
    """A sustained blow-up is divergence at any time, warm-up included (scale-free)."""

    _known = field_validator("signals", "explained_by")(_keys_we_read)
    enabled: bool = True
    signals: list[str] = Field(
        default_factory=lambda: ["train/value_loss"], description="Metric keys watched for a blow-up."
    )
    ratio: float = Field(100.0, gt=1, description="3-point median this many times its recent floor...")
    floor_points: int = Field(10, ge=3, le=10_000, description="...the lowest 3-point median of this many previous points...")
    envelope_factor: float = Field(
        3.0, ge=1,
        description="...and this many times every level the run held before that floor (before the window, and in it "
        "before its low), every single value in the window before its low, and the second-highest single value "
        "before the window (one outlier does not raise the bar for good)."
    )
    patience_points: int = Field(
        1, ge=1, le=1000, description="Consecutive points before the alarm (a 3-point median is already two points high)."
    )
    explained_by: str | None = Field(
        None,
        description="The return's metric key, where the value targets are not normalised (set per run): a blow-up "
        "while the return jumped above its own recent range and by at least the loss's root, and not climbing "
        "envelope_factor x further, is the critic meeting returns it has not seen, an advisory warning, not an "
        "alarm.",
    )


class TrendConfig(_Config):
    """Early warning: a one-sided CUSUM on standardised log-values against the run's own baseline."""

    _known = field_validator("signals", "explained_by")(_keys_we_read)
    enabled: bool = True
    signals: list[str] = Field(
        default_factory=lambda: ["train/value_loss", "train/critic_grad_norm"],
        description="Metric keys watched for an upward trend.",
    )
    baseline_iters: int = Field(
        250, ge=5, le=10_000_000, description="The log-space baseline: this many iterations of the signal...")
    lag_iters: int = Field(
        150, ge=0, le=10_000_000, description="...ending this many iterations before the newest point."
    )
    z_cap: float = Field(3.0, gt=0, description="Cap on |z| per point, so one spike cannot trigger alone.")
    drift_k: float = Field(0.5, ge=0, description="CUSUM allowance per point, in baseline sigmas.")
    warn_h: float = Field(
        5.0, gt=0, description="CUSUM level a verdict needs (5: two points at the z cap, less the allowance).")
    ref_quantile: float = Field(
        0.9, ge=0.5, lt=1, description="The reference level: this quantile of the baseline window (the top of the "
                                       "run's own recent range, excursions it came back from included).",
    )
    warn_ratio: float = Field(
        3.0, ge=1, description="A verdict needs the 3-point median this many times the reference..."
    )
    persist_points: int = Field(
        2, ge=1, le=1000, description="...for this many points in a row, for a warning (an alarm needs one: the 3-point "
                                      "median already needs two points; two spikes within three points make one).")
    alarm_ratio: float | None = Field(
        4.0, gt=1, description="Alarm (not just warn) when the 3-point median is this many times the reference; "
                                "null = warn only."
    )
    alarm_span_iters: int = Field(
        5, ge=0, le=100_000,
        description="An alarm's climb must also span this many iterations, from the oldest of the 3 points of its "
                    "first high 3-point level (the value-loss rule's patience_iters: the same evidence per iteration "
                    "and per log_interval; at log_interval 5 the first high level spans 10); shorter, a warning.")
    blowup_ratio: float | None = Field(
        100.0, gt=1,
        description="Where alarm_ratio is null (value targets not normalised: a climb may be a policy learning), a "
                    "climb this many times the reference is an alarm all the same, unless the return has risen since the "
                    "baseline's time by at least the loss's root (explained_by): a slow blow-up (x1.3 an update to 10^7x) "
                    "never makes blowup's 100x within 10 points. null = warn only.")
    excursion_factor: float | None = Field(
        1.5, ge=1,
        description="An alarm's 3-point median must also be this many times every 3-point median of the baseline "
                    "window (an excursion the run came back from); below it, a warning. null = no such test.")
    jump_points: int = Field(
        3, ge=1, le=1000, description="A climb also alarms when its 3-point median holds alarm_ratio x above the newest "
                                      "normal stretch (the points after the lagged baseline, before the climb) for "
                                      "this many points: a jump while the run is still falling from a higher past.")
    min_sigma: float = Field(
        0.1, gt=0, description="Floor on the baseline's log-space sigma (a flat baseline is not infinitely precise)."
    )
    explained_by: str | None = Field(
        None,
        description="The return's metric key, where the value targets are not normalised (set per run): a climb while "
        "the return stands above the highest it held before the climb (over the baseline span) by at least the "
        "loss's root is the critic meeting returns it has not seen, and is not said.",
    )


class CriticGradNormConfig(_Config):
    """Critic gradient norm (before clipping): absolute ceiling and jump against its baseline."""

    enabled: bool = True
    ceiling: float = Field(1.0, gt=0, description="Norm above this raises a WARNING (field report: < 1.0 healthy)...")
    ceiling_ratio: float = Field(3.0, ge=1, description="...when it is also this many times its rolling median.")
    jump_factor: float = Field(
        20.0, gt=1, description="Norm above jump_factor x its rolling median raises a WARNING."
    )
    patience_points: int = Field(3, ge=1, le=1000, description="Consecutive points before a WARNING.")
    baseline_points: int = Field(50, ge=5, le=100_000, description="Rolling window for the median.")


class RewardCollapseConfig(_Config):
    """A reward drop abnormal for this run, in units of the run's own reward-change scale."""

    _known = field_validator("signal")(_keys_we_read)
    enabled: bool = True
    signal: str = Field("rollout/average_step_reward", description="Reward metric key.")
    horizon_points: int = Field(3, ge=1, le=1000, description="Drop measured over this many points.")
    baseline_points: int = Field(100, ge=10, le=100_000, description="Window for the robust change scale (points).")
    baseline_iters: int = Field(
        500, ge=10, le=10_000_000, description="The reward's recent level and range: this many iterations...")
    horizon_iters: int = Field(15, ge=0, le=10_000_000, description="...ending this many iterations before the newest.")
    drop_sigmas: float = Field(
        8.0, gt=0, description="Reward this many robust sigmas of its own changes below its lagged median..."
    )
    min_rel_drop: float = Field(
        0.5, ge=0,
        description="...and larger than this fraction of the run's recent 5-95 % reward range (ignores noise; a run "
        "still climbing is judged from where it stood just before the lag, for a fall that also loses this fraction of "
        "what it gained since judging began)..."
    )
    persist_points: int = Field(3, ge=1, le=1000, description="...for this many points in a row.")
    min_gain: float = Field(
        1.0, ge=0,
        description="A collapse is a standing warning only where the reward had gained (its lagged median above "
                    "the one it had when judging began by this many times that first window's 5-95 % range) or "
                    "fell below that first window by as much; where the run climbed through that window (its last "
                    "quarter's range wholly above its first quarter's), the first quarter's median and the larger "
                    "of the two quarters' ranges stand for the window's. Otherwise (nothing learned to lose: a "
                    "flat run's running mean wanders) it is advisory, and still divergence when the policy's "
                    "entropy or KL says the policy changed.",
    )


class EntropyCollapseConfig(_Config):
    """The policy's entropy falling abruptly far below everything it did over its recent past.

    A policy that learns grows surer steadily: its entropy moves by a fraction of its recent range
    per ``lag_iters``. A policy that collapses (an update far outside PPO's trust region, a learning
    rate too high) loses most of its entropy within a few updates. Advisory on its own; with a reward
    collapse at the same time it is divergence (``policy_collapse``).
    """

    enabled: bool = True
    baseline_iters: int = Field(
        200, ge=10, le=10_000_000, description="The entropy's recent range: this many iterations...")
    lag_iters: int = Field(20, ge=0, le=10_000_000, description="...ending this many iterations before the newest.")
    range_ratio: float = Field(
        2.0, gt=0, description="Entropy below the range's 5 % quantile by this many times its 5-95 % width...")
    min_drop_nats: float = Field(
        0.2, ge=0, description="...and by at least this many nats (a drop of 0.01 nats is no collapse, however flat the past)...")
    persist_points: int = Field(3, ge=1, le=1000, description="...for this many points in a row.")
    horizon_iters: int | None = Field(
        None, ge=1, le=10_000_000,
        description="Also a change: over the last this many iterations, the entropy moved this way (from its extreme "
                    "there) by horizon_ratio x the most it rose or fell within as long in the window, and min_drop_nats "
                    "(None: off, entropy_collapse's default: a learning policy's entropy falls)...")
    horizon_ratio: float = Field(3.0, gt=1, description="...by this many times that most.")


class EntropySurgeConfig(EntropyCollapseConfig):
    """The policy's entropy *rising* abruptly far above its recent range (a Gaussian policy's std
    running away within a few updates): the same fields, read upwards (``range_ratio`` times the
    window's 5-95 % width above its 95 % quantile, and ``min_drop_nats`` nats). Advisory on its own;
    with a reward collapse at the same time it is divergence (``policy_collapse``).

    A learning policy's entropy falls through its window, so the window's range holds that fall, and a runaway
    that begins at the bottom of it stays inside "2x the range" for a long time (rsl_rl's entropy coefficient x100:
    -0.05 -> 2.0 nats while the return fell 2,296 -> 160, never a surge by the range). So a rise is also a surge
    when it is ``horizon_ratio`` times faster than the policy moved either way over the window (the most its
    entropy rose or fell within ``horizon_iters``): PPO's trust region bounds how fast a policy's entropy moves, in
    either direction, and a healthy policy's falls while it learns are that speed."""

    horizon_iters: int | None = Field(
        20, ge=1, le=10_000_000,
        description="Also a surge: over the last this many iterations, the entropy rose (from its low there) by "
                    "horizon_ratio x the most it rose or fell within as long in the window, and min_drop_nats (None: off)...")


class SurgeConfig(_Config):
    """A signal jumping far above its own recent range (``kl_surge``, ``surrogate_surge``)."""

    enabled: bool = True
    baseline_iters: int = Field(
        200, ge=10, le=10_000_000, description="The signal's recent range: this many iterations...")
    lag_iters: int = Field(20, ge=0, le=10_000_000, description="...ending this many iterations before the newest.")
    ratio: float = Field(20.0, gt=1, description="The signal at least this many times the range's 95 % quantile...")
    persist_points: int = Field(3, ge=1, le=1000, description="...for this many points in a row.")


class KlSurgeConfig(SurgeConfig):
    """The policy's per-update KL divergence (``train/approx_kl``) jumping far above its own recent range.

    PPO keeps each update inside a trust region; a learning rate or an epoch count too large for it
    shows first as KL per update one to four orders of magnitude above what the run did before. Advisory
    on its own (such updates can still help); with a reward collapse at the same time it is divergence
    (``policy_collapse``). A KL that *stays* far beyond any trust region (``alarm_kl`` nats, ten times
    the largest usual target, for ``alarm_points`` updates in a row) is an alarm on its own: the optimizer
    replaces the policy every update, and no PPO run learns that way.
    """

    min_kl: float = Field(
        1e-3, ge=0, description="A surge also needs the KL at least this (nats per update; PPO's usual target_kl is "
                                "0.01-0.05).")
    alarm_kl: float | None = Field(
        0.5, gt=0,
        description="An alarm on its own: KL per update at least this (nats; 10x the largest usual target_kl, 0.05)...")
    alarm_points: int = Field(5, ge=1, le=1000, description="...for this many points in a row (after warm-up).")
    alarm_range_ratio: float = Field(
        3.0, ge=1,
        description="...each also this many times the top (95 % quantile) of the run's own recent range, once that "
                    "range is known: a run whose KL lives there (SB3's gSDE with a std of 0.02: 0.2-26 nats) is not "
                    "replacing its policy against its own habit.")


class SurrogateSurgeConfig(SurgeConfig):
    """PPO's surrogate (policy) loss, by its size, jumping far above its own recent range: the trust-region
    evidence of the frameworks that log no KL (rsl_rl, skrl, OpenRL/MAPush).

    With normalised advantages the clipped surrogate stays small (0.00003-0.1 in every healthy run here);
    it leaves that when probability ratios run far beyond the clip on negative advantages, the policy
    moved far outside its trust region. ``kl_surge``'s test on the loss's size, advisory as it is (with a
    reward collapse, ``policy_collapse``); no alarm of its own. Its size also dates a NaN that follows it.
    """


class PolicyStdConfig(_Config):
    """The Gaussian policy's std running away towards float32 overflow (NaN in the log-probs).

    With the entropy bonus and clipped actions, nothing stops a log-std that the reward no longer
    constrains: it climbs by up to lr x ppo_epoch per iteration, and once sigma**2 leaves float32
    (log-std about 44; a few samples fail from 43) every log-prob and then every weight is NaN.
    """

    enabled: bool = True
    action_dims: int = Field(
        3, ge=1, le=1024,
        description="Action dimensions, to read the mean log-std from dist_entropy (MAPush: vx, vy, vyaw). "
                    "Live training reports the exact largest log-std instead.",
    )
    overflow_log_std: float = Field(43.0, gt=0, description="Log-std at which float32 log-probs start to fail.")
    warn_within_iters: int = Field(300, ge=1, description="An advisory warning (said once) when the overflow is this many iterations away.")
    alarm_within_iters: int = Field(30, ge=1, description="ALARM (divergence) when it is this close.")
    rate_points: int = Field(10, ge=3, le=10_000, description="Points for the least-squares climb rate.")
    saturated_log_std: float = Field(
        1.0, allow_inf_nan=False, description="Above this log-std, actions clipped to [-1, 1] are mostly noise: the climb's onset "
                         "(the rollback target precedes it) is where the log-std last rose above it.",
    )

    @model_validator(mode="after")
    def _alarm_inside_warning(self) -> "PolicyStdConfig":
        if self.alarm_within_iters > self.warn_within_iters:
            raise ValueError(f"alarm_within_iters ({self.alarm_within_iters}) must not exceed "
                             f"warn_within_iters ({self.warn_within_iters})")
        return self


class MemoryConfig(_Config):
    """Memory creeping towards an out-of-memory death: a least-squares climb extrapolated to the limit.

    Judges ``sys/cuda_reserved_mb`` (torch's allocator, our process) against ``cuda_limit_mb`` and
    ``sys/rss_mb`` (the process's resident memory) against ``rss_limit_mb``, whichever the records
    carry. Its alarms never roll back weights (that frees no leaked memory): see ``action``.
    """

    enabled: bool = True
    action: Literal["alert", "checkpoint", "stop"] = Field(
        "stop",
        description="On an alarm: alert (report only); checkpoint (save a resumable checkpoint now, train on); "
                    "stop (save it, then end the run with exit 1 and a restartable stop that `watchdog run` "
                    "restarts from it). Independent of the top-level `action`, which governs divergence.",
    )
    rss_limit_mb: float | None = Field(
        None, gt=0, description="Host memory limit in MiB (null: the machine's memory, or its cgroup limit when lower).")
    cuda_limit_mb: float | None = Field(
        None, gt=0, description="CUDA memory limit in MiB (null: the device's total; other processes on it are not "
                                "subtracted, so set it on a shared GPU).")
    warn_within_iters: int = Field(500, ge=1, description="WARNING when the limit is this many iterations away.")
    alarm_within_iters: int = Field(50, ge=1, description="ALARM (action) when it is this close.")
    window_points: int = Field(
        30, ge=3, le=10_000,
        description="Points a climb is judged over (from two thirds of them on): its older two thirds and newest third "
                    "must each climb; the newest third's rate is forecast.")
    min_climb_mb: float = Field(
        8.0, ge=0, description="Ignore a climb smaller than this over the window (allocator and GC noise); a leak "
                               "slower than min_climb_mb / window_points per point is not forecast.")
    warmup_points: int = Field(
        10, ge=0, description="No verdict on the first this many points of each process (allocators and buffers "
                              "fill in the first iterations; a resumed process starts over); memory settles long "
                              "before the learning statistics' warm-up ends.")

    @model_validator(mode="after")
    def _alarm_inside_warning(self) -> "MemoryConfig":
        if self.alarm_within_iters > self.warn_within_iters:
            raise ValueError(f"alarm_within_iters ({self.alarm_within_iters}) must not exceed "
                             f"warn_within_iters ({self.warn_within_iters})")
        return self


class ThroughputConfig(_Config):
    """Env steps per second falling well below the run's own settled rate (a warning only)."""

    enabled: bool = True
    drop_fraction: float = Field(
        0.5, gt=0, lt=1, description="WARNING when steps/s stays below this fraction of the settled rate...")
    patience_points: int = Field(5, ge=1, le=10_000, description="...for this many consecutive points.")
    baseline_points: int = Field(
        20, ge=3, le=100_000,
        description="The settled rate: the highest median of this many consecutive points that were not low.")
    warmup_points: int = Field(
        5, ge=0, description="No verdict on the first this many points of each process (start-up, first compilations).")


class NonFiniteConfig(_Config):
    """Any NaN/Inf in a tracked metric is immediate divergence."""

    enabled: bool = True


class CurriculumConfig(_Config):
    """A staged change of the task: a curriculum term the run logs (Isaac Lab's ``Curriculum/<term>``, any
    framework's tag with a ``Curriculum/`` part) that held one value and then took another. The reward and
    the value loss of a new task are new: the detectors that judge their levels (``value_loss``,
    ``blowup``, ``trend``, ``critic_grad_norm``, ``reward_collapse``) start over there, warm-up included.
    A term that moves every iteration (a mean terrain level) never held a value, so it takes no step."""

    enabled: bool = True
    still_iters: int = Field(
        50, ge=1, le=10_000_000, description="A term's new value is a step after it held its old one for this many "
                                             "iterations (a warm-up: between two steps the detectors judge; a mean "
                                             "level that moves every record takes none).")


class PolicyConfig(_Config):
    """What happens on verdicts: checkpoints, rollback, escalation, stop."""

    stable_every_iters: int = Field(10, ge=1, description="Mark a stable checkpoint every this many healthy iterations.")
    recover_points: int = Field(5, ge=1, description="Quiet points before WARNING returns to HEALTHY.")
    advisory_quiet_iters: int = Field(
        100, ge=0, le=10_000_000,
        description="An advisory warning is said once per stretch; the stretch ends after recover_points records "
                    "and this many iterations without it (a fall that comes and goes at its limit is said once).")
    cooldown_iters: int = Field(
        20, ge=0, description="Re-warm-up after a rollback before stable marks resume (and recover_points quiet records "
                              "after a warning the restored run said meanwhile).")
    rollback_budget: int = Field(3, ge=0, le=100, description="Rollbacks allowed before the run is stopped.")
    escalation_lr_factor: float = Field(
        0.5, gt=0, le=1, description="Each further rollback multiplies the safe learning rates by this."
    )
    onset_margin_iters: int = Field(
        10, ge=0,
        description="Roll back to a checkpoint at least this many iterations before an estimated onset "
                    "(an exact one, a first NaN/Inf with no warning before it, needs no margin).",
    )
    keep_stable: int = Field(
        20, ge=1, le=10_000,
        description="Stable checkpoints kept (memory and disk) besides the run's first, which is always kept.",
    )
    corroboration: int = Field(
        0,
        ge=0,
        le=5,
        description="Declare divergence when this many different detectors warn at once (0 = never).",
    )
    reward_corroborates: bool = Field(
        False,
        description="Declare divergence when a value-side warning (value loss or critic grad norm) and a "
                    "reward-collapse warning come at once. Replay, watch and the integrations turn it on where "
                    "value targets are not normalised: there a climbing value loss alone may be a policy "
                    "learning (the trend only warns), with the returns falling it is not.",
    )


_FRAMEWORK_CHOICES = ("auto", "openrl", "rsl_rl", "sb3", "cleanrl", "rl_games", "skrl")


class TagsConfig(_Config):
    """Which framework wrote a run's TensorBoard tags, and a user's own tag map for anything else."""

    framework: Literal[_FRAMEWORK_CHOICES] = Field(  # type: ignore[valid-type]
        "auto", description="auto: detected from the tags; or name it (openrl, rsl_rl, sb3, cleanrl, rl_games, skrl)."
    )
    map: dict[str, str] = Field(
        default_factory=dict,
        description="Their tag -> our key (e.g. 'losses/vf': train/value_loss, or 'Episode/max_command_x': "
                    "curriculum/max_command_x for a curriculum term), on top of the framework's own map.",
    )
    value_targets_normalized: bool | None = Field(
        None, description="Are the run's value targets normalised? null: the framework's default or the run's "
                          "params; false switches the absolute value-loss rule off and has the trend warn "
                          "without alarming, true keeps both.",
    )

    @model_validator(mode="after")
    def _known_keys(self) -> "TagsConfig":
        from watchdog.frameworks import MAPPABLE_KEYS
        from watchdog.signals import CURRICULUM_PREFIX

        for tag, key in self.map.items():
            if key not in MAPPABLE_KEYS and not (key.startswith(CURRICULUM_PREFIX) and key != CURRICULUM_PREFIX):
                raise ValueError(f"map: '{tag}' -> '{key}' is not a metric key we read "
                                 f"(legal: {', '.join(MAPPABLE_KEYS)}, or curriculum/<term>)")
        return self


class WatchdogConfig(_Config):
    """Everything in ``cfgs/watchdog.yaml``."""

    action: Literal["rollback", "alert"] = Field(
        "rollback", description="rollback: restore + safe config; alert: report only."
    )
    warmup: WarmupConfig = Field(default_factory=WarmupConfig)
    value_loss: ValueLossThresholdConfig = Field(default_factory=ValueLossThresholdConfig)
    blowup: BlowUpConfig = Field(default_factory=BlowUpConfig)
    trend: TrendConfig = Field(default_factory=TrendConfig)
    critic_grad_norm: CriticGradNormConfig = Field(default_factory=CriticGradNormConfig)
    reward_collapse: RewardCollapseConfig = Field(default_factory=RewardCollapseConfig)
    entropy_collapse: EntropyCollapseConfig = Field(default_factory=EntropyCollapseConfig)
    entropy_surge: EntropySurgeConfig = Field(default_factory=EntropySurgeConfig)
    kl_surge: KlSurgeConfig = Field(default_factory=KlSurgeConfig)
    surrogate_surge: SurrogateSurgeConfig = Field(default_factory=SurrogateSurgeConfig)
    policy_std: PolicyStdConfig = Field(default_factory=PolicyStdConfig)
    memory: MemoryConfig = Field(default_factory=MemoryConfig)
    throughput: ThroughputConfig = Field(default_factory=ThroughputConfig)
    nonfinite: NonFiniteConfig = Field(default_factory=NonFiniteConfig)
    curriculum: CurriculumConfig = Field(default_factory=CurriculumConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    tags: TagsConfig = Field(default_factory=TagsConfig)


# --- PPO configs --------------------------------------------------------------------------------

# Keys the training hook can change in a running OpenRL trainer (read at use time).
LIVE_PPO_KEYS = frozenset(
    {
        "lr",
        "critic_lr",
        "max_grad_norm",
        "use_max_grad_norm",
        "use_adv_normalize",
        "clip_param",
        "entropy_coef",
        "value_loss_coef",
        "ppo_epoch",
        "num_mini_batch",
    }
)
# Keys fixed when the networks/buffers are built; a safe config may not change them mid-run.
STARTUP_PPO_KEYS = frozenset(
    {
        "episode_length",
        "run_dir",
        "log_interval",
        "use_recurrent_policy",
        "use_joint_action_loss",
        "use_valuenorm",
        "hidden_size",
        "layer_N",
        "gamma",
        "gae_lambda",
        "seed",
    }
)


OPENRL_DEFAULT_LRS = {"lr": 5e-4, "critic_lr": 5e-4}  # OpenRL 0.2.0's parser, where a config sets neither


def safe_lr(safe_value: float | None, own: float) -> float:
    """The learning rate a switch to the safe config sets (before a later rollback's scale): the safe config's, but
    never above the run's own (``own``: its lr at the first switch, ``TrainingSession.own_lr``), and the run's own
    where the safe config has none. A safe config lowers the step size: a fixed safe lr above what an adaptive KL
    schedule had reached (rsl_rl's example: 1.1e-4, the safe config's 3e-4) raised it 2.6x right after a
    divergence until session 20."""
    return float(own) if safe_value is None else min(float(safe_value), float(own))


MAX_EPISODE_LENGTH = 1_000_000  # steps per env per iteration: past it OpenRL's buffers overflow an allocation
MAX_HIDDEN_SIZE = 65_536  # a layer of 4 x 10^9 weights
MAX_LAYERS = 100
MAX_ENVS = 1 << 24  # envs per process (Isaac Gym runs reach 10^5)


class PPOConfig(_Config):
    """The keys of ``cfgs/ppo.yaml`` / ``cfgs/ppo_safe.yaml`` (OpenRL names); unset = OpenRL default."""

    lr: float | None = Field(None, gt=0, lt=1, description="Actor learning rate (OpenRL default 5e-4).")
    critic_lr: float | None = Field(None, gt=0, lt=1, description="Critic learning rate (default 5e-4).")
    max_grad_norm: float | None = Field(None, gt=0, description="Gradient clipping norm (default 10).")
    use_max_grad_norm: bool | None = None
    use_adv_normalize: bool | None = None
    clip_param: float | None = Field(None, gt=0, lt=1)
    entropy_coef: float | None = Field(None, ge=0, allow_inf_nan=False)
    value_loss_coef: float | None = Field(None, gt=0, allow_inf_nan=False)
    ppo_epoch: int | None = Field(None, ge=1, le=100)
    num_mini_batch: int | None = Field(None, ge=1, le=1024)
    episode_length: int | None = Field(None, ge=1, le=MAX_EPISODE_LENGTH)
    run_dir: str | None = None
    log_interval: int | None = Field(None, ge=1)
    use_recurrent_policy: bool | None = None
    use_joint_action_loss: bool | None = None
    use_valuenorm: bool | None = None
    hidden_size: int | None = Field(None, ge=1, le=MAX_HIDDEN_SIZE)
    layer_N: int | None = Field(None, ge=1, le=MAX_LAYERS)
    gamma: float | None = Field(None, gt=0, le=1)
    gae_lambda: float | None = Field(None, ge=0, le=1)
    seed: int | None = None

    def set_values(self) -> dict[str, Any]:
        """Only the keys the file actually sets."""
        return self.model_dump(exclude_unset=True)

    def live_values(self) -> dict[str, Any]:
        """The keys that a running trainer can take (used for the safe-config switch)."""
        return {k: v for k, v in self.set_values().items() if k in LIVE_PPO_KEYS}

    @model_validator(mode="after")
    def _clip_needs_norm(self) -> "PPOConfig":
        if self.use_max_grad_norm is False and self.max_grad_norm is not None:
            raise ValueError("max_grad_norm is set but use_max_grad_norm is false; drop one of them")
        return self


def startup_keys_kept(safe: PPOConfig, run_values: Mapping[str, Any]) -> dict[str, str]:
    """Safe-config keys fixed at start-up whose value differs from the running one's: they are
    kept, not switched (``run_values``: the values the run was built with), each with why."""
    kept = {}
    for key, value in safe.set_values().items():
        if key in STARTUP_PPO_KEYS and key in run_values and run_values[key] != value:
            kept[key] = f"the run keeps {run_values[key]!r} (the safe config says {value!r}; fixed at start-up)"
    return kept



class SB3SafeConfig(_Config):
    """``cfgs/sb3_safe.yaml``: the safe config a Stable-Baselines3 PPO model is switched to after a
    rollback (SB3's own argument names; unset = the model keeps its value). Every key is live: SB3's
    ``PPO.train`` reads them at each update."""

    learning_rate: float | None = Field(None, gt=0, lt=1, description="Constant learning rate (replaces the schedule).")
    max_grad_norm: float | None = Field(None, gt=0, description="Gradient clipping norm (SB3 default 0.5).")
    clip_range: float | None = Field(None, gt=0, lt=1, description="PPO ratio clip, constant (replaces the schedule).")
    normalize_advantage: bool | None = Field(None, description="Normalise advantages per minibatch.")
    ent_coef: float | None = Field(None, ge=0, allow_inf_nan=False, description="Entropy bonus coefficient.")
    vf_coef: float | None = Field(None, gt=0, allow_inf_nan=False, description="Value-loss coefficient.")
    n_epochs: int | None = Field(None, ge=1, le=100, description="Passes over each rollout.")
    target_kl: float | None = Field(None, gt=0, description="Stop an update's epochs early past 1.5 x this KL.")

    def set_values(self) -> dict[str, Any]:
        """Only the keys the file actually sets."""
        return self.model_dump(exclude_unset=True)


class FrameworkSafeConfig(_Config):
    """What the safe configs of the framework integrations share: every key optional (unset: the run keeps its
    value), a ``framework`` marker for ``watchdog check``, and all keys switched live."""


    def set_values(self) -> dict[str, Any]:
        """Only the keys the file actually sets."""
        return self.model_dump(exclude_unset=True)

    def live_values(self) -> dict[str, Any]:
        """The PPO keys the file sets (all of them switch live)."""
        return {k: v for k, v in self.set_values().items() if k != "framework"}


# --- rsl_rl ---------------------------------------------------------------------------------------


class RslRlSafeConfig(FrameworkSafeConfig):
    """``cfgs/rsl_rl_safe.yaml``: what ``watchdog.integrations.rsl_rl`` switches a running rsl_rl PPO to
    after a rollback. Every key but ``framework`` is optional (unset: the run keeps its value); all are
    attributes rsl_rl's PPO reads at use time, so all switch live. ``framework: rsl_rl`` marks the
    file for ``watchdog check`` (rsl_rl and SB3 share key names such as ``learning_rate``).
    """

    framework: Literal["rsl_rl"] = Field("rsl_rl", description="Marks the file as an rsl_rl safe config.")
    learning_rate: float | None = Field(
        None, gt=0, lt=1, description="Learning rate after the switch, times policy.escalation_lr_factor per "
                                      "further rollback (field report: 3e-4).",
    )
    schedule: Literal["fixed", "adaptive"] | None = Field(
        None, description="fixed: the lr stays at learning_rate (the safe choice: rsl_rl's adaptive KL schedule "
                          "moves the lr x1.5 per mini-batch while the KL is low, back up to 1e-2); adaptive: the "
                          "schedule restarts from learning_rate and steers towards desired_kl again.",
    )
    desired_kl: float | None = Field(None, gt=0, description="Target KL of the adaptive schedule (schedule: adaptive only).")
    max_grad_norm: float | None = Field(None, gt=0, description="Gradient clipping norm (rsl_rl default 1.0; field report 0.5).")
    clip_param: float | None = Field(None, gt=0, lt=1, description="PPO ratio (and value) clip range (default 0.2).")
    entropy_coef: float | None = Field(None, ge=0, allow_inf_nan=False, description="Entropy bonus weight (default 0.01).")
    value_loss_coef: float | None = Field(None, gt=0, allow_inf_nan=False, description="Value loss weight (default 1.0).")
    num_learning_epochs: int | None = Field(None, ge=1, le=100, description="Epochs per update (default 5).")
    num_mini_batches: int | None = Field(None, ge=1, le=4096, description="Mini-batches per epoch (default 4).")

    @model_validator(mode="after")
    def _kl_needs_adaptive(self) -> "RslRlSafeConfig":
        if self.schedule == "fixed" and self.desired_kl is not None:
            raise ValueError("desired_kl is set but schedule is fixed (desired_kl only steers the adaptive schedule); "
                             "drop one of them")
        return self


def load_rsl_rl_safe_config(path: str | Path) -> RslRlSafeConfig:
    """Load ``cfgs/rsl_rl_safe.yaml``."""
    return validate_mapping(RslRlSafeConfig, read_yaml(path), source=str(path))


# --- rl_games -------------------------------------------------------------------------------------


class RlGamesSafeConfig(FrameworkSafeConfig):
    """``cfgs/rl_games_safe.yaml``: what ``watchdog.integrations.rl_games`` switches a running rl_games PPO
    (``a2c_continuous`` / ``a2c_discrete``) to after a rollback, under rl_games' own config names. Every key but
    ``framework`` is optional (unset: the run keeps its value); all are agent attributes rl_games reads at use
    time, so all switch live. ``framework: rl_games`` marks the file for ``watchdog check``.
    """

    framework: Literal["rl_games"] = Field("rl_games", description="Marks the file as an rl_games safe config.")
    learning_rate: float | None = Field(
        None, gt=0, lt=1, description="Learning rate after the switch, times policy.escalation_lr_factor per "
                                      "further rollback (field report: 3e-4).",
    )
    lr_schedule: Literal["fixed", "adaptive"] | None = Field(
        None, description="fixed: the lr stays at learning_rate (rl_games' adaptive schedule moves it x1.5 per "
                          "mini-epoch while the KL is below kl_threshold / 2, up to 1e-2, and its linear schedule "
                          "sets it from the run's start lr); adaptive: the KL schedule restarts from learning_rate.",
    )
    kl_threshold: float | None = Field(None, gt=0, description="Target KL of the adaptive schedule (lr_schedule: adaptive only).")
    grad_norm: float | None = Field(None, gt=0, description="Gradient clipping norm; setting it turns truncate_grads on "
                                                            "(field report 0.5).")
    e_clip: float | None = Field(None, gt=0, lt=1, description="PPO ratio clip (field report 0.2).")
    entropy_coef: float | None = Field(None, ge=0, allow_inf_nan=False, description="Entropy bonus weight.")
    critic_coef: float | None = Field(None, gt=0, allow_inf_nan=False, description="Value loss weight.")
    bounds_loss_coef: float | None = Field(None, ge=0, allow_inf_nan=False, description="Weight of the loss that keeps the mean action "
                                                                   "within bounds (continuous actions).")
    mini_epochs: int | None = Field(None, ge=1, le=100, description="Passes over each rollout.")
    normalize_advantage: bool | None = Field(None, description="Normalise advantages per rollout (field report: on).")

    @model_validator(mode="after")
    def _kl_needs_adaptive(self) -> "RlGamesSafeConfig":
        if self.lr_schedule == "fixed" and self.kl_threshold is not None:
            raise ValueError("kl_threshold is set but lr_schedule is fixed (kl_threshold only steers the adaptive "
                             "schedule); drop one of them")
        return self


def load_rl_games_safe_config(path: str | Path) -> RlGamesSafeConfig:
    """Load ``cfgs/rl_games_safe.yaml``."""
    return validate_mapping(RlGamesSafeConfig, read_yaml(path), source=str(path))


# --- skrl -----------------------------------------------------------------------------------------


class SkrlSafeConfig(FrameworkSafeConfig):
    """``cfgs/skrl_safe.yaml``: what ``watchdog.integrations.skrl`` switches a running skrl PPO agent to after a
    rollback, under skrl's own ``PPO_CFG`` names. Every key but ``framework`` is optional (unset: the run keeps
    its value); skrl's PPO reads them from its ``cfg`` at each update, so all switch live. ``framework: skrl``
    marks the file for ``watchdog check``.
    """

    framework: Literal["skrl"] = Field("skrl", description="Marks the file as a skrl safe config.")
    learning_rate: float | None = Field(
        None, gt=0, lt=1, description="Learning rate after the switch, times policy.escalation_lr_factor per "
                                      "further rollback (field report: 3e-4).",
    )
    learning_rate_scheduler: Literal["fixed"] | None = Field(
        None, description="fixed: remove the run's scheduler, so the lr stays at learning_rate (skrl's KLAdaptiveLR "
                          "moves it x1.5 per epoch while the KL is low, up to 1e-2); unset: the run's scheduler "
                          "moves the safe lr from the next epoch on.",
    )
    grad_norm_clip: float | None = Field(None, gt=0, description="Gradient clipping norm (field report 0.5).")
    ratio_clip: float | None = Field(None, gt=0, lt=1, description="PPO ratio clip (field report 0.2).")
    value_clip: float | None = Field(None, ge=0, description="Value clip (0: none).")
    entropy_loss_scale: float | None = Field(None, ge=0, allow_inf_nan=False, description="Entropy bonus weight.")
    value_loss_scale: float | None = Field(None, gt=0, allow_inf_nan=False, description="Value loss weight.")
    learning_epochs: int | None = Field(None, ge=1, le=100, description="Passes over each rollout.")
    mini_batches: int | None = Field(None, ge=1, le=4096, description="Mini-batches per epoch.")


def load_skrl_safe_config(path: str | Path) -> SkrlSafeConfig:
    """Load ``cfgs/skrl_safe.yaml``."""
    return validate_mapping(SkrlSafeConfig, read_yaml(path), source=str(path))


# the integrations' safe configs by their ``framework:`` marker (how ``watchdog check`` tells them apart)
FRAMEWORK_SAFE_CONFIGS: dict[str, type[FrameworkSafeConfig]] = {
    "rsl_rl": RslRlSafeConfig, "rl_games": RlGamesSafeConfig, "skrl": SkrlSafeConfig}


# --- loading --------------------------------------------------------------------------------------


def _describe(err: dict) -> str:
    """One pydantic error as 'key: problem (got value)'."""
    loc = ".".join(str(p) for p in err.get("loc", ())) or "<top level>"
    kind = err.get("type", "")
    value = _short_repr(err.get("input"))
    if kind == "extra_forbidden":
        return f"unknown key '{loc}' (value {value})"
    msg = err.get("msg", "invalid value")
    return f"key '{loc}': {msg}, got {value}"


def _short_repr(value: Any, limit: int = 80) -> str:
    """repr() cut to ``limit`` characters: an error line must stay one short line."""
    short = reprlib.Repr()  # Python 3.11: limits are attributes, not constructor arguments
    short.maxstring = short.maxother = limit
    short.maxlist = short.maxdict = 6
    short.maxlevel = 2
    text = short.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _legal_keys(model: type[BaseModel], loc: tuple) -> str:
    """The legal keys at the place an unknown key was found, for the error message."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        field = current.model_fields.get(str(part)) if current else None
        ann = field.annotation if field else None
        current = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return ", ".join(current.model_fields) if current else ""


def validate_mapping(model: type[BaseModel], data: Any, *, source: str):
    """Validate ``data`` against ``model``; raise a one-line ConfigError on the first problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping of keys to values, got {type(data).__name__}", path=source)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        hint = None
        if err.get("type") == "extra_forbidden":
            hint = f"legal keys: {_legal_keys(model, tuple(err.get('loc', ())))}"
        raise ConfigError(_describe(err), path=source, hint=hint) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping: the last one won, silently (until session 17),
    so a config's first `lr: 3e-4` could be undone further down the file."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                continue  # (the safe loader's own error names it)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' is given twice (lines {seen[key] + 1} and {key_node.start_mark.line + 1})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file, turning I/O and syntax problems into one-line ConfigErrors."""
    if str(path) == "":  # an unset "$CFG": Path("") is this folder (until session 27: ".: Is a directory")
        raise ConfigError("an empty path (an unset variable?) names no config file", path='""',
                          hint="name the YAML file, or leave the option out for the defaults")
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", path=str(path), hint="check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read file: {exc}", path=str(path)) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except RecursionError:
        raise ConfigError("YAML nested too deeply to be a config", path=str(path)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"malformed YAML{where}: {problem}", path=str(path)) from None


def load_watchdog_config(path: str | Path | None) -> WatchdogConfig:
    """Load ``cfgs/watchdog.yaml`` (None = built-in defaults)."""
    if path is None:
        return WatchdogConfig()
    return validate_mapping(WatchdogConfig, read_yaml(path), source=str(path))


def load_ppo_config(path: str | Path | None) -> PPOConfig:
    """Load ``cfgs/ppo.yaml`` or ``cfgs/ppo_safe.yaml`` (None = OpenRL defaults)."""
    if path is None:
        return PPOConfig()
    return validate_mapping(PPOConfig, read_yaml(path), source=str(path))


def load_any_config(path: str | Path) -> WatchdogConfig | PPOConfig | SB3SafeConfig | FrameworkSafeConfig:
    """For ``watchdog check``: decide by the keys (or a ``framework:`` marker) which config the file is."""
    data = read_yaml(path)
    marker = data.get("framework") if isinstance(data, dict) else None
    if isinstance(marker, str) and marker in FRAMEWORK_SAFE_CONFIGS:
        return validate_mapping(FRAMEWORK_SAFE_CONFIGS[marker], data, source=str(path))
    sb3_only = set(SB3SafeConfig.model_fields) - set(PPOConfig.model_fields)
    ppo_only = set(PPOConfig.model_fields) - set(SB3SafeConfig.model_fields)
    if isinstance(data, dict) and set(data) & sb3_only and not set(data) & ppo_only:
        return validate_mapping(SB3SafeConfig, data, source=str(path))
    watchdog_keys = set(WatchdogConfig.model_fields)
    if isinstance(data, dict) and data and set(data) & watchdog_keys and not set(data) & set(PPOConfig.model_fields):
        return validate_mapping(WatchdogConfig, data, source=str(path))
    if isinstance(data, dict) and set(data) & set(PPOConfig.model_fields):
        return validate_mapping(PPOConfig, data, source=str(path))
    return validate_mapping(WatchdogConfig, data, source=str(path))
