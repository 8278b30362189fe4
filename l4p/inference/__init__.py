"""Pieces of the predictor: input conversion, windows and stitching, resizing back."""
