"""Re-export of every trainer we ship, for nnU-Net's ``nnUNet_extTrainer`` lookup (see ``nnunet_ext.lookup_hook``).

This folder must hold nothing else: nnU-Net imports each module here under its bare name.
"""

from nnunet_ext.trainers import *  # noqa: F401,F403  (every registered trainer: nnunet_ext.trainers.__all__)
