"""Prometheus metrics of the approvals package (module level: one set per process).

Verdicts are counted where the event is made (the agent), not here.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

LOADED = Gauge(
    "otwatch_agent_approvals_loaded",
    "Approved change records currently loaded (files and topic, revoked ones included).",
)
EXPIRED = Gauge(
    "otwatch_agent_approvals_expired",
    "Loaded approved change records whose validity window has ended.",
)
USED = Gauge(
    "otwatch_agent_approvals_used",
    "Single-use approvals already used up by a matching change (persisted across restarts).",
)
FILE_LOAD_ERRORS = Counter(
    "otwatch_agent_approvals_file_load_errors",
    "Failed loads of an approvals file; the last good set of that file stays in use.",
    ["file"],
)
FILE_BROKEN = Gauge(
    "otwatch_agent_approvals_file_broken",
    "1 while an approvals file is invalid and its last good set is in use, else 0.",
    ["file"],
)
TOPIC_RECORD_ERRORS = Counter(
    "otwatch_agent_approvals_topic_record_errors",
    "Records on the approvals topic that were refused (bad JSON, bad record, key mismatch).",
)
TOPIC_UP = Gauge(
    "otwatch_agent_approvals_topic_up",
    "1 while the approvals topic consumer is assigned and reading, else 0.",
)
USE_RECORD_ERRORS = Counter(
    "otwatch_agent_approvals_used_topic_record_errors",
    "Records on the approvals-used topic that were refused (not a use of an approval).",
)
USES_KNOWN = Gauge(
    "otwatch_agent_approvals_uses_known",
    "1 once the uses of single-use approvals recorded on Kafka are read since the start "
    "(until then no single-use approval authorises), else 0.",
)
USED_TOPIC_UP = Gauge(
    "otwatch_agent_approvals_used_topic_up",
    "1 while the approvals-used topic consumer is assigned and reading, else 0.",
)
REFUSED = Gauge(
    "otwatch_agent_approvals_refused",
    "Loaded approvals refused because they can never match a change this agent reports "
    "(unknown controller or tag, a recipe member, a kind of change the tag cannot make).",
)
