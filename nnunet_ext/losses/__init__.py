"""Losses from the papers, usable inside nnU-Net's DeepSupervisionWrapper."""
