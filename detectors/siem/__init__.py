"""The SIEM relay (``otwatch-siem``): alerts to a syslog collector as CEF, at least once.

- `relay.SiemRelay`: reads the alerts topic in its own group, commits after the collector
  took each batch; `relay.syslog_frame` is one alert as the bytes sent;
- `sink.SyslogSink`: the one connection to the collector (TLS or TCP), reconnected with capped
  backoff, one log line per outage;
- `target.collector_for`: the ``siem`` config section as a `sink.Collector`.

Why a relay and not a send from the classifier: the classifier's offset commit must never wait
on a SIEM, and a collector outage must not lose alerts. The alerts topic is already durable and
ordered per controller; a separate consumer group turns it into the SIEM's queue, with its own
pace, its own outage, and at-least-once delivery, at no cost to the classifier's hot path.
"""

from detectors.siem.relay import SiemRelay, syslog_frame
from detectors.siem.sink import Collector, CollectorGone, SyslogSink
from detectors.siem.target import collector_for

__all__ = ["Collector", "CollectorGone", "SiemRelay", "SyslogSink", "collector_for",
           "syslog_frame"]
