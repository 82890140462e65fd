"""The NATS message bus: connection, subject names and JetStream streams."""
