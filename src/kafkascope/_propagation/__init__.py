"""What a record's headers carry: carrier, W3C context, pipeline stamp, retry lineage."""
