"""The entry points' first call: silence the known import-time noise of our dependencies.

Kept apart from :mod:`watchdog.console` (which imports rich) so that a command that prints no
console output (``watchdog replay --json``) does not pay for rich.
"""

from __future__ import annotations

import warnings

# Import-time warnings of our dependencies that a user cannot act on: (category, module regex,
# message regex). Only these are silenced, so the user's and our own warnings still show.
_DEPENDENCY_WARNINGS = (
    (FutureWarning, r"treevalue(\.|$)", r"`torch\.utils\._pytree\._register_pytree_node` is deprecated"),
    (Warning, "", r".*WARN: env\.\w+ to get variables from other wrappers is deprecated"),
    (Warning, "", r".*WARN: The `reward_range` is deprecated"),
    (DeprecationWarning, "", r".*WARN: Initializing environment in \(old\) done step API"),
    (DeprecationWarning, "", r".*WARN: The `gymnasium\.make\(\.\.\., apply_api_compatibility=\.\.\.\)` parameter"),
)


def quiet_dependency_warnings() -> None:
    """Silence the known import-time noise of gym, treevalue and gymnasium (entry points only).

    gym 0.26 prints its "unmaintained since 2022" notice with ``print`` (not ``warnings``) when
    ``gym_notices`` has an entry for its version: that entry is removed before gym is imported.
    """
    for category, module, message in _DEPENDENCY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    try:
        from importlib.metadata import PackageNotFoundError, version

        from gym_notices import notices
    except ImportError:
        return
    try:
        notices.notices.pop(version("gym"), None)
    except (PackageNotFoundError, AttributeError):
        pass
