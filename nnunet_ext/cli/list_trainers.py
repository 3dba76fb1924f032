"""``nnunet_ext_trainers``: the registered trainers (:mod:`nnunet_ext.trainers.registry`), optionally only those
with a tag, one name per line; ``--markdown`` prints the README's trainer table."""

import argparse
from typing import Optional, Sequence

from nnunet_ext.trainers.registry import get_trainer, list_trainers, markdown_table


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="nnunet_ext_trainers",
                                     description="List the trainers nnunet_ext registers, or print the README's "
                                                 "trainer table.")
    parser.add_argument("--tag", action="append", default=None,
                        help="only trainers with this tag (repeat for several): a family (div_attention, lnet, "
                             "diagnosis, baseline), 2d, 3d, needs_segmentation_model, short, variant, deprecated")
    parser.add_argument("--exclude", action="append", default=[], help="leave out trainers with this tag")
    parser.add_argument("--markdown", action="store_true", help="print the README's trainer table instead")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown_table(), end="")
        return
    for name in list_trainers(args.tag, args.exclude):
        print(f"{name}\t{get_trainer(name).summary}")


if __name__ == "__main__":
    main()
