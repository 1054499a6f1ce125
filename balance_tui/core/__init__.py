"""The pure core: transactions, ledger rules and assignment bookkeeping. No Kafka, no Textual."""
