"""The Tuning tab: the study list, a study's charts, its trials table and a trial's
curves, the New Study dialog, the study poller, and the tab's operations (``ops.py``)."""
