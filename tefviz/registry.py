"""One registry type for every family of methods (text scorers, attention patterns, attention
approximations, embedding compressors, image tokenizers).

A family is a `Registry` of classes keyed by their `name` class attribute; a method is one file
with one decorated class, and the class carries what its consumers need (label, parameters,
capabilities, display order), so no page, benchmark or command compares a method's name to a
string literal. Like Inseq's `FeatureAttribution.load(name)`: `REGISTRY.load(name, **kwargs)`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

from tefviz.errors import InputError

T = TypeVar("T", bound=type)


class Registry(Mapping[str, T], Generic[T]):
    """Name -> class, in display order (the class's `order`, then registration order).

    Reads like a dict (`registry[name]`, `name in registry`, iteration); `get_class` and `load`
    raise one clear `InputError` for an unknown name.
    """

    def __init__(self, family: str) -> None:
        self.family = family  # "scorer", "pattern", ...: used in messages
        self._classes: dict[str, T] = {}

    def register(self, cls: T) -> T:
        """Class decorator: add `cls` under `cls.name` (a name may be registered once)."""
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"a {self.family} class needs a non-empty `name` class attribute")
        if name in self._classes:
            raise ValueError(f"{self.family} {name!r} registered twice")
        self._classes[name] = cls
        return cls

    def unregister(self, name: str) -> None:
        """Remove a method (tests that add a dummy one take it out again)."""
        self._classes.pop(name, None)

    def reference(self, name: str) -> tuple[str, str]:
        """(module, qualified name) of method `name`: how another process imports it (see `adopt`)."""
        cls = self.get_class(name)
        if "<locals>" in cls.__qualname__:
            raise InputError(
                f"{self.family} {name!r} is defined inside a function, so the background worker "
                "process cannot import it: define the class at module level"
            )
        return cls.__module__, cls.__qualname__

    def adopt(self, module: str, qualname: str) -> T:
        """In another process (the background worker): import the class `reference` named and
        register it if this process does not know it yet (a method registered at run time)."""
        cls = importlib.import_module(module)
        for part in qualname.split("."):
            cls = getattr(cls, part)
        if cls.name not in self._classes:
            self.register(cls)
        return cls

    def names(self, where: Callable[[T], bool] | None = None) -> list[str]:
        """Every name in display order, or those whose class passes `where`."""
        ordered = sorted(self._classes.values(), key=lambda c: getattr(c, "order", 100))
        return [c.name for c in ordered if where is None or where(c)]

    def get_class(self, name: str) -> T:
        try:
            return self._classes[name]
        except KeyError:
            raise InputError(f"unknown {self.family} {name!r}; choose one of {self.names()}") from None

    def load(self, name: str, **kwargs):
        """An instance of the method `name`, built with `kwargs`."""
        return self.get_class(name)(**kwargs)

    def __getitem__(self, name: str) -> T:
        return self._classes[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._classes)

    def __repr__(self) -> str:
        return f"Registry({self.family!r}, {self.names()})"
