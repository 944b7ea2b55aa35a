"""Evidence files: kept content-addressed (SHA-256) in the records database, attached to a
record by a workflow command (`commands.AttachFile`, trail field ``attachments`` with the
whole new list), and read back only with a chain-of-custody entry per access (trail field
``custody``: who, when, which file, why), written in the same transaction as the read.

The same content attached twice (to one record or two) is stored once. The download checks
the bytes against their address before handing them out, so a changed blob is refused,
never served.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import Connection, insert, select

from detectors.records._exceptions import InvalidUpdate
from detectors.records.commands import Actor
from detectors.records.models import MasterRecord
from detectors.records.permissions import Permission, require
from detectors.records.tables import attachment_blobs
from detectors.records.trail import TrailWriter, append_rows, canonical_json, iso

#: The largest file taken (the records service also caps request bodies).
MAX_BYTES = 16 * 1024 * 1024


def store_blob(conn: Connection, content: bytes) -> str:
    """Keep ``content`` (once) and return its SHA-256."""
    if not content:
        raise InvalidUpdate("attachment: the file is empty")
    if len(content) > MAX_BYTES:
        raise InvalidUpdate(f"attachment: {len(content)} bytes is over the {MAX_BYTES} limit")
    digest = hashlib.sha256(content).hexdigest()
    b = attachment_blobs
    if conn.execute(select(b.c.sha256).where(b.c.sha256 == digest)).first() is None:
        conn.execute(insert(b), [{"sha256": digest, "size": len(content), "content": content}])
    return digest


def attachment_row(record_id: str, position: int, data: dict[str, object]) -> dict[str, object]:
    return {"record_id": record_id, "position": position,
            **{k: v for k, v in data.items() if k != "size"}}


def read_with_custody(
    conn: Connection, record: MasterRecord, sha256: str, *, actor: Actor, purpose: str,
    now: datetime,
) -> tuple[str, str, bytes]:
    """(filename, media type, bytes) of one of the record's attachments, after appending its
    ``custody`` trail entry; the caller holds the write transaction and the trail head."""
    require(actor.user_id, actor.roles, Permission.VIEW_RECORDS)
    if not purpose.strip():
        raise InvalidUpdate("a download needs its purpose (kept in the chain of custody)")
    found = next((a for a in record.attachments if a.sha256 == sha256), None)
    if found is None:
        known = ", ".join(a.sha256[:12] for a in record.attachments) or "none"
        raise InvalidUpdate(f"record {record.id} has no attachment {sha256[:12]}… "
                            f"(attachments: {known})")
    content = conn.execute(select(attachment_blobs.c.content)
                           .where(attachment_blobs.c.sha256 == sha256)).scalar_one()
    if hashlib.sha256(content).hexdigest() != sha256:
        raise InvalidUpdate(f"attachment {sha256[:12]}… does not match its SHA-256: the stored "
                            "bytes were changed; not served (run otwatch-records verify)")
    entry = {"sha256": sha256, "filename": found.filename, "accessed_by": actor.user_id,
             "accessed_at": iso(now), "purpose": purpose.strip()}
    writer = TrailWriter.at_head(conn)
    writer.append(record.id, actor.user_id, iso(now), "custody", None, canonical_json(entry),
                  purpose.strip())
    append_rows(conn, writer)
    return found.filename, found.media_type, bytes(content)
