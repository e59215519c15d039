"""The watchdog inside a PPO loop of your own (CleanRL's single-file scripts, or any hand-written trainer).

A loop you own has no hook to wrap, so you call the watchdog once per update and give it three functions:
how to copy the training state, how to put a copy back, and how to switch to the safe config::

    from watchdog.integrations.loop import LoopWatchdog

    def switch(lr_scale):  # CleanRL's anneal_lr sets the lr from args.learning_rate every update: change that too
        old, args.learning_rate = args.learning_rate, 3e-4 * lr_scale
        optimizer.param_groups[0]["lr"] = args.learning_rate
        return {"learning_rate": (old, args.learning_rate)}

    watch = LoopWatchdog(f"runs/{run_name}",
                         capture=lambda: {"agent": agent.state_dict(), "optimizer": optimizer.state_dict()},
                         restore=lambda s: (agent.load_state_dict(s["agent"]), optimizer.load_state_dict(s["optimizer"])),
                         switch=switch)
    for iteration in range(num_iterations):
        ...  # rollout, update
        step = watch.step(iteration, global_step, {"losses/value_loss": v_loss.item(), ...,
                                                   "rollout/episode_return": mean_of_last_100_returns})
        if step.stopped:
            break
        if step.rolled_back:
            next_obs, _ = envs.reset()  # the next rollout starts from fresh observations
    watch.close()
    if watch.result.stopped:  # exit 1: `watchdog run` restarts a restartable (resource) stop, and a script sees it
        sys.exit(1)

Under ``watchdog run`` (a restart after the process died), start the loop where the watchdog says::

    start = watch.resume()      # a restarted process: the stable checkpoint back in place, the safe config on
    global_step = start.env_steps
    for iteration in range(start.iteration, num_iterations):
        ...

``capture`` returns a nested dict of tensors and numbers (``state_dict``s); the watchdog copies it (in memory,
and verified on disk as a stable checkpoint), and on a rollback hands ``restore`` a copy to load in place.
``switch(lr_scale)`` applies your safe config, the learning rate times ``lr_scale`` (1, then 0.5, 0.25 for
further rollbacks), and returns what it changed as ``{name: (old, new)}`` (set what the loop reads its learning
rate from, not only the optimizer: a schedule that rewrites the optimizer's lr every update undoes it otherwise);
without it a rollback restores the weights and changes nothing else, and says so. Metrics: the watchdog's keys (``watchdog.signals``:
``train/value_loss``, ``rollout/episode_return`` ...) or CleanRL's tags (``losses/value_loss``,
``losses/policy_loss``, ``losses/entropy``, ``losses/approx_kl``, ``charts/learning_rate``). The absolute 0.2
value-loss rule is on only with ``value_targets_normalized=True`` (CleanRL regresses raw returns).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from watchdog.checkpoints import clone_tree, plain_state
from watchdog.config import WatchdogConfig, load_watchdog_config
from watchdog.console import WatchdogConsole
from watchdog.driver import ConfigSwitch
from watchdog.errors import InternalError, WatchdogError
from watchdog.frameworks import FRAMEWORKS, LOOP, MAPPABLE_KEYS, live_config
from watchdog.pipeline import Watchdog
from watchdog.policy import Rollback, SaveStable
from watchdog.resources import ResourceSampler
from watchdog.session import IntegrationSession, SessionResult, refuse_resume, reseed, rollback_seed
from watchdog.supervise import RESUME_ENV
from watchdog.signals import EPISODE_RETURN, VALUE_LOSS, MetricRecord

FRAMEWORK = LOOP  # the start event's name for a run watched through this module (replay reads it)
_CLEANRL_TAGS = {tag: key for tag, key in FRAMEWORKS["cleanrl"].tags.items() if not tag.startswith("charts/episod")}


@dataclass(frozen=True)
class Step:
    """What the watchdog did after an update: ``rolled_back`` (the state was restored: restart the rollout),
    ``stopped`` (the rollback budget is spent: end training); ``rollback``: the rollback event, if any."""

    rolled_back: bool = False
    stopped: bool = False
    rollback: dict | None = None


@dataclass(frozen=True)
class Resume:
    """Where your loop starts: ``iteration`` (the next update to run) and ``env_steps`` (all envs' steps so far);
    ``checkpoint``: the stable checkpoint put back in place (None: the process was not restarted, start at 0)."""

    iteration: int = 0
    env_steps: int = 0
    checkpoint: str | None = None


class LoopSession(IntegrationSession):
    """The :class:`~watchdog.driver.Driver` of a loop you own: your ``capture`` / ``restore`` / ``switch``."""

    resumes = True  # through LoopWatchdog.resume(), which the loop calls before its first update

    def __init__(self, capture: Callable[[], dict], restore: Callable[[dict], Any],
                 switch: Callable[[float], Mapping[str, tuple[Any, Any]]] | None, **kwargs: Any):
        super().__init__(**kwargs)
        self._capture, self._restore, self._switch = capture, restore, switch

    def capture(self, action: SaveStable) -> dict:
        state = self._capture()
        if not isinstance(state, dict):
            raise WatchdogError(f"capture() returned {type(state).__name__}, not a dict of state_dicts",
                                hint="return e.g. {'agent': agent.state_dict(), 'optimizer': optimizer.state_dict()}")
        try:  # what a weights-only checkpoint cannot hold is said now, as the user's (a numpy array was an
            plain_state(state, "capture()")  # InternalError an update later, its stable checkpoint never written)
        except InternalError as exc:
            raise WatchdogError(str(exc), hint="give tensors (torch.as_tensor(array), torch.get_rng_state()) and plain "
                                "numbers; turn them back in restore()") from None
        return clone_tree(state)  # training must never write into a snapshot

    def restore_snapshot(self, snap: dict, action: Rollback) -> None:
        self._restore(clone_tree(snap))  # a copy: a later rollback to the same checkpoint finds it intact
        reseed(rollback_seed(self.seed, action))

    def apply_config(self, action: Rollback) -> ConfigSwitch:
        if self._switch is None:
            return ConfigSwitch({}, {"config": "no switch() given: the run keeps its hyper-parameters"})
        changes = self._switch(action.lr_scale) or {}
        try:
            pairs = {str(k): (_plain_value(old), _plain_value(new)) for k, (old, new) in dict(changes).items()}
        except (TypeError, ValueError):
            raise WatchdogError(f"switch() returned {changes!r:.120}: not a dict of key -> (old, new)",
                                hint="return e.g. {'learning_rate': (old_lr, new_lr)}") from None
        return ConfigSwitch(pairs, {})


def _plain_value(value: Any) -> Any:
    """A switch's old or new value as the event log can hold it: a number (numpy's, a tensor's .item()), else as is."""
    if isinstance(value, np.generic) or (isinstance(value, torch.Tensor) and value.numel() == 1):
        return value.item()
    return value


class LoopWatchdog:
    """Watches a PPO loop you own; see the module's docstring.

    ``run_dir``: where ``watchdog_events.jsonl`` and ``checkpoints/watchdog/`` go; ``config``: a
    :class:`WatchdogConfig` or a YAML path (default: the library's, judged as replay judges a run with raw value
    targets, the reward detector on ``rollout/episode_return``); ``value_targets_normalized``: your value targets
    are normalised (then the 0.2 rule is on); ``safe_name``: how events name your safe config; ``console``: a
    :class:`WatchdogConsole` (default one on stdout); ``seed``: the base of the rollbacks' reseeding;
    ``scalar(tag, value, step)``: where the ``watchdog/*`` scalars go (e.g. your ``SummaryWriter.add_scalar``);
    ``device``: your training's torch device (its memory is watched with the host's, ``sys/*``: docs/resources.md).
    """

    def __init__(self, run_dir: str | Path, *, capture: Callable[[], dict], restore: Callable[[dict], Any],
                 switch: Callable[[float], Mapping[str, tuple[Any, Any]]] | None = None,
                 config: WatchdogConfig | str | Path | None = None, value_targets_normalized: bool = False,
                 safe_name: str = "your safe config", console: Any = None, seed: int = 0,
                 scalar: Callable[[str, float, int], Any] | None = None, device: Any = "cpu"):
        cfg = config if config is None or isinstance(config, WatchdogConfig) else load_watchdog_config(config)
        why = f"LoopWatchdog(value_targets_normalized={value_targets_normalized})"
        self.normalized = bool(value_targets_normalized)
        self.watch = LoopSession(
            capture, restore, switch, safe=None, seed=seed,
            watchdog=Watchdog(live_config(FRAMEWORK, cfg, reward=EPISODE_RETURN, normalization=(self.normalized, why))),
            run_dir=Path(run_dir), safe_name=safe_name, console=console if console is not None else WatchdogConsole(),
            scalar=scalar, resources=ResourceSampler(device))
        self._started = self._closed = False
        self._unread_said = False  # an update whose metrics hold no key we read was said (once)
        self._last: int | None = None  # the last update judged (step() or failed()); the next must come after it

    @property
    def result(self) -> SessionResult:
        """How the watched run went: ``stopped``, ``stop_reason``, ``rollbacks``, ``iterations``, ``events``."""
        return self.watch.result

    def resume(self) -> Resume:
        """Where your loop starts; call it once, before the first update. In a process ``watchdog run`` restarted
        (``WATCHDOG_RESUME``), the stable checkpoint it chose goes back in place through your ``restore``, the
        watchdog goes on as it was then (detectors, rollback budget, the stable checkpoints still on disk), your
        ``switch(1.0)`` applies the safe config (not after a resource stop), and your loop goes on from
        ``Resume.iteration`` at ``Resume.env_steps``. In any other process: ``Resume(0, 0)``, and in one restarted
        with no stable checkpoint to resume from (the run died before its first) the restart is counted in the budget
        and ``switch(1.0)`` applies the safe config all the same."""
        if self._started:
            raise WatchdogError("LoopWatchdog.resume() called after the run started (a step() or resume() before it)",
                                hint="call it once, before your loop, and start the loop from its iteration")
        self._begin()
        ref = self.watch.resume_from_env()
        if ref is None:
            return Resume()
        self._last = ref.iteration
        return Resume(ref.iteration + 1, ref.env_steps, ref.path)

    def _begin(self) -> None:
        self._started = True
        self.watch.start(framework=FRAMEWORK, value_targets_normalized=self.normalized)

    def step(self, iteration: int, env_steps: int, metrics: Mapping[str, float]) -> Step:
        """Judge one update's metrics (iteration: 0-based, counting every update run, rolled-back ones
        included; env steps: all envs' steps so far) and carry out what the watchdog decides."""
        values = {}
        for key, value in metrics.items():
            try:
                values[_CLEANRL_TAGS.get(key, key)] = float(value)
            except (TypeError, ValueError):  # (a bare TypeError naming no key until session 17)
                raise WatchdogError(f"metric {key!r} is {value!r:.60}, not a number",
                                    hint="pass numbers (a tensor's .item()); leave a metric out when you have none") \
                    from None
        record = MetricRecord.from_mapping(self._next(iteration), int(env_steps), values)
        if not self._unread_said and not any(key in MAPPABLE_KEYS for key in record.metrics):
            # (a loop logging only keys of its own was watched in silence, NaN included: session 17)
            self._unread_said = True
            self.watch.say(f"LoopWatchdog: update {iteration}'s metrics ({', '.join(sorted(metrics))[:200]}) hold no key "
                           f"the watchdog reads, so nothing in them is judged; name them as ours or CleanRL's "
                           f"(losses/value_loss, rollout/episode_return, ...: docs/integrations.md)", style="bold yellow")
        if not self._started:  # before _outcome: the recoveries a restart brings are no rollback of this update's
            self._begin_without_resume()
        return self._outcome(lambda: self.step_record(record))

    def _next(self, iteration: int) -> int:
        """The update's iteration, which must come after the last one judged (a loop that restarted its count at a
        rollback, or judged an update twice, had its stable checkpoints and onsets dated wrongly: session 18)."""
        it = int(iteration)
        if it < 0 or (self._last is not None and it <= self._last):
            after = "" if self._last is None else f" after update {self._last}"
            raise WatchdogError(f"LoopWatchdog: update {iteration!r} given{after}: iterations start at 0 and increase",
                                hint="count every update run, rolled-back ones included (and start from "
                                     "LoopWatchdog.resume().iteration in a restarted process)")
        self._last = it
        return it

    def step_record(self, record: MetricRecord) -> bool:
        """Judge one record (already under the watchdog's keys); False: stop training."""
        if self._closed:
            raise WatchdogError("this LoopWatchdog is closed", hint="build a new one per run")
        if not self._started:
            self._begin_without_resume()
        return self.watch.observe(record)

    def _begin_without_resume(self) -> None:
        """The run's start in a loop that did not call :meth:`resume` (its first update judged): refused in a process
        restarted to resume, which would start over at its own 0; a restart from scratch (no stable checkpoint to
        resume from: the loop's own 0 is right) is counted and switched to the safe config, as through
        :meth:`resume` (``resume_from_env``)."""
        if os.environ.get(RESUME_ENV):
            raise refuse_resume("this loop did not call LoopWatchdog.resume()",
                                hint="start = watch.resume() before the loop; run it from start.iteration "
                                     "with global_step = start.env_steps")
        self._begin()
        self.watch.resume_from_env()  # (no checkpoint: None, the loop is at its start)

    def _outcome(self, judge: Callable[[], bool]) -> Step:
        """Run ``judge`` (False: stop) and say what the watchdog did."""
        rollbacks = self.watch.result.rollbacks
        keep_going = judge()
        if self.watch.result.rollbacks == rollbacks:
            return Step(stopped=not keep_going)
        rollback = next(e for e in reversed(self.watch.result.events) if e["event"] == "rollback")
        return Step(rolled_back=True, stopped=not keep_going, rollback=rollback)

    def failed(self, iteration: int, env_steps: int, exc: BaseException) -> Step:
        """An update that raised on non-finite numbers (``Categorical(logits=nan)``, ``Normal(loc=nan)``: NaN
        observations or weights), judged as a NaN record. Only a rollback or a stop lets your loop go on; with
        neither (``action: alert``) it raises :class:`~watchdog.errors.NonFiniteTraining`. Call it from your
        ``except`` around the rollout and update, for errors you know to be non-finite numbers."""
        record = MetricRecord.from_mapping(self._next(iteration), int(env_steps), {VALUE_LOSS: math.nan})
        if not self._started:
            self._begin_without_resume()
        self.watch.iteration_failed(record.iteration, record.env_steps, exc, "update")
        return self._outcome(lambda: self.watch.judge_failed(lambda: self.step_record(record), "update", exc))

    def close(self) -> None:
        """End the watched run (the event log's ``end`` event; pending checkpoint writes finished)."""
        if not self._closed:
            self._closed = True
            self.watch.close()

    def __enter__(self) -> "LoopWatchdog":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
