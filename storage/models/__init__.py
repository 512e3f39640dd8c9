"""Every table of the mail store, in one package on one ``Base`` (so foreign keys resolve and
Alembic sees the whole schema). Internal to storage/: front ends never see these rows.

- ``core``: domains, accounts, addresses, folders, blobs, blob_meta, messages, expunged (the
  tables the search index and FETCH cache use are created by their migrations, 0004 and 0008);
- ``org``: units, delegations, groups, profiles, audit (branch "org", 0003_organisation);
- ``queue``: the outbound queue (branch "outbound", 0002_outbound);
- ``usage``: ``quota_state`` (branch "quota", 0005_quota);
- ``lifecycle``: ``account_lifecycle`` (branch "lifecycle", 0007_lifecycle);
- ``subscriptions``: ``subscriptions`` (branch "subscriptions", 0010_subscriptions);
- ``guard``: ``login_failures`` (branch "guard", 0012_login_failures);
- ``held``: ``held_messages`` (branch "guard_held", 0017_guard_held).
- ``sieve``: ``sieve_scripts``, ``sieve_forwards``, ``sieve_vacation`` (branch "sieve", 0014_sieve_scripts).
- ``passwords``: ``password_history``, ``address_expiry`` (branch "password_history", 0020_migrate_password_history).

``from storage import models as m`` then ``m.Account``, ``m.OrgUnit``, ``m.quota_state``.
"""

from storage.models.guard import login_failures  # noqa: F401
from storage.models.held import held_messages  # noqa: F401
from storage.models.core import NAMING, Account, Address, Base, Blob, BlobMeta, Domain, Expunged, Folder, Message  # noqa: F401
from storage.models.lifecycle import account_lifecycle  # noqa: F401
from storage.models.passwords import address_expiry, password_history  # noqa: F401
from storage.models.org import AccountProfile, OrgAudit, OrgDelegation, OrgGroup, OrgGroupMember, OrgUnit  # noqa: F401
from storage.models.queue import MtaStsPolicy, OutboundMessage, OutboundRecipient, TlsReportCount  # noqa: F401
from storage.models.sieve import sieve_forwards, sieve_scripts, sieve_vacation  # noqa: F401
from storage.models.subscriptions import subscriptions  # noqa: F401
from storage.models.usage import quota_state  # noqa: F401
from storage.models.activity import usage_days  # noqa: F401
from storage.models.announcements import announcements  # noqa: F401
