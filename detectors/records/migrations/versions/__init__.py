"""The records schema revisions, oldest first."""
