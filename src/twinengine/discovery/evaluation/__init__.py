"""Offline evaluation: ranking metrics and train/test splits (pure numpy)."""
