"""Installs the ``nnunet_ext`` package and ``nnunet_ext_lookup.pth``, the one-line hook that lets nnU-Net's trainer
lookup find our trainers with no configuration (see ``nnunet_ext/lookup_hook.py``)."""

import os

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

LOOKUP_HOOK = "nnunet_ext_lookup.pth"


class BuildWithLookupHook(build_py):
    """Also places the ``.pth`` hook at the root of the wheel, i.e. directly in site-packages."""

    def run(self):
        super().run()
        self.copy_file(LOOKUP_HOOK, os.path.join(self.build_lib, LOOKUP_HOOK), preserve_mode=0)


setup(
    name="nnunet_ext",
    version="0.1.0",
    description="Attention modules and segmentation-assisted diagnosis for nnU-Net v2, as a plugin",
    long_description=open("README.md", encoding="utf-8").read() if os.path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["nnunet_ext", "nnunet_ext.*"]),
    install_requires=[
        "nnunetv2>=2.8.1,<2.9",
        "dynamic-network-architectures>=0.4.4,<0.5",
        "torch>=2.1",
        "SimpleITK>=2.2",
        "batchgenerators>=0.25",
        "numpy>=1.24",
        "scikit-learn>=1.2",
        "matplotlib>=3.6",
    ],
    extras_require={"test": ["pytest>=7", "import-linter>=2.1"]},
    cmdclass={"build_py": BuildWithLookupHook},
    entry_points={"console_scripts": [
        "nnunet_ext_demo=nnunet_ext.cli.demo:main",
        "nnunet_ext_predict=nnunet_ext.cli.predict:main",
        "nnunet_ext_presence=nnunet_ext.cli.presence:main",
        "nnunet_ext_lesion_presence=nnunet_ext.cli.lesion_presence:main",
        "nnunet_ext_synthetic_dataset=nnunet_ext.cli.synthetic_dataset:main",
        "nnunet_ext_brats2013=nnunet_ext.cli.brats2013_dataset:main",
        "nnunet_ext_brats_slices=nnunet_ext.cli.brats2013_slices:main",
        "nnunet_ext_diagnosis_init=nnunet_ext.cli.diagnosis_init:main",
        "nnunet_ext_trainers=nnunet_ext.cli.list_trainers:main",
        "nnunet_ext_transformer_init=nnunet_ext.cli.transformer_init:main",
        "nnunet_ext_compress=nnunet_ext.cli.compress:main",
        "nnunet_ext_attention=nnunet_ext.cli.attention:main",
        "nnunet_ext_crops=nnunet_ext.cli.crops:main",
        "nnunet_ext_coarse_to_fine=nnunet_ext.cli.coarse_to_fine:main",
    ]},
)
