"""Where a version came from: the environment it was saved in, its lineage, and its training data's fingerprint.

Everything here is recorded at registration and never changes afterwards;
nothing here reads or writes the catalog or the store.
"""
