"""Training-stability watchdog for PPO/MAPPO: detectors, rollback policy, event log, replay."""

__version__ = "0.1.0"
