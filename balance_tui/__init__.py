"""balance-tui: watch a Kafka consumer group scale and rebalance on a live bank balance service."""

__version__ = "0.1.0"
