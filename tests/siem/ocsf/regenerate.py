"""Regenerate the vendored OCSF JSON schemas of this folder (run by hand, not by the tests).

    python3 -m venv /tmp/ocsf && /tmp/ocsf/bin/pip install ocsf-json-schema==1.2.0
    /tmp/ocsf/bin/python tests/siem/ocsf/regenerate.py

ocsf-json-schema (PyPI, MIT) packages the official OCSF schema exports of schema.ocsf.io
(``/<version>/export/schema``) and turns a class into a JSON Schema (draft 2020-12) with every
object it references embedded, ``additionalProperties: false`` everywhere, enums, required
attributes and the ``at_least_one`` / ``just_one`` constraints. Detection Finding (class 2004)
with the ``host`` profile, for the version otwatch writes (1.1.0) and the newest packaged (1.8.0).
"""

from __future__ import annotations

import json
from pathlib import Path

from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema  # type: ignore[import-not-found]

HERE = Path(__file__).parent
VERSIONS = ("1.1.0", "1.8.0")


def main() -> None:
    for version in VERSIONS:
        schema = OcsfJsonSchemaEmbedded(get_ocsf_schema(version=version))
        body = schema.get_class_schema(class_name="detection_finding", profiles=["host"])
        out = HERE / f"detection_finding-{version}-host.schema.json"
        out.write_text(json.dumps(body, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
