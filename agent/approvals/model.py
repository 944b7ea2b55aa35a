"""The approved change record, the matching policy and the match result, as pydantic models.

An approved change record says: on this controller, this tag may see this kind of change, to
this value, within this UTC window, approved by this person. The kind (``change``) and what
``expected`` holds go together:

    change          expected
    setpoint        {exact: 185.0} or {min: 180.0, max: 185.0}   (unit optional)
    mode            {exact: AUTO}
    program         {checksum: 4b1d9e07c3a25f88}   (or {exact: ...})
    recipe_switch   {recipe_id: R-100, recipe_version: 3, parameters_hash: ...}  (id: text or
                    number; version and hash optional)
    recipe_edit     {recipe_id: R-100, recipe_version: 4, parameters: {temperature: 210.0,
                     dwell_time: {min: 25, max: 35}}}   (id and version optional)

A switch approval never covers a later edit. Files written before ``change`` existed keep their
meaning: a recipe form is a switch, ``checksum`` a program change, ``parameters`` an edit, a
range a setpoint, and an exact value approves the tag's own kind of change (setpoint, mode,
program, or the switch of a recipe-select register).

Example::

    >>> rec = ApprovedChange.model_validate({
    ...     "id": "CR-1", "controller": "press-01", "tag": "temperature_sp",
    ...     "change": "setpoint", "expected": {"exact": 185.0},
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


#: A recipe id or version as a controller reports it: text (``R-100``) or a number (``12``).
RecipeKey = int | str


class RecipeRef(_Strict):
    """A switch: the recipe becomes this recipe id and version (and parameters, if hashed)."""

    recipe_id: RecipeKey
    #: None: any version (for controllers whose recipes have no version tag).
    recipe_version: RecipeKey | None = None
    #: SHA-256 of the recipe's parameters (`otwatch-agent approvals hash`); None: any.
    parameters_hash: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")

    def describe(self) -> str:
        text = f"recipe {self.recipe_id}"
        if self.recipe_version is not None:
            text += f" version {self.recipe_version}"
        if self.parameters_hash:
            text += f" with parameters hash {self.parameters_hash[:12]}"
        return text


#: What an edit approves for one recipe parameter: a value, ``{exact: V}`` or ``{min, max}``.
ParameterValue = ExactScalar | ExactValue | ValueRange


def describe_parameter(value: ParameterValue) -> str:
    if isinstance(value, ExactValue | ValueRange):
        return value.describe()
    return ExactValue(exact=value).describe()


class RecipeEdit(_Strict):
    """An edit: the named recipe parameters change to these values or ranges, and no other."""

    #: The recipe being edited (None: whichever is active).
    recipe_id: RecipeKey | None = None
    #: The version the edit makes (None: any).
    recipe_version: RecipeKey | None = None
    parameters: dict[str, ParameterValue] = Field(min_length=1)

    def describe(self) -> str:
        which = f"recipe {self.recipe_id}" if self.recipe_id is not None else "the recipe"
        named = ", ".join(f"{k} {describe_parameter(v)}" for k, v in self.parameters.items())
        version = f" to version {self.recipe_version}" if self.recipe_version is not None else ""
        return f"an edit of {which}{version}: {named}"


class ProgramChecksum(_Strict):
    """A program change: the program tag (a checksum or version) becomes this value."""

    checksum: str = Field(min_length=1)

    def describe(self) -> str:
        return f"program checksum {self.checksum}"


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
    if "checksum" in value:
        return "ProgramChecksum"
    if "parameters" in value:
        return "RecipeEdit"
    if {"recipe_id", "recipe_version", "parameters_hash"} & value.keys():
        return "RecipeRef"
    if "min" in value or "max" in value:
        return "ValueRange"
    return None


Expected = Annotated[
    Annotated[ExactValue, Tag("ExactValue")]
    | Annotated[ValueRange, Tag("ValueRange")]
    | Annotated[RecipeRef, Tag("RecipeRef")]
    | Annotated[RecipeEdit, Tag("RecipeEdit")]
    | Annotated[ProgramChecksum, Tag("ProgramChecksum")],
    Discriminator(
        _expected_kind,
        custom_error_type="expected_form",
        custom_error_message=(
            "expected must be {exact: V}, {min: A, max: B}, {checksum: C}, "
            "{recipe_id: R, recipe_version: N} or {parameters: {NAME: V}}"
        ),
    ),
]

#: Discriminator tags that pydantic puts into error locations; not keys a user wrote.
EXPECTED_TAGS = frozenset(
    {"ExactValue", "ValueRange", "RecipeRef", "RecipeEdit", "ProgramChecksum"}
)

#: The kinds of change an approval can name (``change:``).
ApprovalKind = Literal["setpoint", "mode", "program", "recipe_switch", "recipe_edit"]
APPROVAL_KINDS: tuple[ApprovalKind, ...] = (
    "setpoint", "mode", "program", "recipe_switch", "recipe_edit",
)
#: The forms of ``expected`` each kind takes.
_FORMS: dict[ApprovalKind, tuple[type[BaseModel], ...]] = {
    "setpoint": (ExactValue, ValueRange),
    "mode": (ExactValue,),
    "program": (ProgramChecksum, ExactValue),
    "recipe_switch": (RecipeRef, ExactValue),
    "recipe_edit": (RecipeEdit,),
}
_FORM_WORDS = {
    "setpoint": "{exact: V} or {min: A, max: B}",
    "mode": "{exact: V}",
    "program": "{checksum: C}",
    "recipe_switch": "{recipe_id: R, recipe_version: N} (parameters_hash optional)",
    "recipe_edit": "{parameters: {NAME: V or {min: A, max: B}}} (recipe_id, recipe_version "
                   "optional)",
}
#: What a form means when ``change`` is not given (files from before it existed).
_IMPLIED: dict[type[BaseModel], ApprovalKind] = {
    ValueRange: "setpoint", ProgramChecksum: "program", RecipeRef: "recipe_switch",
    RecipeEdit: "recipe_edit",
}


class ApprovedChange(_Strict):
    """One approved change record from the plant's change control (file or topic)."""

    id: str = Field(min_length=1)
    controller: str = Field(min_length=1)
    tag: str = Field(min_length=1)
    #: The kind of change approved; None (older files): implied by ``expected`` (see above).
    change: ApprovalKind | None = None
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

    @model_validator(mode="after")
    def _expected_fits_change(self) -> ApprovedChange:
        if self.change is not None and not isinstance(self.expected, _FORMS[self.change]):
            raise ValueError(
                f"change: {self.change} takes expected {_FORM_WORDS[self.change]}, not "
                f"{self.expected.describe()}"
            )
        return self

    @property
    def approves(self) -> ApprovalKind | None:
        """The kind of change this record approves; None: the tag's own kind (an exact value
        in a file written before ``change`` existed)."""
        if self.change is not None:
            return self.change
        return _IMPLIED.get(type(self.expected))

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
    """How strictly changes are matched: signatures required or not, and clock skew allowed.

    ``require_signed`` is for approvals from files (and, when true, from the topic too);
    ``topic_require_signed`` is for approvals that arrived on the ``otwatch.approvals`` topic,
    which anyone with produce rights on the broker can write: on by default. Without a
    trusted key every approval from the topic is then ``approval_invalid`` (fail safe; the
    agent's config refuses that combination at start, see `agent.config`).
    """

    require_signed: bool = False
    topic_require_signed: bool = True
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
