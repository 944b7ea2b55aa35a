"""Readers for what the SIEM receives, written from the specifications (not from our encoder):
an RFC 5424 message (its ABNF, without structured data) and a CEF line (the ArcSight CEF
specification's escaping rules)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# RFC 5424 section 6: HEADER SP STRUCTURED-DATA [SP MSG]; we send no structured data ("-").
SYSLOG = re.compile(
    r"<(?P<pri>[0-9]{1,3})>(?P<version>[1-9][0-9]{0,2}) "
    r"(?P<timestamp>-|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})) "
    r"(?P<hostname>[\x21-\x7e]{1,255}) (?P<app_name>[\x21-\x7e]{1,48}) "
    r"(?P<procid>[\x21-\x7e]{1,128}) (?P<msgid>[\x21-\x7e]{1,32}) (?P<sd>-)"
    r"( (?P<msg>.*))?",
    re.S,
)


def parse_syslog(message: str) -> dict[str, str]:
    match = SYSLOG.fullmatch(message)
    assert match is not None, f"not an RFC 5424 message: {message[:200]!r}"
    assert int(match["pri"]) <= 191
    assert not (match["msg"] or "").startswith("\ufeff")
    return match.groupdict()


@dataclass
class Cef:
    version: str
    vendor: str
    product: str
    device_version: str
    signature_id: str
    name: str
    severity: str
    extension: dict[str, str]


def parse_cef(text: str) -> Cef:
    """A CEF line: seven header fields split on unescaped pipes (``\\|``, ``\\\\`` escapes),
    then ``key=value`` pairs where a value runs up to the space before the next unescaped
    ``key=`` (``\\=``, ``\\\\``, ``\\n``, ``\\r`` escapes)."""
    assert text.startswith("CEF:"), text[:40]
    header: list[str] = []
    field, i = "", len("CEF:")
    while len(header) < 7:
        char = text[i]
        if char == "\\":
            nxt = text[i + 1]
            assert nxt in "\\|", f"bad escape \\{nxt} in the header"
            field += nxt
            i += 2
            continue
        if char == "|":
            header.append(field)
            field = ""
        else:
            assert char not in "\r\n", "line break in the header"
            field += char
        i += 1
    return Cef(*header, extension=_extension(text[i:]))


def _extension(text: str) -> dict[str, str]:
    # positions of every unescaped "key=" that starts the text or follows a space
    starts = []
    for match in re.finditer(r"(?:^| )([A-Za-z0-9_]+)=", text):
        backslashes = len(text[: match.start(1)]) - len(text[: match.start(1)].rstrip("\\"))
        if backslashes % 2 == 0:
            starts.append(match)
    pairs: dict[str, str] = {}
    for n, match in enumerate(starts):
        end = starts[n + 1].start() if n + 1 < len(starts) else len(text)
        raw = text[match.end(): end]
        assert match[1] not in pairs, f"key {match[1]} twice"
        pairs[match[1]] = _unescape(raw)
    return pairs


def _unescape(raw: str) -> str:
    out, i = "", 0
    while i < len(raw):
        char = raw[i]
        if char == "\\":
            nxt = raw[i + 1]
            assert nxt in "\\=nr", f"bad escape \\{nxt} in an extension value"
            out += {"n": "\n", "r": "\r"}.get(nxt, nxt)
            i += 2
            continue
        assert char != "=", f"unescaped '=' in an extension value: {raw[:80]!r}"
        assert char not in "\r\n", "line break in an extension value"
        out += char
        i += 1
    return out
