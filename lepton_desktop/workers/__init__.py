"""Worker process entry points (``lepton-desktop worker KIND ...``), Qt-free.

The GUI starts them through QProcess; the CLI runs the very same functions in the
foreground. Either way the job's row in the project file is the source of truth.
"""
