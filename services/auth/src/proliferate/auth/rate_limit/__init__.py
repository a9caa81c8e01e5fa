"""Fixed-window rate limits shared by every replica through `rate_limit_buckets`."""
