"""Fixtures shared by the test files."""

import sys

import pytest


class _NoTorch:
    """A meta-path finder that makes ``import torch`` fail as if it were not installed."""

    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None


@pytest.fixture
def no_torch(monkeypatch):
    """``import torch`` fails as on a base install (``sys.modules["torch"] = None``
    would also break scipy.stats, which probes for torch)."""
    for name in [m for m in sys.modules if m == "torch" or m.startswith("torch.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_NoTorch(), *sys.meta_path])
