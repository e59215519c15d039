"""Drivers for other training frameworks: one module per framework, imported only on demand.

``watchdog.integrations.sb3`` (Stable-Baselines3), ``watchdog.integrations.rsl_rl`` (rsl_rl's
``OnPolicyRunner``), ``watchdog.integrations.rl_games`` (an rl_games algorithm observer),
``watchdog.integrations.skrl`` (a ``with`` block around a skrl PPO agent's training) and
``watchdog.integrations.loop`` (called once per update by a loop of your own, CleanRL's) each implement the
library's driver contract (``watchdog.driver``) through a :class:`watchdog.session.TrainingSession` subclass.
Importing ``watchdog`` or this package imports no framework.
"""

from __future__ import annotations

from typing import Callable


def supported_version(dist: str, module: str, supported: str, extra: str, ok: Callable[[str], bool]) -> str:
    """The installed version of the distribution ``dist`` that ``watchdog.integrations.<module>`` drives; a
    one-line :class:`~watchdog.errors.WatchdogError` naming it when it is missing or ``ok(version)`` is false
    (``supported``: the range, as said to the user; ``extra``: our pip extra that installs it)."""
    import importlib.metadata

    from watchdog.errors import WatchdogError

    try:
        version = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        raise WatchdogError(f"{dist} is not installed; watchdog.integrations.{module} needs {dist} {supported}",
                            hint=f"pip install 'ppo-watchdog[{extra}]'") from None
    if not ok(version):
        raise WatchdogError(f"{dist} {version} is installed; watchdog.integrations.{module} supports {dist} {supported}",
                            hint=f"pip install '{dist}{supported}'")
    return version
