"""Segmentation-assisted diagnosis networks: a segmentation U-Net planned by nnU-Net plus a diagnosis branch.

Every diagnosis branch follows :class:`~nnunet_ext.architectures.diagnosis.diagnosis_branch.DiagnosisBranch`."""
