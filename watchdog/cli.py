"""`watchdog ...` subcommands: argument parsing and exit codes only.

Exit codes: 0 = fine / healthy, 1 = a run diverged, 2 = bad input (one line on stderr).
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from typing import Callable, Sequence

from watchdog.errors import ReaderMayLeave, WatchdogError

EXIT_OK, EXIT_DIVERGED, EXIT_BAD_INPUT = 0, 1, 2


def _cmd_check(args: argparse.Namespace) -> int:
    from watchdog.config import FrameworkSafeConfig, PPOConfig, SB3SafeConfig, load_any_config
    from watchdog.console import WatchdogConsole

    cfg = load_any_config(args.file)
    out = WatchdogConsole()
    kind = ("PPO config" if isinstance(cfg, PPOConfig) else
            "Stable-Baselines3 safe config" if isinstance(cfg, SB3SafeConfig) else
            f"{cfg.framework} safe config" if isinstance(cfg, FrameworkSafeConfig) else "watchdog config")
    out.message(f"{args.file}: valid {kind}; effective values:", style="green")
    rows = []
    for key, value in _flatten(cfg.model_dump()).items():
        rows.append([key, value])
    if isinstance(cfg, (PPOConfig, SB3SafeConfig, FrameworkSafeConfig)):
        set_keys = cfg.set_values()
        unset = "(OpenRL default)" if isinstance(cfg, PPOConfig) else "(the model's own value)"
        rows = [[k, v if k in set_keys else unset] for k, v in rows]
    out.table(kind, ["key", "value"], rows)
    return EXIT_OK


def _flatten(data: dict, prefix: str = "") -> dict:
    out: dict = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="watchdog",
        description="A training-stability watchdog for PPO: check configs, replay and watch runs, supervise restarts. "
                    "Exit codes: 0 fine / healthy, 1 a run diverged (run: gave up), 2 bad input or an unreadable run, "
                    "130 interrupted.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log library messages (INFO)")
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="validate a watchdog or PPO config and print the effective values")
    check.add_argument("file")
    check.set_defaults(func=_cmd_check)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


# Other modules add their subcommands here (replay, watch, run), keeping this file thin.
_EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []
_COMMAND_MODULES = {"replay": "watchdog.replay_cli", "watch": "watchdog.watch", "run": "watchdog.supervise"}


def _register_optional(argv: Sequence[str] | None = None) -> None:
    """Collect the subcommand modules this command line needs (main() may be called many times): the
    named command's alone, its module is all it imports (replay does not load watch's or run's);
    every one for anything else (help, ``check``, a mistyped command)."""
    named = next((a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-")), None)
    modules = [_COMMAND_MODULES[named]] if named in _COMMAND_MODULES else list(_COMMAND_MODULES.values())
    _EXTRA_COMMANDS.clear()
    for module in modules:
        try:
            mod = __import__(module, fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        _EXTRA_COMMANDS.append(mod.register)


def main(argv: Sequence[str] | None = None) -> int:
    from watchdog.quiet import quiet_dependency_warnings

    quiet_dependency_warnings()
    _register_optional(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="watchdog: %(levelname)s: %(message)s")
    # What is alive now (the modules and classes just imported) stays alive: while the command runs,
    # the cyclic garbage collector need not scan it again at every collection (replay builds many objects).
    gc.freeze()
    stdout = sys.stdout
    sys.stdout = ReaderMayLeave(stdout)
    try:
        return int(args.func(args))
    except WatchdogError as err:
        print(f"watchdog: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as err:  # a folder or file the system refuses (permissions, a full disk): not a traceback
        where = f"{err.filename}: " if err.filename else ""
        print(f"watchdog: error: {where}{err.strerror or err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("watchdog: interrupted", file=sys.stderr)
        return 130
    finally:
        sys.stdout = stdout
        gc.unfreeze()


if __name__ == "__main__":
    sys.exit(main())
