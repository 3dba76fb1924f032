"""Segmentation-assisted diagnosis: image-level labels per case (issue 4)."""
