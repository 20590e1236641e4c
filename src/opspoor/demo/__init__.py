"""Benign generated demo and test material: images, videos, malformed files, and the demo case."""
