"""The kernel every room shares: records, errors and durations; it imports nothing of ours."""
