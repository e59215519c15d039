"""What the rsl_rl, rl_games and skrl examples share: exit codes, the input checks made before anything is
built (faults, configs, the run directory) and the one-line errors.

Exit codes (as ``openrl_ws/train.py``): 0 finished, 1 stopped by the watchdog, 2 bad input (one line on
stderr), 3 training died on (or ended with) non-finite numbers.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

EXIT_OK, EXIT_STOPPED, EXIT_BAD_INPUT, EXIT_DIVERGED = 0, 1, 2, 3
UNSUPPORTED_FAULTS = ("lr_spike",)  # needs OpenRL's trainer; the rest act on the env (or raise)


def run_example(prog: str, args: Any, run: Callable[[Any], int]) -> int:
    """``run(args)`` with the examples' exit codes: a bad input is one line and exit 2, a run that died on
    non-finite numbers one line and exit 3."""
    from watchdog.errors import NonFiniteTraining, WatchdogError
    from watchdog.quiet import quiet_dependency_warnings

    quiet_dependency_warnings()  # gym's notice (push_lite's OpenRL imports pull gym in), and the like
    try:
        return run(args)
    except WatchdogError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except NonFiniteTraining as exc:
        advice = "rerun with --watchdog to roll back instead" if not args.watchdog else "resume from a stable checkpoint"
        print(f"{prog}: training diverged: {exc}; {advice}", file=sys.stderr)
        return EXIT_DIVERGED


def checked_inputs(args: Any, *, load_safe_config: Callable[[Any], Any], framework: str, sizes_ok: bool,
                   sizes_rule: str) -> tuple[Any, Path]:
    """Everything a user can get wrong, before anything is built: the ``--inject`` specs (each parsed; kinds
    this example cannot inject refused), the sizes (``sizes_ok``, else ``sizes_rule`` as the error), the
    safe and watchdog YAML (with ``--watchdog``), the run directory (created). Returns (faults, run dir);
    also sets torch's CPU threads."""
    from openrl_ws.inject import FaultSchedule
    from watchdog.config import load_watchdog_config
    from watchdog.errors import ConfigError, InputError

    faults = FaultSchedule.from_specs(args.inject)
    for fault in faults.faults:
        if fault.kind in UNSUPPORTED_FAULTS or fault.rank is not None:
            raise ConfigError(f"--inject {fault.spec!r}: not supported by this example",
                              hint="use nan, reward_scale, obs_noise or crash, without /rank=")
    if not sizes_ok:
        raise ConfigError(sizes_rule)
    faults, not_repeated = faults.this_attempt()
    if not_repeated:
        print(not_repeated, flush=True)
    if args.watchdog:  # bad YAML is exit 2 before training, not a traceback in it
        load_safe_config(args.safe_config)
        if args.watchdog_config:
            load_watchdog_config(args.watchdog_config)
    run_dir = Path(args.run_dir or ROOT / "results" / f"{time.strftime('%m-%d-%H-%M-%S')}_{framework}").resolve()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the run directory ({exc.strerror or exc})", path=str(run_dir)) from None
    import torch

    torch.set_num_threads(max(1, args.torch_threads))
    return faults, run_dir
