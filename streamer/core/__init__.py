"""The kernel every room shares: records, errors, durations and thread names; it imports
nothing of ours."""
