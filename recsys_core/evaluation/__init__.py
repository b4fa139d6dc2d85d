"""Stage 8: ranking and rating metrics, evaluating a model against the baselines, the quality gate."""
