"""The same restore wired the way crhelper's README shows: ``CfnResource()`` with its defaults.

The directory is a Lambda code directory: handler string ``index.handler`` (see ``index.py``).
"""
