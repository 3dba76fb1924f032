"""Dataset builders that write nnU-Net v2 raw datasets (synthetic data and converters for real samples)."""
