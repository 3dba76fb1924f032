"""Networks and their building blocks, built from the ``conv_op`` of nnU-Net's plans (2D and 3D)."""
