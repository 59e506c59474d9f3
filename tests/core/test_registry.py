"""Entry-point registry: lazy, a broken plugin is reported and never breaks the others."""

from __future__ import annotations

import pytest

from negbench.core.registry import Registry, registry
from negbench.errors import ConfigError
from negbench.strategies.in_batch import InBatch


@pytest.fixture
def fake_plugins(tmp_path, monkeypatch):
    dist = tmp_path / "fakeplugins-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplugins\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[negbench.strategies]\n"
        "broken = module_that_does_not_exist:Thing\n"
        "not-a-strategy = json:dumps\n"
        "in-batch-copy = negbench.strategies.in_batch:InBatch\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    importlib.invalidate_caches()
    return Registry()


def test_builtins_register_through_entry_points():
    assert {"none", "in-batch", "random", "bm25", "dense", "positive-aware", "ance"} <= set(registry.names())
    assert registry.get("in-batch") is InBatch
    assert registry.load("in-batch").distribution == "negbench"


def test_broken_plugins_are_listed_not_fatal(fake_plugins):
    entries = {e.name: e for e in fake_plugins.entries()}
    assert "ModuleNotFoundError" in entries["broken"].error
    assert "not a negbench.core.strategy.Strategy subclass" in entries["not-a-strategy"].error
    assert "registered as 'in-batch-copy'" in entries["in-batch-copy"].error
    assert entries["in-batch"].cls is InBatch
    with pytest.raises(ConfigError, match="strategy 'broken' is broken"):
        fake_plugins.get("broken")


def test_unknown_name_suggests(fake_plugins):
    with pytest.raises(ConfigError, match="did you mean 'in-batch'"):
        fake_plugins.get("inbatch")


def test_generators_register_through_their_own_group(tmp_path, monkeypatch):
    from negbench.core.registry import GENERATOR_GROUP, generators
    from negbench.generators import NegativeGenerator
    from negbench.generators.rules import RuleGenerator

    assert generators.get("rules") is RuleGenerator
    dist = tmp_path / "fakegen-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fakegen\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        f"[{GENERATOR_GROUP}]\nstrategy-not-generator = negbench.strategies.in_batch:InBatch\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    importlib.invalidate_caches()
    fresh = Registry(GENERATOR_GROUP, NegativeGenerator, "generator", "the generators")
    assert "not a negbench.generators.NegativeGenerator subclass" in fresh.load("strategy-not-generator").error
    with pytest.raises(ConfigError, match="unknown generator 'rule'; did you mean 'rules'"):
        fresh.get("rule")


def test_a_params_check_names_its_field():
    from negbench.strategies.ance import ANCE

    with pytest.raises(ConfigError, match=r"^strategies\[1\].params.refresh_every: refresh_every must be >= 1"):
        ANCE.parse_params({"refresh_every": 0}, "strategies[1].params")


def _dist(root, name: str, entry_points: str) -> None:
    dist = root / f"{name}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(entry_points)


GENERATOR_HEADER = "import sys\nfrom negbench.generators import NegativeGenerator\n\n"


def _generator_registry(tmp_path, monkeypatch, module: str, source: str, **dists: str) -> Registry:
    """A fresh generator registry that also sees the plugin distributions ``dists`` (name → entry-point lines of
    the generators group) whose classes live in ``module`` (``source``, after :data:`GENERATOR_HEADER`)."""
    import importlib

    from negbench.core.registry import GENERATOR_GROUP, generators
    from negbench.generators import NegativeGenerator

    for name, lines in dists.items():
        _dist(tmp_path, name, f"[{GENERATOR_GROUP}]\n{lines}\n")
    (tmp_path / f"{module}.py").write_text(GENERATOR_HEADER + source)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    return Registry(GENERATOR_GROUP, NegativeGenerator, "generator", "the generators", check=generators.check)


def test_a_name_two_distributions_register_differently_is_broken_not_chosen(tmp_path, monkeypatch):
    """A look-alike plugin registered under a built-in's name used to hide it silently (first found won)."""
    fresh = _generator_registry(
        tmp_path,
        monkeypatch,
        "lookalike_gen",
        "class Rules(NegativeGenerator):\n    name = 'rules'\n\n"
        "    def generate(self, query, positive, count, rng):\n"
        "        return [positive[::-1]]\n",
        lookalike="rules = lookalike_gen:Rules",
    )
    entry = fresh.load("rules")
    assert entry.cls is None and "registered twice" in entry.error and "negbench" in entry.error
    assert "lookalike" in entry.error
    with pytest.raises(ConfigError, match=r"generator 'rules' is broken: .*registered twice"):
        fresh.get("rules")


def test_a_generator_that_cannot_be_created_is_broken(tmp_path, monkeypatch):
    """The protocol creates a generator with no arguments; one that needs some used to show "ok" and pass
    validation, then fail the run."""
    fresh = _generator_registry(
        tmp_path,
        monkeypatch,
        "needy_gen",
        "class Needy(NegativeGenerator):\n    name = 'needy'\n\n"
        "    def __init__(self, endpoint):\n        self.endpoint = endpoint\n",
        needy="needy = needy_gen:Needy",
    )
    assert "TypeError" in fresh.load("needy").error and "endpoint" in fresh.load("needy").error


def test_a_plugin_that_exits_is_broken_and_the_rest_still_listed(tmp_path, monkeypatch):
    """sys.exit() in a generator's __init__ ended `negbench generators` and `validate` with no word."""
    fresh = _generator_registry(
        tmp_path,
        monkeypatch,
        "exiter_gen",
        "class Exiter(NegativeGenerator):\n    name = 'exiter'\n\n    def __init__(self):\n"
        "        sys.exit('no\\nservice')\n\n"
        "class Same(NegativeGenerator):\n    name = 'same'\n",
        exiter="exiter = exiter_gen:Exiter\nsame = exiter_gen:Same",
        exiter2="same = exiter_gen:Same",
    )
    entries = {e.name: e for e in fresh.entries()}
    assert entries["exiter"].error == "SystemExit: no service"  # one line
    assert entries["rules"].cls is not None
    assert entries["same"].cls is not None  # one target from two distributions is one plugin, not a conflict
