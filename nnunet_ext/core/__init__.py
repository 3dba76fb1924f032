"""The lowest layer: what every other part of nnunet_ext may use (errors for users, unwrapping nnU-Net's network
wrappers, the one weights check). It imports torch at most, never nnU-Net and never another part of the package."""
