"""Validated settings kept as slotted rows instead of pydantic instances.

A pydantic model instance carries a ``__dict__``, a fields-set and two more slots: ~820 bytes
for a Modbus tag. An agent watching 100,000 tags held 82 MB of them, more than half of its
resident set. A `SettingsRow` subclass names a settings model (``__settings__``) and declares
the same fields as ``__slots__``; used as a field type in a pydantic model, the settings model
validates each item (every check, every message and error location as before) and the row
keeps the values (~200 bytes). Rows are frozen, compare and hash by value like the frozen
models they replace, and dump through their settings model (``model_dump`` of a controller
reads as before).

Example::

    class ModbusTag(TagBase):
        __settings__ = ModbusTagSettings
        __slots__ = ("table", "address", ...)

    tags: list[ModbusTag]          # in a controller model: validated by ModbusTagSettings
    ModbusTag.model_validate({"name": "t", "address": 0, "kind": "setpoint"})
"""

from __future__ import annotations

import sys
import typing
from collections.abc import Callable
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, GetCoreSchemaHandler
from pydantic_core import core_schema

_set = object.__setattr__


class SettingsRow:
    """Base of the rows; see the module docstring."""

    __slots__ = ()
    __settings__: ClassVar[type[BaseModel]]
    #: The fields in the settings model's order (the slots, all classes together).
    _fields: ClassVar[tuple[str, ...]] = ()
    #: Fields whose values are one of a few words (``Literal``): interned, one string for all.
    _words: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        settings = cls.__dict__.get("__settings__")
        if settings is None:
            return
        slots = {s for c in cls.__mro__ for s in c.__dict__.get("__slots__", ())}
        fields = tuple(settings.model_fields)
        if slots != set(fields):
            raise TypeError(
                f"{cls.__name__}.__slots__ must be the fields of {settings.__name__}: "
                f"missing {sorted(set(fields) - slots)}, extra {sorted(slots - set(fields))}"
            )
        cls._fields = fields
        cls._words = frozenset(
            name for name, field in settings.model_fields.items() if _is_words(field.annotation)
        )

    def __init__(self, **values: Any) -> None:
        """Unchecked, like ``model_construct``: missing fields take the settings' defaults."""
        for name, field in self.__settings__.model_fields.items():
            if name in values:
                _set(self, name, values.pop(name))
            else:
                _set(self, name, field.get_default(call_default_factory=True))
        if values:
            raise TypeError(f"{type(self).__name__} has no field {sorted(values)}")

    @classmethod
    def of(cls, settings: BaseModel) -> Self:
        """The row of a validated settings model."""
        row = object.__new__(cls)
        values = settings.__dict__
        words = cls._words
        for name in cls._fields:
            value = values[name]
            _set(row, name, sys.intern(value) if name in words and type(value) is str else value)
        return row

    @classmethod
    def model_validate(cls, data: Any) -> Self:
        """Validate ``data`` with the settings model (raises its `ValidationError`)."""
        return cls.of(cls.__settings__.model_validate(data))

    def settings(self) -> BaseModel:
        """The settings model again (unchecked: the row's values were checked once)."""
        return self.__settings__.model_construct(**self.values())

    def model_dump(self, **options: Any) -> dict[str, Any]:
        """The settings' ``model_dump`` (every field counts as set: ``exclude_unset`` keeps all)."""
        return self.settings().model_dump(**options)

    def model_copy(self, *, update: dict[str, Any] | None = None) -> Self:
        """A copy with ``update`` applied, unchecked (as pydantic's ``model_copy``)."""
        if not update:
            return self
        row = object.__new__(type(self))
        for name in self._fields:
            _set(row, name, update[name] if name in update else getattr(self, name))
        return row

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._fields}

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        settings = handler(cls.__settings__)

        def validate(value: Any, inner: Callable[[Any], Any]) -> Any:
            return value if isinstance(value, cls) else cls.of(inner(value))

        def dump(row: SettingsRow, inner: Callable[[Any], Any]) -> Any:
            return inner(row.settings())

        return core_schema.no_info_wrap_validator_function(
            validate,
            settings,
            serialization=core_schema.wrap_serializer_function_ser_schema(dump, schema=settings),
        )

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot set {name}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot delete {name}")

    def _key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash((type(self), self._key()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({inner})"

    def __copy__(self) -> Self:
        return self  # frozen

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self._key()))


def _rebuild(cls: type[SettingsRow], key: tuple[Any, ...]) -> SettingsRow:
    row = object.__new__(cls)
    for name, value in zip(cls._fields, key, strict=True):
        _set(row, name, value)
    return row


def _is_words(annotation: Any) -> bool:
    """``Literal["a", "b"]`` or ``Literal[...] | None``."""
    if typing.get_origin(annotation) is Literal:
        return True
    return any(typing.get_origin(a) is Literal for a in typing.get_args(annotation))
