"""The event log: impressions, clicks, conversions, dwell."""
