"""Deploying the service: the Kubernetes manifests and the autoscaling simulation."""
