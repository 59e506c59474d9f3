"""Every registered strategy passes the conformance test class."""

from __future__ import annotations

from negbench.registry import registry
from negbench.testing import StrategyConformance

DEFAULT_PARAMS = {
    "bm25": {"range_min": 0, "range_max": 10},
    "dense": {"range_min": 0, "range_max": 10},
    "ance": {"range_max": 10, "refresh_every": 1},
}


def _make(name: str):
    cls = registry.get(name)
    return type(f"TestConformance_{name.replace('-', '_')}", (StrategyConformance,),
                {"strategy_cls": cls, "params": DEFAULT_PARAMS.get(name, {})})


for _name in registry.names():
    _entry = registry.load(_name)
    if _entry.cls is not None and _entry.distribution == "negbench":
        globals()[f"TestConformance_{_name.replace('-', '_')}"] = _make(_name)
