"""posebank."""
