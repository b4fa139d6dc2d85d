"""recsys_core: the pipeline's library. Pure functions and small classes; no orchestrator imports."""

__version__ = "0.1.0"
