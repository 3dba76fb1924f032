"""nnunet_ext: attention modules and segmentation-assisted diagnosis for nnU-Net v2.

Importing this package is cheap on purpose (it imports nothing heavy): ``nnunet_ext.lookup_hook`` runs at every
interpreter start through the ``nnunet_ext_lookup.pth`` file that the package installs.
"""

__version__ = "0.1.0"
