"""Moving an agency's mail in and out (R-LIFE-1: agencies adopt the server with years of mail).

- ``sources``: the CSV of accounts to migrate (file and line in every error).
- ``folders``: source folder names (modified UTF-7 already decoded, any delimiter) mapped to
  ours, special-use folders matched to ours (RFC 6154), pure.
- ``plan``: which source messages are still missing here, by Message-ID and size (pure), so a run
  resumed after an interruption or run again later copies each message once.
- ``imap``: copying one account from a live IMAP server through the store's one write primitive.
"""
