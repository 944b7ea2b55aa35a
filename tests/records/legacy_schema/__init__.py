"""The records schema of the releases before Alembic, as they shipped it (SQL migrations 0001
and 0002 per dialect), and a builder of such a database for the upgrade tests."""
