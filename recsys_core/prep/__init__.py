"""Stages 4-6: merge titles and average duplicates, encode ids, interactions, item features, splits."""
