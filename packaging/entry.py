"""The frozen app's entry point: the same ``cli.run()`` as ``lepton-desktop``.

One executable serves the GUI, every headless command and ``worker ...`` (the GUI
starts its workers through this very executable, see ``core.system.launch.cli_argv``).
"""

from __future__ import annotations

import multiprocessing

from lepton_desktop.cli import run

if __name__ == "__main__":
    # A frozen child started with the "spawn" method (a DataLoader or a process pool
    # asking for it) re-runs this executable; freeze_support lets it act as the
    # child instead of starting the app a second time.
    multiprocessing.freeze_support()
    run()
