"""otwatch edge agent: watch controllers read-only, check changes against change control."""

__version__ = "0.1.0"
