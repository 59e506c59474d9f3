"""Every registered strategy passes the conformance test class."""

from __future__ import annotations

from negbench.core.registry import registry
from negbench.testing import StrategyConformance

DEFAULT_PARAMS = {
    "bm25": {"range_min": 0, "range_max": 10},
    "dense": {"range_min": 0, "range_max": 10},
    "ance": {"range_max": 10, "refresh_every": 1},
    # a group of 3: on the 128-document toy, 16 rows' groups of 7 share a third of their documents, which the
    # retriever embeds once per batch (the estimate, made for a real corpus, counts each: 8-12% high here)
    "ar2": {"range_max": 10, "refresh_every": 1, "ranker_warmup": 1, "ranker_lr": 1e-3, "group_size": 3},
    "mochi": {"hardest": 4, "num_mix": 4, "num_query_mix": 2},
    "xbm": {"memory_size": 16},
    "large-batch": {"mini_batch_size": 4},
    "tas-b": {"n_clusters": 8, "depth": 20},
    "ngame": {"cluster_size": 4},
    "simans": {"depth": 20},
    "star": {"depth": 20},
    "progressive": {"start_min": 20, "start_max": 40, "end_min": 0, "end_max": 10},
    "neighbourhood": {"n_clusters": 8},
    "rs2": {"fraction": 0.5},
}


def _make(name: str):
    cls = registry.get(name)
    return type(
        f"TestConformance_{name.replace('-', '_')}",
        (StrategyConformance,),
        {"strategy_cls": cls, "params": DEFAULT_PARAMS.get(name, {})},
    )


for _name in registry.names():
    _entry = registry.load(_name)
    if _entry.cls is not None and _entry.distribution == "negbench":
        globals()[f"TestConformance_{_name.replace('-', '_')}"] = _make(_name)
