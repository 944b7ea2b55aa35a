"""``python -m detectors.containment``: the containment publisher (see `detectors.containment_cli`)."""

from detectors.containment_cli import main

raise SystemExit(main())
