"""Lazy registries of plugins from entry-point groups: strategies (``negbench.strategies``) and text-negative
generators (``negbench.generators``).

Built-ins register exactly like third-party plugins. Nothing is imported until a plugin is asked for;
a plugin that fails to import (or to be created, for a generator) is reported as broken (with its error) and
never stops the others; a name that two installed distributions register differently is broken too (neither is
chosen silently).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from negbench.core.strategy import Strategy
from negbench.errors import ConfigError
from negbench.generators import NegativeGenerator

__all__ = ["GENERATOR_GROUP", "GROUP", "Entry", "Registry"]

GROUP = "negbench.strategies"
GENERATOR_GROUP = "negbench.generators"


@dataclass
class Entry:
    name: str
    target: str
    distribution: str | None
    error: str | None = None
    cls: type | None = None


class Registry:
    """The plugins of one entry-point group: each a subclass of ``base`` whose ``name`` is its entry-point name."""

    def __init__(
        self,
        group: str = GROUP,
        base: type = Strategy,
        kind: str = "strategy",
        listing: str = "`negbench strategies`",
        check: Callable[[type], object] | None = None,
    ) -> None:
        """``check(cls)``, when given, must not raise for a usable plugin (e.g. create a generator)."""
        self.group, self.base, self.kind, self.listing, self.check = group, base, kind, listing, check
        self._entries: dict[str, tuple[EntryPoint, Entry]] | None = None

    def _discover(self) -> dict[str, tuple[EntryPoint, Entry]]:
        if self._entries is None:
            self._entries = {}
            for ep in entry_points(group=self.group):
                dist = ep.dist.name if ep.dist is not None else None
                if ep.name not in self._entries:
                    self._entries[ep.name] = (ep, Entry(ep.name, ep.value, dist))
                    continue
                first = self._entries[ep.name][1]
                if first.target != ep.value:  # one target from two distributions is one plugin
                    first.error = (
                        f"{self.kind} name {ep.name!r} is registered twice: {first.target} (from "
                        f"{first.distribution}) and {ep.value} (from {dist}); uninstall one"
                    )
        return self._entries

    def names(self) -> list[str]:
        return sorted(self._discover())

    def load(self, name: str) -> Entry:
        """Import one entry point (once); record the error instead of raising."""
        ep, entry = self._discover()[name]
        if entry.cls is None and entry.error is None:
            try:
                obj = ep.load()
                if not (isinstance(obj, type) and issubclass(obj, self.base)):
                    raise TypeError(f"{ep.value} is not a {self.base.__module__}.{self.base.__name__} subclass")
                if obj.name != name:
                    raise TypeError(f"{ep.value}.name is {obj.name!r}, registered as {name!r}")
                if self.check is not None:
                    self.check(obj)
                entry.cls = obj
            except (Exception, SystemExit) as exc:  # a plugin's sys.exit() must not end the listing or the run
                entry.error = " ".join(f"{type(exc).__name__}: {exc}".split())  # one line
        return entry

    def entries(self) -> list[Entry]:
        return [self.load(name) for name in self.names()]

    def get(self, name: str, field: str | None = None) -> type:
        """The plugin class for ``name``; unknown names get a "did you mean" suggestion."""
        if name not in self._discover():
            close = difflib.get_close_matches(name, self.names(), n=3)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ConfigError(f"unknown {self.kind} {name!r}{hint} (see {self.listing})", field=field)
        entry = self.load(name)
        if entry.cls is None:
            raise ConfigError(f"{self.kind} {name!r} is broken: {entry.error}", field=field)
        return entry.cls


registry = Registry()
generators = Registry(
    GENERATOR_GROUP, NegativeGenerator, "generator", "`negbench generators`", check=lambda cls: cls()
)  # a generator is created with no arguments
