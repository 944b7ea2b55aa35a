"""Create the topics a process needs, where the broker lets it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

from agent.kafka.settings import KafkaSettings

log = logging.getLogger(__name__)


async def ensure_topics(
    settings: KafkaSettings, names: Sequence[str], *, compacted: Sequence[str] = ()
) -> None:
    """Create missing topics if the broker allows it; tolerate any refusal (logged, not raised).

    ``settings.create_topics: false`` leaves topic creation to the site (the usual rule on a
    managed cluster); partitions and replication come from the settings. The ``compacted``
    ones are tables keyed by id (``cleanup.policy=compact``): the latest record per key is
    kept for ever.
    """
    if not settings.create_topics:
        return
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(**settings.admin_kwargs())
    try:
        await admin.start()
        new = [
            NewTopic(n, settings.topic_partitions, settings.topic_replication_factor,
                     topic_configs={"cleanup.policy": "compact"} if n in compacted else None)
            for n in [*names, *compacted]
        ]
        response = await admin.create_topics(new)
        for entry in getattr(response, "topic_errors", []):
            if entry[1] not in (0, 36):  # 36: TOPIC_ALREADY_EXISTS
                log.warning("cannot create topic %s (Kafka error code %s)", entry[0], entry[1])
    except Exception as exc:
        log.warning(
            "cannot create topics %s (%s); the broker may create them on demand", names, exc
        )
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
