"""Detection: daily series from the store, robust seasonal baselines, and explained anomalies."""
