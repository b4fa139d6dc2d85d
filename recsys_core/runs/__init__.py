"""A run's identity and folder, what a failed run leaves and says, and the run report."""
