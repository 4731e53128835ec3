"""Pipeline graphs and their launchers."""

import logging

# Beam logs an apitools warning at import time; a CLI's stderr is for the user's errors only.
# `--verbose` turns logging back up.
logging.getLogger().setLevel(logging.ERROR)
