"""``nnunet_ext_diagnosis_init``: write the diagnosis init weights file that nnU-Net's ``-pretrained_weights``
accepts for a diagnosis trainer (:mod:`nnunet_ext.diagnosis.init_weights`)::

    nnunet_ext_diagnosis_init -d 504 -c 2d -tr SiANDiagnosisTrainer -i <seg model>/fold_0/checkpoint_final.pth -o init.pth
    nnUNetv2_train 504 2d 0 -tr SiANDiagnosisTrainer -pretrained_weights init.pth
"""

import argparse
from typing import Optional, Sequence

from nnunet_ext.diagnosis.init_weights import write_diagnosis_init_weights

DESCRIPTION = ("Write a weights file for nnU-Net's -pretrained_weights that starts a diagnosis trainer from a trained "
               "segmentation model (segmentation part filled by name, diagnosis branch freshly initialised).")


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="nnunet_ext_diagnosis_init", description=DESCRIPTION)
    parser.add_argument("-d", required=True, help="dataset name or id")
    parser.add_argument("-c", required=True, help="configuration, e.g. 2d")
    parser.add_argument("-tr", required=True, help="the diagnosis trainer to initialise")
    parser.add_argument("-p", default="nnUNetPlans", help="plans identifier (default nnUNetPlans)")
    parser.add_argument("-i", required=True, help="the segmentation model's checkpoint (fold_X/checkpoint_final.pth)")
    parser.add_argument("-o", required=True, help="the weights file to write (for -pretrained_weights)")
    args = parser.parse_args(argv)
    print(write_diagnosis_init_weights(args.d, args.c, args.tr, args.i, args.o, args.p))


if __name__ == "__main__":
    main()
