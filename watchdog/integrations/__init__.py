"""Drivers for other training frameworks: one module per framework, imported only on demand.

``watchdog.integrations.sb3`` (Stable-Baselines3), ``watchdog.integrations.rsl_rl`` (rsl_rl's
``OnPolicyRunner``), ``watchdog.integrations.rl_games`` (an rl_games algorithm observer) and
``watchdog.integrations.skrl`` (a ``with`` block around a skrl PPO agent's training) each implement the
library's driver contract (``watchdog.driver``) through a :class:`watchdog.session.TrainingSession` subclass.
Importing ``watchdog`` or this package imports no framework.
"""
