"""What the joint criteria decided about one event: the contract between criteria and records.

The criteria (`detectors.criteria`) produce a `Classification`; the records store
(`detectors.records`) turns it into a master record, or attaches the event as evidence to
the open record with the same ``correlation_key``.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any, NamedTuple, Self

from pydantic import BaseModel, ConfigDict, Field


class ClassKind(StrEnum):
    JOINT = "joint"
    QUALITY_ONLY = "quality_only"
    SECURITY_ONLY = "security_only"
    NONE = "none"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


#: (a module constant: an enum member looked up on its class is a slow descriptor per event)
_NONE = ClassKind.NONE

SEVERITY_ORDER = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


class _Checked(BaseModel):
    """The fields of a `Classification` as pydantic checks them: what the public constructor
    and `Classification.model_validate` validate with (coercion, defaults, unknown fields
    refused); instances are never kept."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ClassKind
    severity: Severity = Severity.LOW
    rules_fired: tuple[str, ...] = ()
    criteria_version: str
    quality_impact: str = ""
    security_impact: str = ""
    description: str = ""
    #: Events with the same key, within the correlation window, are one incident.
    correlation_key: str = ""
    #: Set for an event of a burst: its line's key (`detectors.correlate.line_key`), which
    #: the records store claims so that one burst is one record across classifier processes.
    line_key: str = ""
    #: MITRE ATT&CK for ICS technique ids named by the rules that fired (e.g. T0836).
    attack_techniques: tuple[str, ...] = Field(default=())


class _Fields(NamedTuple):
    kind: ClassKind
    severity: Severity
    rules_fired: tuple[str, ...]
    criteria_version: str
    quality_impact: str
    security_impact: str
    description: str
    correlation_key: str
    line_key: str
    attack_techniques: tuple[str, ...]


#: The field names in order (`_Checked`'s, and the tuple's).
_NAMES = _Fields._fields
assert _NAMES == tuple(_Checked.model_fields)
_new = tuple.__new__


class Classification(_Fields):
    """The decision on one event, with the rules that fired and the criteria version.

    An immutable named tuple, not a pydantic model: the classifier makes one per event, and
    a tuple of ten values costs a third of the cheapest pydantic instance (`built_for`).
    Made by hand (``Classification(kind=..., criteria_version=...)``) or from data
    (`model_validate`) it is validated as the pydantic model `_Checked` validates it, and it
    keeps the part of pydantic's API its users call (`model_dump`, `model_dump_json`,
    `model_copy`, `model_validate`, `model_fields_set`). The tuple's own ``_replace`` and
    ``_make`` validate too. Being a tuple, it equals the plain tuple of its values, and a
    generic serialiser (``json.dumps``, a pydantic field of this type) writes it as a list by
    position: write it with `model_dump` or `model_dump_json`, which name its fields.
    """

    __slots__ = ()

    def __new__(cls, *values: Any, **fields: Any) -> Classification:
        if len(values) > len(_NAMES):
            raise TypeError(f"a Classification has {len(_NAMES)} fields, not {len(values)}")
        given = dict(zip(_NAMES, values, strict=False))
        twice = given.keys() & fields.keys()
        if twice:
            raise TypeError(f"Classification: {sorted(twice)} given twice")
        return cls.model_validate(given | fields)

    def __setattr__(self, name: str, value: object) -> None:
        raise ValueError(f"a Classification is frozen: {name} cannot be set (model_copy)")

    @classmethod
    def model_validate(cls, data: Any) -> Classification:
        """A classification of ``data`` (a mapping of its fields), validated."""
        checked = _Checked.model_validate(data)
        return _new(cls, [getattr(checked, name) for name in _NAMES])

    def model_dump(self, *, include: Iterable[str] | None = None) -> dict[str, Any]:
        fields = self._asdict()
        if include is None:
            return fields
        wanted = set(include)
        return {name: value for name, value in fields.items() if name in wanted}

    def model_dump_json(self) -> str:
        return _Checked.model_validate(self._asdict()).model_dump_json()

    def model_copy(self, *, update: dict[str, Any] | None = None) -> Classification:
        """A copy with ``update``'s fields changed, validated (pydantic's ``model_copy``
        does not validate them)."""
        return type(self).model_validate({**self._asdict(), **(update or {})})

    def _replace(self, /, **fields: Any) -> Classification:
        """A copy with ``fields`` changed, validated (the named tuple's own would not be)."""
        return self.model_copy(update=fields)

    @classmethod
    def _make(cls, iterable: Iterable[Any]) -> Self:  # type: ignore[override]
        """A classification of values in field order, validated. (The ignore: typeshed types
        a named tuple's ``_make`` by its own fields, which mypy will not match here.)"""
        return cls(*iterable)

    @property
    def model_fields_set(self) -> set[str]:
        return set(_NAMES)

    @property
    def opens_record(self) -> bool:
        return self.kind is not _NONE


#: What a set of fired rules decides, the event's own fields (description and keys) apart:
#: (kind, severity, rules_fired, criteria_version, quality_impact, security_impact,
#: attack_techniques), made once per decision of the compiled criteria (`decision`).
Decision = tuple[ClassKind, Severity, tuple[str, ...], str, str, str, tuple[str, ...]]


def decision(
    *, kind: ClassKind, severity: Severity, rules_fired: tuple[str, ...], criteria_version: str,
    quality_impact: str, security_impact: str, attack_techniques: tuple[str, ...],
) -> Decision:
    """What a set of fired rules decides: made once per decision of the compiled criteria,
    not per event (`built_for` completes it per event)."""
    return (kind, severity, rules_fired, criteria_version, quality_impact, security_impact,
            attack_techniques)


def built_for(
    decided: Decision, description: str, correlation_key: str, line_key: str
) -> Classification:
    """A `Classification` of a `decision` and one event's description and keys, from values
    that are already valid (the compiled criteria's and a validated event's), not validated
    again: one tuple, a third of the cost of the cheapest pydantic instance (the classifier
    makes one per event). A test checks it equals the validated one."""
    kind, severity, rules, version, quality, security, techniques = decided
    return _new(Classification, (kind, severity, rules, version, quality, security,
                                 description, correlation_key, line_key, techniques))
