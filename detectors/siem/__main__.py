"""``python -m detectors.siem``: the same as ``otwatch-siem``."""

from detectors.siem_cli import main

raise SystemExit(main())
