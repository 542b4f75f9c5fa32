"""The Datasets tab: the dataset tree, one version's rows, columns, images or series,
the Import and Prepare dialogs, and the tab's operations (``ops.py``)."""
