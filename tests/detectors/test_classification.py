"""A `Classification` is one small immutable value per event, validated where it is made by
hand or from data, and built without validation (`built_for`) where the criteria make it."""

from __future__ import annotations

import copy
import pickle
import tracemalloc

import pytest
from pydantic import ValidationError

from detectors.classification import Classification, ClassKind, Severity
from detectors.correlate import NO_CONTEXT
from detectors.criteria import classify, classify_all, load_criteria
from tests.support.events import make_event

from .test_criteria import SHIPPED

CRITERIA = load_criteria(SHIPPED)


def test_a_classification_per_event_keeps_little_beyond_its_text() -> None:
    """The classifier makes one per event: its own weight (without its description and key,
    which are the event's text) is a tuple's, not a model's instance, dict and fields-set
    (about 1,100 bytes an event)."""
    placed = [(make_event(), NO_CONTEXT) for _ in range(1000)]
    classify_all(placed, CRITERIA)  # (the criteria's plan compiled outside the measure)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = classify_all(placed, CRITERIA)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    text = sum(len(c.description) + len(c.correlation_key) + 2 * 49 for c in kept)
    assert (grown - text) / len(kept) < 300


def test_made_by_hand_it_is_validated_as_the_model_was() -> None:
    made = Classification(kind="joint", severity="high", rules_fired=["R1"],
                          criteria_version="v1")
    assert made.kind is ClassKind.JOINT and made.severity is Severity.HIGH
    assert made.rules_fired == ("R1",) and made.description == ""
    with pytest.raises(ValidationError):
        Classification(kind="joint", criteria_version="v1", colour="red")
    with pytest.raises(ValidationError):
        Classification(kind="sideways", criteria_version="v1")
    with pytest.raises(ValidationError):
        Classification(kind="joint")  # (no criteria version)


def test_it_copies_pickles_and_updates_as_a_value() -> None:
    made = classify(make_event(), CRITERIA)
    assert copy.copy(made) == made == pickle.loads(pickle.dumps(made))
    assert type(pickle.loads(pickle.dumps(made))) is Classification
    changed = made.model_copy(update={"severity": "critical"})
    assert changed.severity is Severity.CRITICAL and made.severity is not Severity.CRITICAL
    assert changed.model_dump() == {**made.model_dump(), "severity": Severity.CRITICAL}
    assert made.model_dump(include={"kind"}) == {"kind": made.kind}
    with pytest.raises(ValueError, match="frozen"):
        made.description = "x"  # type: ignore[misc]


def test_the_named_tuples_own_copy_and_make_validate_too() -> None:
    """``_replace`` and ``_make`` are the usual way to change a named tuple: they must refuse
    what `model_copy` and the constructor refuse, not build a value the records store then
    fails on inside its transaction."""
    made = classify(make_event(), CRITERIA)
    with pytest.raises(ValidationError):
        made._replace(kind="sideways")
    with pytest.raises(ValidationError):
        Classification._make(range(10))
    assert made._replace(severity="critical").severity is Severity.CRITICAL
    assert Classification._make(made) == made
