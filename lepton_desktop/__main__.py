"""``python -m lepton_desktop`` runs the same entry point as ``lepton-desktop``."""

from lepton_desktop.cli import run

if __name__ == "__main__":
    run()
