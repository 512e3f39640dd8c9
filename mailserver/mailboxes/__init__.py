"""What the server does to its users' mailboxes on its own: quota limits and the warnings as a
mailbox fills (``quota``, R-QUOTA-1), the notices it writes into mailboxes (``notices``) and the
daily expiry of old mail (``retention``, R-QUOTA-2). The arithmetic is the pure ``quota`` package.
"""
