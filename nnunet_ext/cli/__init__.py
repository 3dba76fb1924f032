"""The command-line entry points of nnunet_ext (the top layer: each parses its arguments and calls the package).

``setup.py`` installs them as console scripts; ``python -m nnunet_ext.cli.<module>`` runs any of them too. The
helper :mod:`nnunet_ext.cli.nnunet_commands` runs nnU-Net's own commands in subprocesses (demo, benchmarks, tests).
"""
