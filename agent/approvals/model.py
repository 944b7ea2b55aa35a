"""The approved change record, the matching policy and the match result, as pydantic models.

An approved change record says: on this controller, this tag may be changed to this value
(exact, a range, or a recipe id and version) within this UTC window, approved by this person.

Example::

    >>> rec = ApprovedChange.model_validate({
    ...     "id": "CR-1", "controller": "press-01", "tag": "temperature_sp",
    ...     "expected": {"exact": 185.0},
    ...     "valid_from": "2026-11-23T08:00:00Z", "valid_until": "2026-11-23T20:00:00Z",
    ...     "approved_by": "j.doe"})
    >>> rec.expected.describe()
    'exactly 185.0'
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from agent.contract import ApprovalConsidered, Verdict

#: What an exact approval may name: a number, a text (a mode, a program name) or a flag.
ExactScalar = bool | int | float | str
#: The dash of a range as a quality engineer writes it (180.0 to 185.0 with an en dash).
EN_DASH = "\u2013"


def format_number(value: float | int) -> str:
    """A register value as a person writes it: float32 noise (185.00000762939453) reads 185.0."""
    if isinstance(value, bool) or isinstance(value, int):
        return str(value)
    return repr(float(f"{value:.7g}"))


def _unit_suffix(unit: str | None) -> str:
    return f" {unit}" if unit else ""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExactValue(_Strict):
    """The tag must become exactly this value (numbers within float32 precision)."""

    exact: ExactScalar
    unit: str | None = None

    def describe(self) -> str:
        value = self.exact
        shown = format_number(value) if not isinstance(value, str | bool) else repr(value)
        return f"exactly {shown}{_unit_suffix(self.unit)}"


class ValueRange(_Strict):
    """The tag must become a number within ``min``..``max``, both bounds inclusive."""

    min: float | None = None
    max: float | None = None
    unit: str | None = None

    @model_validator(mode="after")
    def _bounds(self) -> ValueRange:
        if self.min is None and self.max is None:
            raise ValueError("a range needs min, max or both (e.g. {min: 180.0, max: 185.0})")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}: swap them")
        return self

    def describe(self) -> str:
        unit = _unit_suffix(self.unit)
        if self.min is not None and self.max is not None:
            return f"{format_number(self.min)}{EN_DASH}{format_number(self.max)}{unit}"
        if self.min is not None:
            return f"at least {format_number(self.min)}{unit}"
        return f"at most {format_number(self.max or 0.0)}{unit}"


class RecipeRef(_Strict):
    """The recipe tag must become this recipe id and version (and parameters, if hashed)."""

    recipe_id: str
    #: None: any version (for controllers whose recipes have no version tag).
    recipe_version: int | str | None = None
    parameters_hash: str | None = None

    def describe(self) -> str:
        text = f"recipe {self.recipe_id}"
        if self.recipe_version is not None:
            text += f" version {self.recipe_version}"
        if self.parameters_hash:
            text += f" with parameters hash {self.parameters_hash[:12]}"
        return text


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _expected_kind(value: Any) -> str | None:
    """Which form of expected value a mapping is, from the keys it has."""
    if isinstance(value, BaseModel):
        return type(value).__name__
    if not isinstance(value, dict):
        return None
    if "exact" in value:
        return "ExactValue"
    if "recipe_id" in value or "recipe_version" in value:
        return "RecipeRef"
    if "min" in value or "max" in value:
        return "ValueRange"
    return None


Expected = Annotated[
    Annotated[ExactValue, Tag("ExactValue")]
    | Annotated[ValueRange, Tag("ValueRange")]
    | Annotated[RecipeRef, Tag("RecipeRef")],
    Discriminator(
        _expected_kind,
        custom_error_type="expected_form",
        custom_error_message=(
            "expected must be {exact: V}, {min: A, max: B} or {recipe_id: R, recipe_version: N}"
        ),
    ),
]

#: Discriminator tags that pydantic puts into error locations; not keys a user wrote.
EXPECTED_TAGS = frozenset({"ExactValue", "ValueRange", "RecipeRef"})


class ApprovedChange(_Strict):
    """One approved change record from the plant's change control (file or topic)."""

    id: str = Field(min_length=1)
    controller: str = Field(min_length=1)
    tag: str = Field(min_length=1)
    expected: Expected
    valid_from: AwareDatetime
    valid_until: AwareDatetime
    approved_by: str = Field(min_length=1)
    approved_at: AwareDatetime | None = None
    reason: str = ""
    change_control_ref: str | None = None
    single_use: bool = False
    status: Literal["active", "revoked"] = "active"
    signature: str | None = None

    @field_validator("valid_from", "valid_until", "approved_at")
    @classmethod
    def _to_utc(cls, value: datetime | None) -> datetime | None:
        return value.astimezone(UTC) if value is not None else None

    @field_validator("valid_until")
    @classmethod
    def _after_start(cls, value: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("valid_from")
        if start is not None and value <= start:
            raise ValueError(f"valid_until {value:%Y-%m-%dT%H:%M:%SZ} is not after valid_from")
        return value

    def considered(self, why_not_matched: str | None) -> ApprovalConsidered:
        """This record as the event reports it, with why it did not match."""
        return ApprovalConsidered(
            id=self.id,
            valid_from=self.valid_from,
            valid_until=self.valid_until,
            approved_by=self.approved_by,
            change_control_ref=self.change_control_ref,
            why_not_matched=why_not_matched,
        )


class ApprovalsDocument(_Strict):
    """The top level of an approvals file: ``approvals:`` and a list of records."""

    approvals: list[ApprovedChange]


def decode_public_key(text: str) -> bytes:
    """The 32 raw bytes of a base64 Ed25519 public key; raises ValueError naming the fix."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not base64: {exc} (use `otwatch-agent approvals keygen`)") from exc
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes, this one is {len(raw)}")
    return raw


class MatchPolicy(_Strict):
    """How strictly changes are matched: signatures required or not, and clock skew allowed."""

    require_signed: bool = False
    clock_skew_s: float = Field(default=30.0, ge=0.0)
    trusted_keys: list[str] = Field(default_factory=list)

    @field_validator("trusted_keys")
    @classmethod
    def _keys_decode(cls, keys: list[str]) -> list[str]:
        for key in keys:
            decode_public_key(key)
        return keys

    @model_validator(mode="after")
    def _keys_when_signed(self) -> MatchPolicy:
        if self.require_signed and not self.trusted_keys:
            raise ValueError(
                "require_signed needs at least one trusted key (add trusted_keys: [<base64>])"
            )
        return self


class MatchResult(_Strict):
    """The one verdict on one change, the approval considered, and the words that explain it."""

    verdict: Verdict
    approval: ApprovalConsidered | None = None
    reason: str
    consumed: str | None = None
