"""The Monitoring tab: traffic, latency, errors, predictions and live quality per model."""
