"""Provides the consumer worker (the thread that owns the Kafka consumer and the ledger) and its parts."""

from balance_tui.kafka.worker.consumer_setup import (
    generation_from_metadata,
    make_consumer_id,
    tune_garbage_collector,
)
from balance_tui.kafka.worker.worker import ConsumerWorker

__all__ = ["ConsumerWorker", "generation_from_metadata", "make_consumer_id", "tune_garbage_collector"]
