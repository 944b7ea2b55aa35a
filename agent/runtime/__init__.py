"""How every otwatch process runs: the plumbing the agent, the classifier and the simulators share.

One home for each piece, so no process borrows it from another:

- `agent.runtime.errors`: `OtwatchError`, the one root of every exception tree.
- `agent.runtime.logs`: logging set-up for every command line (`setup_logging`): text or JSON,
  UTC times, library noise demoted at the handler.
- `agent.runtime.cli`: the options every command shares (``--version``, ``--log-level``,
  ``--log-format``) and the exit codes.
- `agent.runtime.build_info`: ``otwatch_build_info``, set by every service at start.
- `agent.runtime.signals`: SIGINT and SIGTERM stop an async command (`stop_on_signals`), and
  `run_event_loop` runs it on uvloop.
- `agent.runtime.tasks`: owned background tasks (`OwnedTasks`, `log_task_crash`).
- `agent.runtime.backoff` and `agent.runtime.outage`: one capped backoff and one log-once-per-
  outage for everything that retries.
- `agent.runtime.cancel`: read loops end on a cancel a library swallowed.
- `agent.runtime.gc_tuning`: garbage-collector settings for the long-running services.

Layering: `agent.runtime` imports nothing else of ``agent`` (and no Kafka, no Prometheus); the
import contract in ``make lint`` (pyproject.toml, ``[tool.importlinter]``) holds it there.
"""
