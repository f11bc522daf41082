"""The training runtime shared by every bundle: data, metrics, callbacks, files, report."""
