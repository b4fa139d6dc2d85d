"""Time as an input: which night a run is for, what it may see, and how yesterday's lists did."""
