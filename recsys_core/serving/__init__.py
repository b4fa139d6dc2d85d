"""Stage 9 and serving: all-user top-N scoring in bounded blocks, portable scorers, similar
movies, the fallback for users the model cannot serve, and the HTTP service's logic without HTTP
(the per-run movie catalogue, the per-user table index, fold-in). ``recsys_api`` wraps the latter
in FastAPI; nothing here imports Prefect or a web stack.
"""
