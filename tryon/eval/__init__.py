"""Evaluation: metrics, baselines and the `tryon eval` runner. Models never import this."""
