"""Test-only: an integration example under the watchdog, launched as Isaac Lab launches a run, that dies hard.

    python tests/helpers/crashing_integration.py EXAMPLE --crash KIND@K --logs BASE [--restart-inject SPEC] [example flags...]

EXAMPLE: ``rsl_rl_ppo``, ``rl_games_ppo``, ``sb3_ppo`` or ``skrl_ppo`` (``examples/``). Each launch logs into a new folder, ``BASE/attempt<N>``
(N: ``WATCHDOG_RESTART``, 0 for the first), as Isaac Lab's train scripts make a new timestamped one per launch;
the watchdog's run dir is the one ``watchdog run`` names. KIND: ``exit`` (``os._exit(3)``) or ``kill`` (SIGKILL
to itself, as the OOM killer would). Only the first attempt crashes, right after the watchdog judged iteration
K (its stable checkpoint, if K is one, on disk). ``--restart-inject SPEC``: the fault the restarted attempts inject
(the examples inject none of their ``--inject`` faults there).
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

CRASHES = {"exit": lambda: os._exit(3), "kill": lambda: os.kill(os.getpid(), signal.SIGKILL)}


def _watched(example: str):
    """The class whose ``_judge(record)`` judges each iteration, and how to reach its session."""
    if example == "rsl_rl_ppo":
        from watchdog.integrations.rsl_rl import WatchedOnPolicyRunner

        return WatchedOnPolicyRunner, lambda obj: obj.watch
    if example == "rl_games_ppo":
        from watchdog.integrations.rl_games import WatchdogObserver

        return WatchdogObserver, lambda obj: obj.watch
    from watchdog.integrations.sb3 import WatchdogCallback

    return WatchdogCallback, lambda obj: obj.session


def main(argv: list[str]) -> int:
    example, argv = argv[0], argv[1:]
    i = argv.index("--crash")
    kind, at = argv[i + 1].split("@")
    argv = argv[:i] + argv[i + 2:]
    j = argv.index("--logs")
    attempt = int(os.environ.get("WATCHDOG_RESTART", "0"))
    if "--restart-inject" in argv:  # a fault of the env that comes again in the restarted process (the examples
        k = argv.index("--restart-inject")  # inject none of theirs there: an injected fault is one incident)
        spec, argv = argv[k + 1], argv[:k] + argv[k + 2:]
        j = argv.index("--logs")
        if attempt:
            from openrl_ws.inject import FaultSchedule

            FaultSchedule.this_attempt = lambda self: (FaultSchedule.from_specs([spec]), None)
    argv = argv[:j] + ["--run_dir", str(Path(argv[j + 1]) / f"attempt{attempt}")] + argv[j + 2:]
    module = importlib.import_module(example)
    if attempt == 0 and example == "skrl_ppo":  # skrl's watchdog judges inside the agent's update
        from watchdog.integrations.skrl import SkrlWatchdog

        watched_update = SkrlWatchdog._watched_update

        def update(self, *, timestep, timesteps):
            iteration = self._updates
            watched_update(self, timestep=timestep, timesteps=timesteps)
            if iteration == int(at):
                self.watch.settle()
                print(f"crashing_integration: crashing with {kind}", file=sys.stderr, flush=True)
                CRASHES[kind]()

        SkrlWatchdog._watched_update = update
    elif attempt == 0:
        cls, session_of = _watched(example)
        original = cls._judge

        def judge(self, record):
            out = original(self, record)
            if record.iteration == int(at):
                session_of(self).settle()  # this iteration's stable checkpoint on disk, as after any iteration
                print(f"crashing_integration: crashing with {kind}", file=sys.stderr, flush=True)
                CRASHES[kind]()
            return out

        cls._judge = judge
    return module.main(argv)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main(sys.argv[1:]))
