"""`make bench`: latency of spoken turns through the real stack."""
