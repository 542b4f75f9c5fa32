"""The Serving tab: the server panel, the model picker and loaded models, request
charts and the live request log, client snippets, the export dialog, the poller that
reads the deployment and its log, and the tab's operations (``ops.py``)."""
