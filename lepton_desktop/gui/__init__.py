"""The Qt GUI: the only package that imports PySide6 and pyqtgraph.

Everything here runs on the GUI thread except the functions handed to
:class:`~lepton_desktop.gui.session.ProjectSession` (the DB thread) and to its
background pool; their results come back through a Qt signal.
"""
