"""Change control in the agent: approved change records, and one verdict on every change.

Public surface (everything else is private to the package)::

    ApprovedChange, MatchPolicy, MatchResult      pydantic models (model.py)
    load_approvals_file(path)                     YAML/JSON file -> records (loading.py)
    match_change(...)                             the pure verdict function (matching.py)
    ApprovalBook                                  files + topic + single-use state (book.py)
    ApprovalTopicSource                           the ``otwatch.approvals`` consumer (topic.py)

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
from agent.approvals.loading import load_approvals_file
from agent.approvals.matching import match_change, recipe_parameters_hash
from agent.approvals.model import (
    ApprovedChange,
    ExactValue,
    MatchPolicy,
    MatchResult,
    RecipeRef,
    ValueRange,
)
from agent.approvals.topic import ApprovalTopicSource

__all__ = [
    "ApprovalBook",
    "ApprovalTopicSource",
    "ApprovalsError",
    "ApprovalsFileError",
    "ApprovalsStateError",
    "ApprovedChange",
    "ExactValue",
    "MatchPolicy",
    "MatchResult",
    "RecipeRef",
    "SigningError",
    "ValueRange",
    "load_approvals_file",
    "match_change",
    "recipe_parameters_hash",
]
