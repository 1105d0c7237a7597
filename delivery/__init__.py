"""Delivery of the log to Temporal: the dispatcher (the log is the outbox), the Temporal
gateway (connecting, signal-with-start, readiness, operator signals) and the payload
converter every leadflow client and worker uses."""
