"""Toy CLIP trainer and sample-library maker for tests, demos and the self-test."""
