"""The folder that nnU-Net's nnUNet_extTrainer lookup scans (see nnunet_ext.lookup_hook)."""
