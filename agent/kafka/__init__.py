"""Kafka plumbing for every otwatch process: one home, used by the agent and the classifier.

- `agent.kafka.settings`: `KafkaSettings` (servers, TLS, SASL, timeouts; each process names
  itself, `KafkaSettings.named`) and `TopicNames`, the defaults of every topic of the product.
- `agent.kafka.errors`: the delivery exception tree (`DeliveryError`, `KafkaSettingsError`,
  `BrokerTlsError`).
- `agent.kafka.startup`: start a client once or with retry, a TLS failure explained.
- `agent.kafka.tls_probe`: the probe behind that explanation.
- `agent.kafka.topics`: create the topics a process needs.
- `agent.kafka.client_logs`: aiokafka's per-attempt connection errors demoted to DEBUG.
- `agent.kafka.batching`: many messages sent as a few record batches (`Outbox`); per
  partition one after another across sends (`BatchChain`: per-key order when a batch fails
  for its age, idempotence off).
- `agent.kafka.consume`: the cancel-aware read loop, and "caught up".

Layering: imports `agent.runtime` and nothing else of ``agent``, and registers no Prometheus
metric: a process that uses it exports only its own (see `agent.contract`).
"""
