"""Robustness evaluation of the matching methods (a face: may use signals, media and index)."""
