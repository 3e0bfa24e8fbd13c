"""Domain functions: the one path for every write.

Each validates with the same Form a page uses, writes in a transaction, and
raises InvalidInput (carrying the bound form, to show its errors) or
PermissionDenied. Views, and later the websocket consumer, only call these.
"""
