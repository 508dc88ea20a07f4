"""Real servers for integration tests, started on loopback ports with temporary state."""
