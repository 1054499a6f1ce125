"""The thin Kafka edge: embedded broker, admin, producer and the consumer worker."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException


def error_reason(error: KafkaException | KafkaError | object) -> str:
    """librdkafka's own words for an error: a KafkaException's KafkaError, a KafkaError, or anything else."""
    first = error.args[0] if isinstance(error, KafkaException) and error.args else error
    return first.str() if isinstance(first, KafkaError) else str(first)
