"""Image-wise evaluation beside nnU-Net's voxel-wise ``summary.json``: lesion presence scores per case or per axial
slice (``lesion_presence``) and per-case presence probabilities from ``--save_probabilities`` exports
(``presence_probabilities``)."""
