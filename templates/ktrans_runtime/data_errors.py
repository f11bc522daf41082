"""The one error type of the data sources (image folders, CSV tables, .npy directories).

A `DataError` is a problem with the user's data, reported in one line with exit code 1,
never a traceback: the message names the file, the array or column, the row, and what
was expected (shape, dtype, type). The training loop catches it as it catches its own
errors; nothing trains on data that raised one.
"""

from __future__ import annotations


class DataError(Exception):
    """Bad or unreadable training data; the message says where and what was expected."""
