"""The documentation's examples, run as written."""
