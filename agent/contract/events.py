"""The `SuspectChange` event contract (schema ``otwatch.change/2``; ``/1`` still read).

The agent owns the schema it publishes (see `agent.contract` for what the classifier may
import). Every event the agent detects, approved or not, is one ``SuspectChange``; its
``verdict`` decides the topic (``authorized`` goes to the audit-trail topic, everything else to
the suspect topic).

Version 2 (what the agent publishes) adds to version 1:

- values that keep NaN and the infinities, and values too large for a message truncated with
  the full value's hash and length (`agent.contract.values`; in ``old_value``, ``new_value``,
  ``context`` and the snapshot);
- ``snapshot``: the controller's watched values at detection and their SHA-256;
- ``signature``: the agent's Ed25519 signature over the event, or over the root of a Merkle
  tree over its batch with the event's proof (`agent.contract.signing`);
- ``omitted``: the parts left out to keep the event under the agent's size cap
  (`agent.contract.limits`);
- tag kind ``measurement`` (context for investigators, never a change of its own).

Edge agents are upgraded one site at a time, so one model reads both versions: ``schema_``
says which one a message is, and a ``/1`` message carrying a ``/2`` field is refused. The
bytes on the wire are `to_json`: canonical JSON (sorted keys, no whitespace), the same bytes
the signature covers once ``signature`` is left out.

Example::

    >>> ev = SuspectChange.model_validate_json(raw)
    >>> ev.kafka_key(), ev.schema_
    (b'plant-1/press-01', 'otwatch.change/2')
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.contract.encode import event_body, event_json
from agent.contract.merkle import MAX_PROOF_HASHES, MAX_TREE_SIZE
from agent.contract.values import EventValue, ValueMap

#: The schema the agent publishes.
SCHEMA = "otwatch.change/2"
#: The first version, still read (agents not yet upgraded publish it).
SCHEMA_V1 = "otwatch.change/1"
#: Every version a reader must accept, oldest first.
CHANGE_SCHEMAS = (SCHEMA_V1, SCHEMA)


#: The largest ``seq`` (a signed 64-bit integer).
MAX_SEQ = 2**63 - 1

class Protocol(StrEnum):
    OPCUA = "opcua"
    MODBUS = "modbus"


class TagKind(StrEnum):
    SETPOINT = "setpoint"
    RECIPE = "recipe"
    PROGRAM = "program"
    MODE = "mode"
    #: A process value read for context (investigators see it); never a change of its own.
    MEASUREMENT = "measurement"


class ChangeKind(StrEnum):
    SETPOINT_CHANGE = "setpoint_change"
    RECIPE_SWITCH = "recipe_switch"
    RECIPE_EDIT = "recipe_edit"
    PROGRAM_CHANGE = "program_change"
    MODE_CHANGE = "mode_change"
    MONITORING_GAP = "monitoring_gap"
    CHANGED_WHILE_UNWATCHED = "changed_while_unwatched"


class Verdict(StrEnum):
    AUTHORIZED = "authorized"
    UNAPPROVED = "unapproved"
    OUTSIDE_WINDOW = "outside_window"
    VALUE_MISMATCH = "value_mismatch"
    APPROVAL_INVALID = "approval_invalid"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ControllerRef(_Frozen):
    id: str
    protocol: Protocol
    endpoint: str
    validated: bool = False


class TagRef(_Frozen):
    name: str
    address: str
    kind: TagKind
    critical_to_quality: bool = False
    unit: str | None = None


class ApprovalConsidered(_Frozen):
    """The approved change record the verdict was reached against, and why it did not match."""

    id: str
    valid_from: datetime
    valid_until: datetime
    approved_by: str
    change_control_ref: str | None = None
    why_not_matched: str | None = None


class MonitoringGap(_Frozen):
    """A spell in which the agent could not see the controller (or the tags of ``tag``):
    ``start`` is the last good read before it, ``end`` the first good read after it."""

    start: datetime
    end: datetime


_HEX64 = r"^[0-9a-f]{64}$"


class Snapshot(_Frozen):
    """The controller's watched values at detection: the configuration snapshot investigators
    preserve. ``sha256`` is over the canonical JSON of *all* the values (before any was
    truncated or left out to fit), so a copy kept elsewhere can be checked against it."""

    values: ValueMap = Field(default_factory=dict)
    sha256: str = Field(pattern=_HEX64)


#: Base64 of a 32-byte hash: 44 characters, the last one ``=``.
_HASH_B64 = r"^[A-Za-z0-9+/]{43}=$"


class MerkleProof(_Frozen):
    """Where the event sits in the batch its signature covers (``alg`` ``ed25519-merkle``):
    its leaf index, the tree size and the sibling hashes from the leaf up (base64), as
    `agent.contract.merkle` defines them. Bounded: a tree of at most `MAX_TREE_SIZE` leaves.
    Strict (``5`` only, never ``"5"`` or ``5.0``): the member is not signed, so it has one
    spelling, as the signature's base64 has."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    leaf_index: int = Field(ge=0, lt=MAX_TREE_SIZE)
    tree_size: int = Field(ge=1, le=MAX_TREE_SIZE)
    path: list[Annotated[str, Field(pattern=_HASH_B64)]] = Field(max_length=MAX_PROOF_HASHES)

    @model_validator(mode="after")
    def _index_in_tree(self) -> MerkleProof:
        if self.leaf_index >= self.tree_size:
            raise ValueError(f"leaf_index {self.leaf_index} is outside a tree of {self.tree_size}")
        return self


class EventSignature(_Frozen):
    """The agent's Ed25519 signature over the event (see `agent.contract.signing`): over the
    event itself (``ed25519``), or over the root of its batch's Merkle tree, with the event's
    ``proof`` (``ed25519-merkle``)."""

    #: Which of the agent's keys signed it (`agent.contract.signing.key_id_of`).
    key_id: str = Field(min_length=1, max_length=128)
    alg: Literal["ed25519", "ed25519-merkle"] = "ed25519"
    #: Base64 of the 64-byte signature.
    value: str = Field(min_length=1, max_length=128)
    #: The event's place in its batch: with ``ed25519-merkle`` only.
    proof: MerkleProof | None = Field(default=None, exclude_if=lambda proof: proof is None)

    @model_validator(mode="after")
    def _proof_with_merkle_only(self) -> EventSignature:
        if (self.alg == "ed25519-merkle") != (self.proof is not None):
            raise ValueError(f"alg {self.alg!r} takes a proof exactly when it is ed25519-merkle")
        return self


#: Fields a ``/1`` message must not carry.
_V2_FIELDS = ("snapshot", "signature", "omitted")


class SuspectChange(_Frozen):
    """One detected change on one controller tag, with its verdict against change control."""

    schema_: Literal["otwatch.change/1", "otwatch.change/2"] = Field(
        default="otwatch.change/2", alias="schema"
    )
    event_id: str
    #: At most a signed 64-bit integer: what the spool, the records store and JSON (orjson)
    #: can hold; a larger one is refused here rather than written as a float.
    seq: int = Field(ge=0, le=MAX_SEQ)
    agent_id: str
    site: str
    line: str
    controller: ControllerRef
    tag: TagRef
    old_value: EventValue = None
    new_value: EventValue = None
    occurred_at: datetime
    detected_at: datetime
    change_kind: ChangeKind
    verdict: Verdict
    verdict_reason: str = ""
    approval: ApprovalConsidered | None = None
    context: ValueMap = Field(default_factory=dict)
    actor: str | None = None
    gap: MonitoringGap | None = None
    snapshot: Snapshot | None = None
    #: Parts left out to stay under the size cap, e.g. ``["snapshot.values", "context"]``.
    omitted: list[str] | None = None
    signature: EventSignature | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _no_v2_fields_in_v1(self) -> SuspectChange:
        if self.schema_ == SCHEMA_V1:
            for name in _V2_FIELDS:
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} is new in {SCHEMA}; a {SCHEMA_V1} event has none")
        return self

    def kafka_key(self) -> bytes:
        """`<site>/<controller>`: one controller's changes stay in one partition, in order."""
        return f"{self.site}/{self.controller.id}".encode()

    def to_json(self) -> bytes:
        """The message value: canonical JSON (sorted keys, no whitespace), values encoded:
        ``canonical_json(self.json_object())``, written without pydantic's serializer
        (`agent.contract.encode`: a test holds the two equal)."""
        return event_json(event_body(self))

    def json_object(self) -> dict[str, Any]:
        """The event as the JSON object `to_json` writes (what the signature is over, less
        ``signature``)."""
        return self.model_dump(mode="json", by_alias=True)


#: The fields an event built by `built_event` counts as given: what ``model_validate`` of the
#: agent's own dict (every field but ``schema``) counts.
_BUILT_FIELDS_SET = frozenset(SuspectChange.model_fields) - {"schema_"}
_FIELD_COUNT = len(SuspectChange.model_fields)
_TAG_FIELDS_SET = frozenset(TagRef.model_fields)


def built_event(fields: dict[str, Any]) -> SuspectChange:
    """A `SuspectChange` of ``fields`` (every field, by its Python name, ``schema_`` too)
    as the agent built them, not validated again: what ``model_validate`` gives for them,
    at a fifth of its cost (half of building an event).

    For the agent's own builder only (`agent.reports`), whose parts are models already
    (controller, tag, approval, gap, snapshot), whose names come from the validated config,
    and whose values went through `agent.contract.values.decode_value` (the field
    validator) there: validation stays where data enters (sources, config, the wire).
    tests/agent/test_reports_contract.py holds every kind of event equal to the validated
    model."""
    if len(fields) != _FIELD_COUNT:
        raise ValueError(f"an event has {_FIELD_COUNT} fields, not {len(fields)}")
    return built_model(SuspectChange, fields, _BUILT_FIELDS_SET)


def built_tag_ref(name: str, address: str, kind: TagKind, critical_to_quality: bool,
                  unit: str | None) -> TagRef:
    """A `TagRef` of a validated config tag's parts, not validated again (as `built_event`):
    the first event of each tag builds one, and a 10,000-tag controller's first minutes
    build thousands."""
    return built_model(TagRef, {"name": name, "address": address, "kind": kind,
                           "critical_to_quality": critical_to_quality, "unit": unit},
                  _TAG_FIELDS_SET)


def built_model(cls: type[_M], fields: dict[str, Any], given: frozenset[str]) -> _M:
    """An instance of ``cls`` holding ``fields`` (already valid, every field given) as they
    are, with ``given`` as its fields-set: what ``model_construct`` makes, without its pass
    over every field in Python. The agent's events and tag references use it, and so do the
    classifier's classifications (`detectors.classification.built`)."""
    made = _new(cls)
    _set_dict(made, fields)
    _set_fields_set(made, set(given))
    _set_extra(made, None)
    _set_private(made, None)
    return made


_M = TypeVar("_M", bound=BaseModel)
_new = object.__new__
# BaseModel's slots, set through their descriptors: what ``object.__setattr__`` does past a
# frozen model's ``__setattr__``, without looking each name up on the class (a fifth of
# building a model this way; one per event, two more per tag's first change).
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
