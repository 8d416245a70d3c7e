"""Turning common datasets into task files, as the competition did."""
