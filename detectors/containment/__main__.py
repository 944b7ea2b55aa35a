"""``python -m detectors.containment``: the publisher's command (`detectors.containment_cli`)."""

from detectors.containment_cli import main

raise SystemExit(main())
