"""Lazy registry of strategies from the ``negbench.strategies`` entry-point group.

Built-ins register exactly like third-party plugins. Nothing is imported until a strategy is asked for;
a plugin that fails to import is reported as broken (with its error) and never stops the others.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from negbench.errors import ConfigError
from negbench.strategy import Strategy

GROUP = "negbench.strategies"


@dataclass
class Entry:
    name: str
    target: str
    distribution: str | None
    error: str | None = None
    cls: type[Strategy] | None = None


class Registry:
    def __init__(self, group: str = GROUP) -> None:
        self.group = group
        self._entries: dict[str, tuple[EntryPoint, Entry]] | None = None

    def _discover(self) -> dict[str, tuple[EntryPoint, Entry]]:
        if self._entries is None:
            self._entries = {}
            for ep in entry_points(group=self.group):
                dist = ep.dist.name if ep.dist is not None else None
                self._entries.setdefault(ep.name, (ep, Entry(ep.name, ep.value, dist)))
        return self._entries

    def names(self) -> list[str]:
        return sorted(self._discover())

    def load(self, name: str) -> Entry:
        """Import one entry point (once); record the error instead of raising."""
        ep, entry = self._discover()[name]
        if entry.cls is None and entry.error is None:
            try:
                obj = ep.load()
                if not (isinstance(obj, type) and issubclass(obj, Strategy)):
                    raise TypeError(f"{ep.value} is not a negbench.strategy.Strategy subclass")
                if obj.name != name:
                    raise TypeError(f"{ep.value}.name is {obj.name!r}, registered as {name!r}")
                entry.cls = obj
            except Exception as exc:
                entry.error = f"{type(exc).__name__}: {exc}"
        return entry

    def entries(self) -> list[Entry]:
        return [self.load(name) for name in self.names()]

    def get(self, name: str, field: str | None = None) -> type[Strategy]:
        """The strategy class for ``name``; unknown names get a "did you mean" suggestion."""
        if name not in self._discover():
            close = difflib.get_close_matches(name, self.names(), n=3)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ConfigError(f"unknown strategy {name!r}{hint} (see `negbench strategies`)", field=field)
        entry = self.load(name)
        if entry.cls is None:
            raise ConfigError(f"strategy {name!r} is broken: {entry.error}", field=field)
        return entry.cls


registry = Registry()
