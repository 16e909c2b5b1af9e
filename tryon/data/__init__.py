"""Datasets: the VITON-layout reader and the synthetic try-on data generator."""
