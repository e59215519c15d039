"""Drivers for other training frameworks: one module per framework, imported only on demand.

``watchdog.integrations.sb3`` (Stable-Baselines3), ``watchdog.integrations.rsl_rl`` (rsl_rl's
``OnPolicyRunner``), ``watchdog.integrations.rl_games`` (an rl_games algorithm observer),
``watchdog.integrations.skrl`` (a ``with`` block around a skrl PPO agent's training) and
``watchdog.integrations.loop`` (called once per update by a loop of your own, CleanRL's) each implement the
library's driver contract (``watchdog.driver``) through a :class:`watchdog.session.TrainingSession` subclass.
Importing ``watchdog`` or this package imports no framework.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping


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


class CurriculumTerms:
    """The task's curriculum terms as an env reports them in its step info (Isaac Lab's ``Curriculum/<term>`` in
    ``extras["episode"]``, else ``extras["log"]``, which rsl_rl's logger and Isaac Lab's rl_games observer read):
    the newest value of each, under our key (``curriculum/<term>``), read as a record's value once per iteration
    (a mean over envs; one device sync then, none per step)."""

    def __init__(self) -> None:
        self.newest: dict[str, Any] = {}
        self._keys: dict[str, str | None] = {}  # each info name's key (None: not a curriculum term), looked up once

    def update(self, extras: Any) -> None:
        """One env step's info dict (anything else is ignored)."""
        if not isinstance(extras, Mapping):
            return
        info = extras.get("episode") or extras.get("log")
        if not isinstance(info, Mapping):
            return
        from watchdog.frameworks import curriculum_key

        keys = self._keys
        for name, value in info.items():
            key = keys.get(name, False)
            if key is False:  # "/" in the name: the frameworks log it as it is ("Curriculum/terrain_levels")
                key = keys[name] = curriculum_key(name) if "/" in str(name) else None
            if key is not None:
                self.newest[key] = value

    def values(self) -> dict[str, float]:
        """Each term's newest value, a float (the mean over envs)."""
        import torch

        return {key: float(torch.as_tensor(value, dtype=torch.float64).mean()) for key, value in self.newest.items()}
