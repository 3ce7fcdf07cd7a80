"""Explanations stage: Grad-CAM maps of the CNN scores and their similarity (seed 000)."""
