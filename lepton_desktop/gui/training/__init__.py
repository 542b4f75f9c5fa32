"""The Training tab: the new-run form, live charts, the runs table and a run's
evaluation, the poller that feeds them, and the tab's operations (``ops.py``)."""
