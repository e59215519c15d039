"""Training-stability watchdog for PPO/MAPPO: detectors, rollback policy, event log, replay.

PyPI's ``watchdog`` (a file watcher; rl-games requires it, and so do many tools) has the same import name.
The two share the ``watchdog`` folder without overwriting each other: no module here takes one of its
names (``events``, ``observers``, ``tricks``, ``utils``, ``version``, ``watchmedo``, ``__main__``:
tests/watchdog/test_package.py), and nothing imports from this file, which either package may own (its
own is comments only). An installed or editable ppo-watchdog and PyPI's watchdog both import, in either
order.
"""

__version__ = "0.1.0"
