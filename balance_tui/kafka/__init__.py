"""The thin Kafka edge: embedded broker, admin, producer and the consumer worker."""
