"""Change control in the agent: approved change records, and one verdict on every change.

Public surface (everything else is private to the package)::

    ApprovedChange, MatchPolicy, MatchResult      pydantic models (model.py)
    ExactValue, ValueRange, ProgramChecksum,      what an approval expects, per kind of
    RecipeRef (a switch), RecipeEdit              change (model.py)
    load_approvals_file(path)                     YAML/JSON file -> records (loading.py)
    match_change(...)                             the pure verdict function (matching.py)
    kind_of_change(...)                           a detected change in the approvals' words
    recipe_parameters_hash(parameters)            the recipe hash the agent reports (hashing.py)
    ApprovalBook                                  files + topic + single-use state (book.py)
    ApprovalTopicSource                           the ``otwatch.approvals`` consumer (topic.py)
    UsedApprovalsSource                           the ``otwatch.approvals.used`` consumer
    ApprovalUse                                   one use of a single-use approval, as recorded
                                                  on Kafka (uses.py)

Exceptions: ``ApprovalsError`` > ``ApprovalsFileError``, ``ApprovalsStateError``,
``SigningError`` (errors.py).
"""

from agent.approvals.book import ApprovalBook
from agent.approvals.errors import (
    ApprovalsError,
    ApprovalsFileError,
    ApprovalsStateError,
    SigningError,
)
from agent.approvals.hashing import recipe_parameters_hash
from agent.approvals.loading import load_approvals_file
from agent.approvals.matching import match_change
from agent.approvals.model import (
    APPROVAL_KINDS,
    ApprovalKind,
    ApprovedChange,
    ExactValue,
    MatchPolicy,
    MatchResult,
    ProgramChecksum,
    RecipeEdit,
    RecipeRef,
    ValueRange,
)
from agent.approvals.topic import ApprovalTopicSource, UsedApprovalsSource
from agent.approvals.uses import ApprovalUse
from agent.approvals.values import kind_of_change

__all__ = [
    "APPROVAL_KINDS",
    "ApprovalBook",
    "ApprovalKind",
    "ApprovalTopicSource",
    "ApprovalUse",
    "ApprovalsError",
    "ApprovalsFileError",
    "ApprovalsStateError",
    "ApprovedChange",
    "ExactValue",
    "MatchPolicy",
    "MatchResult",
    "ProgramChecksum",
    "RecipeEdit",
    "RecipeRef",
    "SigningError",
    "UsedApprovalsSource",
    "ValueRange",
    "kind_of_change",
    "load_approvals_file",
    "match_change",
    "recipe_parameters_hash",
]
