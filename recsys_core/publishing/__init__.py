"""Stage 10: the published table and manifest, the stage/commit steps, retention of old nights."""
