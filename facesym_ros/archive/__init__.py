"""`facesym score-archive`: every bag, session bag and video of an archive scored on Dask, into one table.

inputs: what an INPUT names (folders searched, lists read) and each input's identity (path, size, mtime).
task: one input scored on a worker by the same calls as `score-bag`, `session --from-bag` and `score`.
store: the output folder: one part file per scored input (written atomically), the tables built from the parts.
engine: the Dask run: an embedded LocalCluster or a running scheduler, results written as they complete.
"""
