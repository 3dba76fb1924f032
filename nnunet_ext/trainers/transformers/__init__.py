"""The hybrid transformer trainers (TransUNet, UNETR, CATS) and what they share: their optimiser, the patch
adjustment for token grids, and deep supervision off where the network has no planned decoder."""
