"""The runtime every training bundle carries (copied verbatim as ktrans_runtime/)."""
