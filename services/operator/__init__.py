"""Operators' tools: stream/timer status from Redis, `nudge status`, the live status page and
the refresher that keeps the Prometheus gauges current."""
