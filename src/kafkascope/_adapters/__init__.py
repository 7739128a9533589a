"""Reading the Kafka clients' objects (records, consumers): never wrapping them."""
