"""Serving logic without HTTP: the per-run movie catalogue, the per-user table index, fold-in.

``recsys_api`` wraps these in a FastAPI service; nothing here imports Prefect or a web stack.
"""
