"""Checks of what users give our commands and trainers (input folders, model folders, checkpoints, names, output
folders), run before any work is spent. Each raises a :class:`~nnunet_ext.core.errors.UserInputError` whose message
names the file, the case and the fix; our commands print it as one line (``nnunet_ext.cli.user_errors``)."""
