"""What the framework integrations' tests share: picking events, comparing restored state tensor by tensor."""

from __future__ import annotations

import torch


def kinds(events: list[dict], kind: str) -> list[dict]:
    """The events of one kind (``alarm``, ``rollback``, ...), in order."""
    return [e for e in events if e["event"] == kind]


def assert_same_tensors(live: dict, saved: dict, where: str) -> None:
    """``live`` holds exactly ``saved``'s keys and values, nested dicts and lists included, tensors bit for bit."""
    assert live.keys() == saved.keys(), where
    for key, value in saved.items():
        if isinstance(value, dict):
            assert_same_tensors(live[key], value, f"{where}.{key}")
        elif isinstance(value, torch.Tensor):
            assert torch.equal(live[key].cpu(), value.cpu()), f"{where}.{key} differs"
        elif isinstance(value, list):
            assert len(live[key]) == len(value), where
            for i, (a, b) in enumerate(zip(live[key], value)):
                assert_same_tensors({"v": a}, {"v": b}, f"{where}.{key}.{i}")
        else:
            assert live[key] == value, f"{where}.{key}: {live[key]!r} != {value!r}"


def spy_reseed(monkeypatch, module) -> list[int]:
    """The seeds ``module`` (an integration) reseeds torch, numpy and ``random`` with through the library's one
    ``reseed``: after a rollback, each of them, so a restored run draws anew whatever its env samples from (until
    session 28 rsl_rl, skrl, rl_games and the loop reseeded torch alone)."""
    seeds: list[int] = []
    real = module.reseed

    def spy(seed: int) -> None:
        seeds.append(seed)
        real(seed)

    monkeypatch.setattr(module, "reseed", spy)
    return seeds
