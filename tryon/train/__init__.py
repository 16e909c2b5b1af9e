"""Training: the shared loop and each network's trainer. Models never import this."""
