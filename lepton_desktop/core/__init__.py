"""The Qt-free core: everything the GUI, the CLI and the workers share."""
