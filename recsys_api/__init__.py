"""HTTP API over the published lists: `recsys api` (FastAPI + uvicorn)."""
