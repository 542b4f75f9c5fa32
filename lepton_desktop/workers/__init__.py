"""Worker process entry points (``lepton-desktop worker KIND ...``), Qt-free.

One module per job kind family: it turns a job row's arguments into calls of core's
feature code and records what the job changed (a deployment's state, a study's
status). :mod:`.kinds` maps each kind to its function, :mod:`.launch` builds the
command line that starts a worker. The GUI starts workers through QProcess; the CLI
runs the very same functions in the foreground. Either way the job's row in the
project file is the source of truth.
"""
