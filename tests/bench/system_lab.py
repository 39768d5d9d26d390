"""tests/system/lab.py for the benchmark modules: the bench scripts run as
`python3 tests/bench/<script>.py`, so tests/system is put on sys.path here, once, and every
benchmark module takes lab from this one (`from system_lab import lab`).

Python 3 standard library only.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "system"))

import lab  # noqa: E402,F401  (tests/system/lab.py)

__all__ = ["lab"]
