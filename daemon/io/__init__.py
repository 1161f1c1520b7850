"""The edges: Kafka clients and outputs, Redis state stores, the HTTP probes, metrics, logs,
retries, and the downstream policy subscriber."""
