"""The command line: ``lepton-desktop`` (DESIGN §1, §4).

- ``entry``: ``main()`` and ``build_parser()``, the parser assembled from the groups;
- one module per command group, each declaring its subcommands as ``COMMANDS``
  (arguments and ``cmd_*`` handlers): ``datasets`` (new, info, import, prep, demo),
  ``training`` (train, models), ``tuning`` (tune), ``serving`` (serve), ``export``
  (export), ``worker`` (worker: run one queued job);
- ``common``: what the commands share (opening a project, one JSON object, running a
  queued job in the foreground), the only module that calls into the job machinery;
- ``progress``: the terminal progress bar.

``main`` (parse, dispatch, return the exit status) and ``run`` (``main``, then end the
process promptly: the console script's and ``python -m lepton_desktop``'s entry) are
re-exported here (``lepton_desktop.cli:run``).
The module defining it is called ``entry``, not ``main``, so that this attribute
never hides a submodule of the same name.
"""

from lepton_desktop.cli.entry import main, run

__all__ = ["main", "run"]
