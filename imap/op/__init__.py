"""IMAP command handlers, one module per command group; imap/commands.py maps names to them."""
