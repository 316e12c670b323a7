"""Analysis of stored runs: comparisons, decay curves, cost and duration forecasts."""
