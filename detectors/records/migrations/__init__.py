"""The Alembic script directory of the records store (driven by `detectors.records.migrate`).

Revision ids are four-digit numbers in order ("0001", "0002", …): `RecordStore.schema_version`
reports the applied one as an integer. A new revision: copy the newest file in ``versions/``,
give it the next number, change `detectors.records.tables` to match, and run the drift test
(``pytest tests/records/test_schema_drift.py``).
"""
