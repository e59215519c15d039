"""Other PPO frameworks' logs: tag maps, auto-detection, step axes, checkpoints and resume commands.

Each framework writes its own TensorBoard tags on its own step axis (rsl_rl: iterations; SB3,
CleanRL, rl_games: env steps; skrl: timesteps). :func:`detect` names the framework (and the
version where the tags changed) from the tags a run holds; :class:`RecordAssembler` turns the
framework's series into one :class:`~watchdog.signals.MetricRecord` per PPO iteration in our
keys, for replay and watch alike; :func:`config_for_run` switches off the absolute value-loss
rule where the value targets are not normalised. OpenRL (MAPush) keeps its own path
(``watchdog.replay.tb_records``); it is named here so that detection can prefer it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from watchdog.signals import (
    APPROX_KL,
    CLIP_FRACTION,
    CRITIC_GRAD_NORM,
    CURRICULUM_PREFIX,
    ENTROPY,
    EPISODE_RETURN,
    EXPLAINED_VARIANCE,
    LEARNING_RATE,
    LOG_STD_MAX,
    LOG_STD_MEAN,
    POLICY_ENTROPY,
    POLICY_LOSS,
    STEP_REWARD,
    TRACKED_KEYS,
    VALUE_LOSS,
    normalize_key,
)

OPENRL = "openrl"
# The signals the detectors read, by what they are called in a report.
SIGNALS = {
    "value loss": (VALUE_LOSS,),
    "reward": (STEP_REWARD, EPISODE_RETURN),
    "critic grad norm": (CRITIC_GRAD_NORM,),
    "policy std": (LOG_STD_MAX, LOG_STD_MEAN, ENTROPY),
    # a Gaussian policy's mean log-std stands in where no entropy is logged (its entropy per action dimension, up to
    # a constant: skrl with an entropy loss scale of 0): the entropy detectors judge it (detectors.EntropyCollapse)
    "policy entropy": (POLICY_ENTROPY, ENTROPY, LOG_STD_MEAN),
}
# Keys a user tag map may target (``tags.map`` in watchdog.yaml).
MAPPABLE_KEYS = tuple(dict.fromkeys((*TRACKED_KEYS, APPROX_KL, CLIP_FRACTION, EXPLAINED_VARIANCE, LEARNING_RATE)))

_NEGATE, _LOG, _EPISODES = "negate", "log", "episodes"
# SB3, rsl_rl and rl_games log the mean return of their last 100 finished episodes; a return logged once per
# episode (CleanRL) is read as the same mean, so one reward rule judges every framework's return alike
EPISODE_WINDOW = 100


@dataclass(frozen=True)
class Framework:
    """One framework's TensorBoard vocabulary and conventions."""

    name: str
    tags: Mapping[str, str]  # its tag -> our key
    step_unit: str  # what its TensorBoard step counts: "iterations", "env steps", "timesteps"
    value_normalized: bool | None  # value targets normalised by default (None: depends on the run's config)
    transforms: Mapping[str, str] = field(default_factory=dict)  # its tag -> "negate" | "log" | "episodes"
    versions: tuple[tuple[str, str], ...] = ()  # (tag, version) the tag tells, first match wins


RSL_RL = Framework(
    "rsl_rl",
    {"Loss/value_function": VALUE_LOSS, "Loss/value": VALUE_LOSS, "Loss/surrogate": POLICY_LOSS,
     "Loss/entropy": POLICY_ENTROPY, "Policy/mean_noise_std": LOG_STD_MEAN, "Policy/mean_std": LOG_STD_MEAN,
     "Train/mean_reward": EPISODE_RETURN, "Loss/learning_rate": LEARNING_RATE},
    "iterations", False,
    transforms={"Policy/mean_noise_std": _LOG, "Policy/mean_std": _LOG},
    versions=(("Policy/mean_std", "v5+"), ("Loss/value_function", "v1-v3"), ("Loss/value", "v4")),
)
SB3 = Framework(
    "sb3",
    {"train/value_loss": VALUE_LOSS, "train/policy_gradient_loss": POLICY_LOSS, "train/entropy_loss": POLICY_ENTROPY,
     "train/approx_kl": APPROX_KL, "train/clip_fraction": CLIP_FRACTION,
     "train/explained_variance": EXPLAINED_VARIANCE, "train/std": LOG_STD_MEAN,
     "train/learning_rate": LEARNING_RATE, "rollout/ep_rew_mean": EPISODE_RETURN},
    "env steps", False,
    transforms={"train/entropy_loss": _NEGATE, "train/std": _LOG},  # SB3 logs -entropy
)
CLEANRL = Framework(
    "cleanrl",
    {"losses/value_loss": VALUE_LOSS, "losses/policy_loss": POLICY_LOSS, "losses/entropy": POLICY_ENTROPY,
     "losses/approx_kl": APPROX_KL, "losses/clipfrac": CLIP_FRACTION,
     "losses/explained_variance": EXPLAINED_VARIANCE, "charts/learning_rate": LEARNING_RATE,
     "charts/episodic_return": EPISODE_RETURN, "charts/episode_reward": EPISODE_RETURN},  # the latter: before 2021
    "env steps", False,
    transforms={"charts/episodic_return": _EPISODES, "charts/episode_reward": _EPISODES},  # one point per episode
)
RL_GAMES = Framework(
    "rl_games",
    {"losses/c_loss": VALUE_LOSS, "losses/a_loss": POLICY_LOSS, "losses/entropy": POLICY_ENTROPY,
     "info/kl": APPROX_KL, "info/last_lr": LEARNING_RATE, "rewards/step": EPISODE_RETURN},
    "env steps", None,  # normalize_value is a per-run setting: read from the run's params
)
SKRL = Framework(
    "skrl",
    {"Loss / Value loss": VALUE_LOSS, "Loss / Policy loss": POLICY_LOSS, "Loss / Entropy loss": POLICY_ENTROPY,
     "Policy / Standard deviation": LOG_STD_MEAN, "Learning / Learning rate": LEARNING_RATE,
     "Reward / Total reward (mean)": EPISODE_RETURN},
    "timesteps", None,  # value_preprocessor is a per-run setting: read from the run's params
    transforms={"Loss / Entropy loss": _NEGATE, "Policy / Standard deviation": _LOG},  # -coef x entropy
)
FRAMEWORKS = {fw.name: fw for fw in (RSL_RL, SB3, CLEANRL, RL_GAMES, SKRL)}
FRAMEWORK_NAMES = (OPENRL, *FRAMEWORKS)

_SKRL_AGENT = re.compile(r"^(?P<base>.+?) \((?P<uid>[^()]+)\)$")
# a curriculum term, as Isaac Lab logs it through rsl_rl and skrl 2 (``Curriculum/terrain_levels``), earlier
# skrl (``Info / Curriculum/...``) or rl_games' observer (``Episode/Curriculum/...``)
_CURRICULUM_TAG = re.compile(r"(?:^|[/ ])curriculum/(?P<term>.+)$", re.IGNORECASE)


def curriculum_key(tag: str) -> str | None:
    """``curriculum/<term>`` for a tag that logs a curriculum term (any framework), else None."""
    m = _CURRICULUM_TAG.search(tag)
    return CURRICULUM_PREFIX + m.group("term").strip() if m else None


def _openrl_key(tag: str) -> str | None:
    """Our key for an OpenRL / live-hook tag (bare names, or ours), None when it is not one."""
    key = normalize_key(tag)
    known = (*TRACKED_KEYS, APPROX_KL)
    return key if key in known and (("/" not in tag) or tag == key) else None


@dataclass
class Detected:
    """What a run's tags say about where it came from, and how each of its tags maps to our keys."""

    framework: str  # a FRAMEWORK_NAMES entry, or "custom" for a user tag map alone, or "unknown"
    version: str | None = None
    step_unit: str = "env steps"
    user_map: dict[str, str] = field(default_factory=dict)
    mapping: dict[str, tuple[str, str | None] | None] = field(default_factory=dict)  # raw tag -> (key, transform)

    @property
    def framework_label(self) -> str:
        return f"{self.framework} {self.version}" if self.version else self.framework

    @property
    def recognised(self) -> bool:
        return self.framework != "unknown"

    def target(self, tag: str) -> tuple[str, str | None] | None:
        """(our key, transform) for a raw tag, None when we do not read it; tags seen later too."""
        if tag not in self.mapping:
            self.mapping[tag] = self._resolve(tag)
        return self.mapping[tag]

    def _resolve(self, tag: str) -> tuple[str, str | None] | None:
        our = self.user_map.get(tag) or self.user_map.get(normalize_key(tag))
        if our:
            return our, None
        curriculum = curriculum_key(tag)
        if curriculum is not None:
            return curriculum, None
        if self.framework == OPENRL:
            key = _openrl_key(tag)
            return (key, None) if key else None
        fw = FRAMEWORKS.get(self.framework)
        base = _base_tag(tag, fw) if fw else None
        return (fw.tags[base], fw.transforms.get(base)) if fw and base in fw.tags else None

    def keys(self) -> set[str]:
        """Our keys among the tags mapped so far."""
        return {t[0] for t in self.mapping.values() if t}


def _base_tag(tag: str, fw: Framework) -> str:
    """skrl's multi-agent tags end in `` (<uid>)``: the single-agent tag they stand for."""
    if tag in fw.tags:
        return tag
    m = _SKRL_AGENT.match(tag)
    return m.group("base") if m and m.group("base") in fw.tags else tag


def _score(fw: Framework, tags: Iterable[str]) -> int:
    return len({_base_tag(t, fw) for t in tags} & set(fw.tags))


def detect(tags: Iterable[str], *, forced: str = "auto", user_map: Mapping[str, str] | None = None) -> Detected:
    """The framework whose tag map covers most of ``tags`` (OpenRL on a tie), plus the user's map."""
    tags = list(tags)
    user_map = dict(user_map or {})
    if forced != "auto":
        name = forced
    else:
        openrl_score = sum(1 for t in tags if _openrl_key(t))
        scores = {name: _score(fw, tags) for name, fw in FRAMEWORKS.items()}
        best = max(scores, key=lambda n: scores[n])
        name = best if scores[best] > openrl_score else (OPENRL if openrl_score else "unknown")
    if name in FRAMEWORKS:
        det = Detected(name, _version(FRAMEWORKS[name], tags), FRAMEWORKS[name].step_unit, user_map)
    elif name == OPENRL:
        det = Detected(OPENRL, step_unit="env steps", user_map=user_map)
    else:
        det = Detected("custom" if any(t in user_map or normalize_key(t) in user_map for t in tags) else "unknown",
                       user_map=user_map)
    for t in tags:
        det.target(t)
    return det


def _version(fw: Framework, tags: list[str]) -> str | None:
    present = set(tags)
    return next((v for tag, v in fw.versions if tag in present), None)


def signals_found(keys: Iterable[str]) -> tuple[list[str], list[str]]:
    """(found, absent): the detector signals present among our keys, by their report names."""
    keys = set(keys)
    found = [name for name, ks in SIGNALS.items() if keys & set(ks)]
    return found, [name for name in SIGNALS if name not in found]


def transform(values: np.ndarray, how: str | None) -> np.ndarray:
    """A framework's numbers in our key's convention (SB3's -entropy; std -> log-std; NaN stays NaN)."""
    if how == _NEGATE:
        return -values
    if how == _LOG:
        positive = values > 0
        logged = np.log(np.where(positive, values, 1.0))
        return np.where(positive, logged, np.where(np.isnan(values), np.nan, -np.inf))
    return values


# --------------------------------------------------------------------------------------------- records

_SEGMENT = 1 << 44  # position = segment * _SEGMENT + step: one sortable int64 per point
SB3_DUMP_TAG = "time/fps"  # SB3: logged at each of its own dumps (not an EvalCallback's): where its rollouts end
SB3_ITERATIONS_TAG = "time/iterations"  # SB3: the rollouts collected so far, at each of its dumps (every log_interval)
RL_GAMES_EPOCHS = "info/epochs"  # rl_games: the epoch number, logged against the frame


RL_GAMES_C_LOSS, RL_GAMES_CVAL_LOSS = "losses/c_loss", "losses/cval_loss"  # the actor-critic's, the central value net's


CRITIC_LOSS_NOTE = ("losses/c_loss is 0 (a central value net, use_experimental_cv: False): the value loss read is "
                    "the critic's, losses/cval_loss")


class CriticLoss:
    """rl_games with a central value net and ``use_experimental_cv: False``: the actor-critic trains no value head
    and logs ``losses/c_loss`` as 0 every epoch, while the critic's loss is ``losses/cval_loss`` (logged in the
    same epoch, on the central value net's own frame count). The k-th trained epoch's c_loss (a finite one: a NaN
    is an epoch that failed before its critic trained, with no cval) that is exactly 0 becomes the k-th cval_loss,
    at c_loss's frame (the iteration grid and checkpoint placement stay rl_games'). rl_games writes an epoch's
    cval_loss while its central value net trains, before the epoch's c_loss, so a follower of the live file has
    it by then; replay feeds the whole cval series first. ``swapped``: how many it replaced."""

    def __init__(self) -> None:
        self.cval: list[float] = []
        self.trained = 0  # finite c_loss points seen
        self.swapped = 0

    def note_cval(self, values: Iterable[float]) -> None:
        self.cval.extend(float(v) for v in values)

    def c_loss(self, values: Iterable[float]) -> np.ndarray:
        out = np.array(values, dtype=np.float64)
        for i, v in enumerate(out):
            if np.isfinite(v):
                k, self.trained = self.trained, self.trained + 1
                if v == 0 and k < len(self.cval):
                    out[i] = self.cval[k]
                    self.swapped += 1
        return out


def epoch_frames(frames: Iterable[int], epochs: Iterable[float]) -> dict[int, int]:
    """rl_games' ``info/epochs`` points as {epoch: frame} (an epoch logged twice: its newest frame)."""
    return {int(epoch): int(frame) for frame, epoch in zip(frames, epochs)}


class RecordAssembler:
    """Points of a framework's series -> one record per PPO iteration, oldest first.

    The value-loss series (a run without one: its most logged key, at the end) sets the iteration
    grid: a point logged between two of its steps (CleanRL's per-episode returns, rl_games' rewards)
    joins the next grid step, several values of one key in one iteration are averaged (skrl's agents
    too). A step going backwards (a resumed run's restart) starts a new segment. Iterations: rsl_rl's
    step is the iteration; otherwise the grid's step size (the greatest common divisor of its steps)
    is one iteration and the first grid step is iteration 0. Vectorised per series (numpy): a
    replay of a long run costs about what OpenRL's own path does.
    """

    def __init__(self, det: Detected, step_size: int | None = None):
        self.det = det
        self.pending: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}  # our key -> [(positions, values)]
        self._segment: dict[str, tuple[int, int]] = {}  # raw tag -> (segment, last step)
        # one iteration's steps when the run's files say it (:func:`known_step_size`: step_size x (i + 1) is the
        # step after iteration i); else learnt from the grid
        self.step_size: int | None = step_size
        self._first = 1 if step_size else 0
        self._dumps: list[np.ndarray] = []  # SB3: the positions of its own dumps (its time/fps points)
        self._rollout: int | None = None  # SB3: one rollout's env steps, from its time/iterations (None: unknown)
        self._last_dump: int | None = None  # ... the newest of them (and of its return's points)
        self._emitted = -1  # position of the newest grid step returned
        # rl_games logs an env's episode extras (``Episode/<key>``: Isaac Lab's curriculum terms) against its
        # epoch, the rest against frames: each epoch's frame (``info/epochs``), and the points still waiting for theirs
        self._epoch_frames: dict[int, int] = {}
        self._by_epoch: dict[str, tuple[list[int], list[float]]] = {}
        self._episodes: dict[str, np.ndarray] = {}  # a per-episode tag -> its last EPISODE_WINDOW - 1 returns
        self.critic = CriticLoss()  # rl_games: a c_loss of 0 beside a central value net's cval_loss

    def feed(self, tag: str, steps: Iterable[int], values: Iterable[float]) -> None:
        """Add one series' new points (raw tag; unmapped tags are ignored)."""
        if self.det.framework == "rl_games":
            if tag == RL_GAMES_EPOCHS or tag.startswith("Episode/"):
                self._feed_by_epoch(tag, steps, values)
                return
            if tag == RL_GAMES_CVAL_LOSS:
                self.critic.note_cval(values)
                return
            if tag == RL_GAMES_C_LOSS:
                values = self.critic.c_loss(values)
        elif self.det.framework == "sb3" and tag == SB3_DUMP_TAG:
            steps = np.asarray(list(steps) if not isinstance(steps, np.ndarray) else steps, dtype=np.int64)
            if len(steps):
                self._dumps.append(self._positions(tag, steps))
            return
        elif self.det.framework == "sb3" and tag == SB3_ITERATIONS_TAG:
            if self._rollout is None:  # one rollout's env steps: the first dump's steps over its rollouts
                first = next(zip(steps, values), None)
                if first is not None and first[1] >= 1 and int(first[0]) % int(first[1]) == 0:
                    self._rollout = int(first[0]) // int(first[1])
            return
        self._place(tag, steps, values)

    def _place(self, tag: str, steps: Iterable[int], values: Iterable[float]) -> None:
        target = self.det.target(tag)
        steps = np.asarray(list(steps) if not isinstance(steps, np.ndarray) else steps, dtype=np.int64)
        if target is None or not len(steps):
            return
        key, how = target
        vals = np.asarray(values, dtype=np.float64)
        vals = self._episode_means(tag, vals) if how == _EPISODES else transform(vals, how)
        self.pending.setdefault(key, []).append((self._positions(tag, steps), vals))

    def _positions(self, tag: str, steps: np.ndarray) -> np.ndarray:
        """A series' new steps as positions (segment x _SEGMENT + step): a step going backwards starts a segment."""
        segment, previous = self._segment.get(tag, (0, None))
        back = np.empty(len(steps), dtype=np.int64)
        back[0] = previous is not None and steps[0] < previous
        back[1:] = np.diff(steps) < 0
        segments = segment + np.cumsum(back)
        self._segment[tag] = (int(segments[-1]), int(steps[-1]))
        return segments * _SEGMENT + steps

    def _episode_means(self, tag: str, returns: np.ndarray) -> np.ndarray:
        """Returns logged one per finished episode -> at each, the mean of the last ``EPISODE_WINDOW`` of
        them (fewer at the start), carried across feeds; a window that holds a NaN or an inf is that
        window's plain sum over its length (NaN or inf, as the frameworks' own mean would be)."""
        held = self._episodes.get(tag, np.empty(0))
        both = np.concatenate([held, returns])
        finite = np.isfinite(both)
        sums = np.concatenate([[0.0], np.cumsum(np.where(finite, both, 0.0))])
        bad = np.concatenate([[0], np.cumsum(~finite)])
        end = np.arange(len(held) + 1, len(both) + 1)
        start = np.maximum(end - EPISODE_WINDOW, 0)
        with np.errstate(invalid="ignore"):
            means = (sums[end] - sums[start]) / (end - start)
        for i in np.flatnonzero(bad[end] - bad[start]):
            means[i] = both[start[i]:end[i]].mean()
        self._episodes[tag] = both[-(EPISODE_WINDOW - 1):]
        return means

    def _feed_by_epoch(self, tag: str, steps: Iterable[int], values: Iterable[float]) -> None:
        """rl_games: ``info/epochs`` (each epoch's frame) and the ``Episode/`` series its observer logs against
        the epoch; such a point goes in at its epoch's frame once that is known (the newest mapping of an
        epoch wins: a resumed run's epochs count on)."""
        if tag == RL_GAMES_EPOCHS:
            self._epoch_frames.update(epoch_frames(steps, values))
        elif self.det.target(tag) is not None:
            held = self._by_epoch.setdefault(tag, ([], []))
            held[0].extend(int(e) for e in steps)
            held[1].extend(float(v) for v in values)
        frames = self._epoch_frames
        for name, (epochs, vals) in self._by_epoch.items():
            if not any(e in frames for e in epochs):
                continue
            known = [(frames[e], v) for e, v in zip(epochs, vals) if e in frames]
            waiting = [(e, v) for e, v in zip(epochs, vals) if e not in frames]
            self._by_epoch[name] = ([e for e, _ in waiting], [v for _, v in waiting])
            self._place(name, [f for f, _ in known], [v for _, v in known])

    def records(self, *, final: bool) -> list:
        """Complete records not returned before; without ``final`` the newest grid step waits."""
        from watchdog.signals import MetricRecord

        series = {k: (np.concatenate([p for p, _ in parts]), np.concatenate([v for _, v in parts]))
                  for k, parts in self.pending.items() if parts}
        if self.det.framework == "sb3":
            series = self._on_dumps(series)
        grid, seen = self._grid(series, final)
        if not len(grid) or not self._fix_step_size(seen, final):
            return []
        columns: dict[str, tuple[list, list]] = {}
        for key, (pos, vals) in series.items():
            idx = np.searchsorted(grid, pos, side="left")
            done = idx < len(grid)
            counts = np.bincount(idx[done], minlength=len(grid))
            sums = np.bincount(idx[done], weights=vals[done], minlength=len(grid))
            with np.errstate(invalid="ignore", divide="ignore"):
                columns[key] = ((sums / np.maximum(counts, 1)).tolist(), (counts > 0).tolist())
            self.pending[key] = [(pos[~done], vals[~done])] if (~done).any() else []
        out = []
        for g, position in enumerate(grid.tolist()):
            step = position % _SEGMENT
            metrics = {k: means[g] for k, (means, has) in columns.items() if has[g]}
            out.append(MetricRecord(self._iteration(step), step, metrics))
        self._emitted = int(grid[-1])
        return out

    def _grid(self, series: dict, final: bool) -> tuple[np.ndarray, np.ndarray]:
        """The value loss's positions after the last one returned (a run without a value loss, at its
        end: its most logged key's); without ``final``, all but the newest. And all its positions pending."""
        key = VALUE_LOSS if VALUE_LOSS in series or not final or not series else \
            max(series, key=lambda k: len(series[k][0]))
        if key not in series:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        seen = np.unique(series[key][0])
        grid = seen[seen > self._emitted]
        if final or not len(grid):
            return grid, seen
        # a NaN/Inf of any key in the newest step is judged now: a run that dies on it logs no later step (its alarm
        # never came: session 17 for the grid key's, session 27 for the others', an SB3 entropy loss)
        before = grid[-2] if len(grid) > 1 else self._emitted
        for pos, vals in series.values():
            newest = (pos > before) & (pos <= grid[-1])
            if newest.any() and not np.isfinite(vals[newest]).all():
                return grid, seen
        return grid[:-1], seen

    def _on_dumps(self, series: dict) -> dict:
        """SB3: a point logged between two of SB3's own dumps is an ``EvalCallback``'s (it dumps mid-rollout, with the
        last update's ``train/*`` values): it goes to the next dump of its segment, where SB3's own would have put it
        (with that rollout's return). SB3's dumps are the steps of its ``time/fps`` (in every one of them) and of its
        return. Until session 16 such steps entered the step size's greatest common divisor, and a run evaluated every
        700 steps of 64-step rollouts numbered its iterations 0, 8, 16, ..."""
        if len(self._dumps) > 1:
            self._dumps = [np.unique(np.concatenate(self._dumps))]
        known = [*self._dumps, *(p for p, _ in self.pending.get(EPISODE_RETURN, []))]
        if not known:
            return series
        dumps = np.unique(np.concatenate(known))
        self._last_dump = int(dumps[-1])
        out = {}
        for key, (pos, vals) in series.items():
            nxt = np.minimum(np.searchsorted(dumps, pos, side="left"), len(dumps) - 1)
            target = dumps[nxt]
            move = (target > pos) & (target // _SEGMENT == pos // _SEGMENT)
            out[key] = (np.where(move, target, pos), vals) if move.any() else (pos, vals)
        return out

    def _fix_step_size(self, seen: np.ndarray, final: bool) -> bool:
        """Once, before the first record: the step size (gcd of the grid's steps) and the first step's iteration.
        A follower waits for two steps (False: nothing returned yet), since one alone cannot tell the size: SB3's
        first point is two updates' steps (it writes an update's losses at the next one's start), rl_games' is
        frame 0. (Until session 14 a follower's first poll holding one step set the size from it: a watched SB3
        run numbered its iterations 0, 0, 1, 1, ...)"""
        if self.step_size is not None or self.det.step_unit == "iterations":
            return True
        if not final and self._last_dump is not None:  # SB3: a point after its last dump may be an evaluation's
            seen = seen[seen <= self._last_dump]
        steps = seen % _SEGMENT
        if len(steps) < 2 and not final:
            return False
        size = int(np.gcd.reduce(steps)) if len(steps) else 0
        if size and self._rollout and size % self._rollout == 0:
            # SB3 dumping every log_interval rollouts (A2C's default is 100): the grid's divisor is log_interval
            # rollouts, and until session 18 each dump was numbered as one iteration. An update's losses go out at the
            # next rollout's dump, so the first update is the second rollout's: iteration = step / rollout - 2
            self.step_size, self._first = self._rollout, 2
        elif size:
            self.step_size = size
            self._first = int(steps.min()) // size
        return True

    def _iteration(self, step: int) -> int:
        """rsl_rl: the step; otherwise grid steps counted from the first one (iteration 0), whether a
        framework logs an iteration at its start (rl_games: frame 0) or at its end (SB3, CleanRL)."""
        if self.det.step_unit == "iterations" or not self.step_size:
            return step
        return max(step // self.step_size - self._first, 0)


def in_feed_order(series: Mapping[str, object]) -> list[tuple[str, object]]:
    """``{raw tag: points}`` in the order a :class:`RecordAssembler` takes them: rl_games' cval_loss first (its
    points replace the c_loss zeros of the same epochs, :class:`CriticLoss`), the rest as they are."""
    return sorted(series.items(), key=lambda item: item[0] != RL_GAMES_CVAL_LOSS)


def assemble(scalars: Mapping[str, object], det: Detected, notes: list[str] | None = None,
             step_size: int | None = None) -> tuple[list, int | None]:
    """Records (and the step size of one iteration) from a whole run's ``{raw tag: Series}``; what the reading
    changed goes to ``notes`` (rl_games' critic loss read from ``losses/cval_loss``); ``step_size``: see
    :func:`known_step_size`."""
    asm = RecordAssembler(det, step_size)
    for tag, series in in_feed_order(scalars):
        asm.feed(tag, series.steps, series.values)
    records = asm.records(final=True)
    if asm.critic.swapped and notes is not None:
        notes.append(CRITIC_LOSS_NOTE)
    return records, (1 if det.step_unit == "iterations" else asm.step_size)


# --------------------------------------------------------------------------------------------- scale


def _read_params(run_dir: Path) -> dict:
    """The agent config Isaac Lab (and rl_games' own runner) dumps next to a run, when present."""
    import yaml

    for rel in ("params/agent.yaml", "../params/agent.yaml", "config.yaml"):
        path = run_dir / rel
        if path.is_file():
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError, UnicodeDecodeError, RecursionError):
                continue
            if isinstance(data, dict):
                return data
    return {}


def _find_key(data, key: str):
    """The first value of ``key`` anywhere in a nested mapping (config files nest differently)."""
    if isinstance(data, dict):
        if key in data:
            return data[key]
        for value in data.values():
            found = _find_key(value, key)
            if found is not None:
                return found
    return None


def known_step_size(framework: str, run_dir: Path | None) -> int | None:
    """One iteration's steps when the run's own files say it, else None (learnt from the logged steps). skrl: its
    agent's ``rollouts`` (params/agent.yaml, as Isaac Lab dumps it): skrl writes every ``write_interval`` timesteps,
    Isaac Lab's ``auto`` a hundred times a run, so the logged steps' common divisor is that interval, not one update
    (until session 18 a 3,000-update run read as 100 iterations: every detector's iteration window 30x too long)."""
    if framework != "skrl" or run_dir is None:
        return None
    rollouts = _find_key(_read_params(run_dir), "rollouts")
    return rollouts if isinstance(rollouts, int) and not isinstance(rollouts, bool) and rollouts > 0 else None


def value_normalization(framework: str, run_dir: Path | None) -> tuple[bool | None, str]:
    """(value targets normalised?, why we think so) for a run of ``framework``."""
    if framework == OPENRL:
        return True, "OpenRL/MAPush: value normaliser (use_valuenorm) on by default"
    fw = FRAMEWORKS.get(framework)
    params = _read_params(run_dir) if run_dir is not None and fw is not None and fw.value_normalized is None else {}
    if framework == "rl_games":
        flag = _find_key(params, "normalize_value")
        if flag is not None:
            return bool(flag), f"params: normalize_value: {flag}"
        return False, "rl_games: normalize_value not found in the run's params (assumed off)"
    if framework == "skrl":
        pre = _find_key(params, "value_preprocessor")
        if params:
            return bool(pre), f"params: value_preprocessor: {pre}"
        return False, "skrl: no params/agent.yaml (value_preprocessor assumed off)"
    if fw is not None:
        return bool(fw.value_normalized), f"{framework}: value targets not normalised"
    return False, "unknown framework: value targets assumed not normalised"


def targets_normalized(cfg, info: Mapping) -> tuple[bool, str]:
    """(are this run's value targets normalised, why): ``tags.value_targets_normalized`` (true/false)
    overrides what the framework or the run's params say."""
    if cfg.tags.value_targets_normalized is not None:
        flag = cfg.tags.value_targets_normalized
        return flag, f"tags.value_targets_normalized: {str(flag).lower()}"
    normalized = info.get("value_targets_normalized")
    why = info.get("value_normalization") or value_normalization(info.get("framework", OPENRL), None)[1]
    return normalized is not False, why


def value_rule(cfg, info: Mapping) -> tuple[bool, str]:
    """(is the absolute value-loss rule on for this run, why): ``value_loss.enabled: false`` is
    always off; otherwise on where the value targets are normalised (:func:`targets_normalized`)."""
    if not cfg.value_loss.enabled:
        return False, "value_loss.enabled: false"
    return targets_normalized(cfg, info)


def config_for_run(cfg, info: Mapping) -> object:
    """``cfg`` for one run: the reward detector on the run's reward key (for an integration's event log, the
    one its live watchdog judged: ``info["live_reward"]``), and, where its value targets
    are not normalised (:func:`targets_normalized`; ``tags.value_targets_normalized: true`` says they
    are after all):

    - no absolute value-loss rule (:func:`value_rule`);
    - the trend warns but never alarms: a value loss in the returns' own units grows with them while
      the policy learns (a healthy rsl_rl run's rose 25x within two iterations when its first success
      bonuses arrived, ``tests/data/long_runs``); a blow-up (100x over its floor and above all it held
      before) and non-finite values stay alarms;
    - a value-side warning together with a reward collapse is divergence (``policy.reward_corroborates``):
      with the returns falling, a climbing value loss is no policy learning;
    - a blow-up while the return jumps is advisory (``blowup.explained_by``, the reward detector's key):
      the first episodes to reach a sparse goal blow a critic's loss up by 10^4x while the run learns;
    - a climb while the return stands above its pre-climb high by the loss's root is not said
      (``trend.explained_by``): rsl_rl HalfCheetah's loss spikes at every episode boundary, as the
      critic meets the new, higher returns.

    Returns a copy (model_copy); ``cfg`` is never changed."""
    updates = {}
    enabled, _ = value_rule(cfg, info)
    if cfg.value_loss.enabled and not enabled:
        updates["value_loss"] = cfg.value_loss.model_copy(update={"enabled": False})
    normalized, _ = targets_normalized(cfg, info)
    if not normalized:
        if cfg.trend.alarm_ratio is not None:
            updates["trend"] = cfg.trend.model_copy(update={"alarm_ratio": None})
        if not cfg.policy.reward_corroborates:
            updates["policy"] = cfg.policy.model_copy(update={"reward_corroborates": True})
    keys = set(info.get("keys") or ())
    rc = cfg.reward_collapse
    reward = rc.signal
    live = info.get("live_reward")  # an integration's event log: the reward its live watchdog judged
    if rc.signal == STEP_REWARD and live in keys and live != STEP_REWARD:
        reward = live
    elif rc.signal == STEP_REWARD and STEP_REWARD not in keys and EPISODE_RETURN in keys:
        reward = EPISODE_RETURN
    if reward != rc.signal:
        updates["reward_collapse"] = rc.model_copy(update={"signal": reward})
    if not normalized and cfg.blowup.explained_by is None:
        updates["blowup"] = cfg.blowup.model_copy(update={"explained_by": reward})
    if not normalized and cfg.trend.explained_by is None:
        updates["trend"] = updates.get("trend", cfg.trend).model_copy(update={"explained_by": reward})
    memory = _live_memory(cfg, info)
    if memory is not None:
        updates["memory"] = memory
    return cfg.model_copy(update=updates) if updates else cfg


def _live_memory(cfg, info: Mapping):
    """The live run's memory section (its start event's: limits, action), where ``cfg``'s is the default one: replay
    of a run stopped against its configured 3,000 MiB limit said HEALTHY SO FAR against the machine's 24 GB
    (until session 20). A config given to replay with memory settings of its own wins; an unreadable one is left."""
    from pydantic import ValidationError

    from watchdog.config import MemoryConfig

    live, default = info.get("live_memory"), MemoryConfig()
    if not isinstance(live, dict) or cfg.memory.model_copy(update={"action": default.action}) != default:
        return None
    try:
        memory = MemoryConfig.model_validate(live)
    except ValidationError:
        return None
    if cfg.memory.action != default.action:  # watch's: alert, whatever the live run did
        memory = memory.model_copy(update={"action": cfg.memory.action})
    return None if memory == cfg.memory else memory


LOOP = "loop"  # a PPO loop of your own, watched through watchdog.integrations.loop (CleanRL's scripts)
# the name an integration's start event gives its framework (watchdog.integrations) -> the framework's name here
LIVE_FRAMEWORKS = {"stable-baselines3": "sb3", "sb3": "sb3", "rsl_rl": "rsl_rl", "rl_games": "rl_games", "skrl": "skrl",
                   LOOP: LOOP}
# the safe config a live watchdog of each framework switches to: its integration's (a CleanRL log's: none)
_SAFE_CONFIGS = {OPENRL: "cfgs/ppo_safe.yaml", "rsl_rl": "cfgs/rsl_rl_safe.yaml", "sb3": "cfgs/sb3_safe.yaml",
                 "rl_games": "cfgs/rl_games_safe.yaml", "skrl": "cfgs/skrl_safe.yaml",
                 LOOP: "your safe config (LoopWatchdog's switch)"}


def safe_config_name(framework: str) -> str:
    """What replay and watch say a live watchdog of ``framework`` would switch to after a rollback."""
    return _SAFE_CONFIGS.get(framework, "the safe config (the field report's values)")


def live_config(framework: str, cfg=None, *, reward: str = STEP_REWARD, normalization: tuple[bool, str] | None = None):
    """The watchdog config a live run of ``framework`` (an integration) starts from: ``cfg`` (else
    the defaults) with the value-loss rule decided exactly as replay decides it for that framework, and
    the reward detector on ``reward``, the key the integration reports the run's reward under.
    ``normalization``: (value targets normalised?, why) where it is a per-run setting the live trainer
    knows (rl_games' ``normalize_value``), as replay reads it from the run's params."""
    from watchdog.config import WatchdogConfig

    normalized, why = normalization or value_normalization(framework, None)
    return config_for_run(cfg or WatchdogConfig(), {"framework": framework, "value_targets_normalized": normalized,
                                                    "value_normalization": why, "keys": (reward,)})


# --------------------------------------------------------------------------------------------- checkpoints

_RSL_RL_CKPT = re.compile(r"^model_(\d+)\.pt$")
_SKRL_CKPT = re.compile(r"^agent_(\d+)\.pt$")
_SB3_CKPT = re.compile(r"^.*?_(\d+)_steps\.zip$")
_RL_GAMES_CKPT = re.compile(r"^(?:last_)?.*?_ep_(\d+)(?:_rew_.*)?\.pth$")
_RL_GAMES_FRAME_CKPT = re.compile(r"^(?:last_)?.*?_frame_(\d+)(?:_rew_.*)?\.pth$")


def _files(root: Path, pattern: re.Pattern, depth: int) -> list[tuple[int, Path]]:
    """(number, path) of files under ``root`` (at most ``depth`` folders down) matching ``pattern``."""
    found, level = [], [root]
    for _ in range(depth + 1):
        nxt = []
        for folder in level:
            try:
                children = list(folder.iterdir())
            except OSError:
                continue
            for child in children:
                m = pattern.match(child.name)
                if m and child.is_file():
                    found.append((int(m.group(1)), child))
                elif child.is_dir():
                    nxt.append(child)
        level = nxt
    return found


def list_framework_checkpoints(framework: str, run_dir: Path, *, epoch_steps: Mapping[int, int] | None = None,
                               step_size: int | None = None) -> list[tuple[int, str, Path]]:
    """(step on the run's own axis, kind, path) of the framework's own checkpoints, by step.

    rsl_rl ``model_<it>.pt`` in the run folder; skrl ``checkpoints/agent_<timestep>.pt``; SB3
    ``*_<steps>_steps.zip`` (CheckpointCallback) in the run folder or below; rl_games
    ``nn/*_ep_<epoch>_*.pth`` beside ``summaries/`` (the epoch becomes a frame through the run's
    ``info/epochs`` series, else epoch x step size).
    """
    if framework == "rsl_rl":
        found = _files(run_dir, _RSL_RL_CKPT, 0)
    elif framework == "skrl":
        found = _files(run_dir / "checkpoints", _SKRL_CKPT, 0)
    elif framework == "sb3":
        found = _files(run_dir, _SB3_CKPT, 2)
    elif framework == "rl_games":
        nn = (run_dir.parent if run_dir.name == "summaries" else run_dir) / "nn"
        named = _files(nn, _RL_GAMES_CKPT, 0)
        frames = _files(nn, _RL_GAMES_FRAME_CKPT, 0)
        best = [(_rl_games_epoch(p), p) for p in sorted(nn.glob("*.pth")) if p not in {q for _, q in named + frames}]
        found = list(frames)
        for epoch, path in named + [(e, p) for e, p in best if e is not None]:
            step = (epoch_steps or {}).get(epoch) or (epoch * step_size if step_size else None)
            if step is not None:
                found.append((step, path))
    else:
        return []
    return sorted(((step, framework, path) for step, path in found), key=lambda t: (t[0], str(t[2])))


def _rl_games_epoch(path: Path) -> int | None:
    """The epoch an rl_games checkpoint without one in its name (the best, ``nn/<name>.pth``) holds."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - unreadable: not listed (a listed one is checked again anyway)
        return None
    epoch = state.get("epoch") if isinstance(state, Mapping) else None
    return int(epoch) if isinstance(epoch, int) else None


def check_framework_checkpoint(path: Path) -> str | None:
    """None when the file's tensors load (weights only) and are finite, else why not."""
    import zipfile

    import torch

    try:
        if path.suffix == ".zip":  # SB3: the policy's state dict is the zip's policy.pth
            with zipfile.ZipFile(path) as zf, zf.open("policy.pth") as fh:
                state = torch.load(fh, map_location="cpu", weights_only=True)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one reason line
        return f"unreadable: {type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
    return None if _all_finite(state) else "non-finite weights"


def _all_finite(obj) -> bool:
    import torch

    if isinstance(obj, torch.Tensor):
        return not obj.is_floating_point() or bool(torch.isfinite(obj).all())
    if isinstance(obj, Mapping):
        return all(_all_finite(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return all(_all_finite(v) for v in obj)
    return True


def py_path_literal(path: Path) -> str:
    """``path``, absolute, as a Python string literal in double quotes (a shell's single quotes then hold it as it is)."""
    return json.dumps(os.path.abspath(path), ensure_ascii=False)


def framework_resume_command(framework: str, path: Path, run_dir: Path, info: Mapping) -> str:
    """How that framework's users resume from ``path`` (Isaac Lab's train scripts where they exist): a shell command,
    its paths absolute and quoted (until session 27 a path with a space split, a relative one named the folder replay
    ran in, a quote broke SB3's ``-c`` code, and a run named ``.`` or through a link gave rsl_rl no run folder)."""
    task = shlex.quote(info["task"]) if info.get("task") else "<TASK>"
    where = shlex.quote(os.path.abspath(path))
    if framework == "rsl_rl":  # rsl_rl finds it by its run folder's name under its log root
        return (f"python scripts/reinforcement_learning/rsl_rl/train.py --task {task} --resume "
                f"--load_run {shlex.quote(Path(os.path.realpath(run_dir)).name)} --checkpoint {shlex.quote(path.name)}")
    if framework == "skrl":
        return f"python scripts/reinforcement_learning/skrl/train.py --task {task} --checkpoint {where}"
    if framework == "rl_games":
        return f"python scripts/reinforcement_learning/rl_games/train.py --task {task} --checkpoint {where}"
    if framework == "sb3":
        code = (f"from stable_baselines3 import PPO; model = PPO.load({py_path_literal(path)}, env=make_env()); "
                "model.learn(total_timesteps, reset_num_timesteps=False)")
        return f"python -c {shlex.quote(code)}  # make_env/total_timesteps: yours"
    return f"# load {where} with {framework}'s own loader"
