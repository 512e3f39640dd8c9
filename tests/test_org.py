"""Organisation model (storage/sql/org.py) on every backend: units, delegation, login as a unit,
shared namespace, audit, groups (R-BOX-2, R-BOX-4, R-ACC-1)."""

from __future__ import annotations

import pytest

from storage.api import AccountKind, AccountState, DeliveryTarget
from storage.errors import Exists, Invalid, NoPerm, NotFound
from storage.api import ALL_RIGHTS, SHARED_PREFIX, Organisation, Right, SendPolicy, parse_rights
from storage.sql import SqlStore

pytestmark = pytest.mark.requirement("R-BOX-2")

D = "example.gov.vn"
MSG = b"From: a@example.gov.vn\r\nTo: g@example.gov.vn\r\nSubject: hop\r\n\r\nbody\r\n"


@pytest.fixture
def store(store_url, tmp_path):
    store = SqlStore(store_url, blob_dir=tmp_path / "blobs")
    store.accounts.add_domain(D)
    store.accounts.add_domain("other.gov.vn")
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def org(store):
    return store.org


def person(org: Organisation, local: str, name: str = "Nguyễn Văn An"):
    return org.accounts.create_account(f"{local}@{D}", name, "hash", state=AccountState.ACTIVE)


def tree(org: Organisation):
    head = person(org, "head", "Trần Thị Bình")
    org.add_unit("Bộ Khoa học và Công nghệ", "bkhcn", f"bkhcn@{D}", "h0")
    vp = org.add_unit("Văn phòng", "vp", f"vanphong@{D}", "h1", parent="bkhcn", head_account_id=head.id)
    return head, vp


def test_unit_tree_has_a_unit_mailbox_with_default_folders_and_a_path(org, store):
    head, vp = tree(org)
    assert vp.account.kind is AccountKind.UNIT and vp.account.address == f"vanphong@{D}"
    assert vp.path == ("Bộ Khoa học và Công nghệ", "Văn phòng")
    assert vp.shared_name == f"{SHARED_PREFIX}/Bộ Khoa học và Công nghệ/Văn phòng"
    assert vp.head.id == head.id
    assert [f.name for f in store.folders.list_folders(vp.account.id)][0] == "INBOX"
    assert [u.code for u in org.list_units()] == ["bkhcn", "vp"]
    assert org.get_unit("VP").id == vp.id and org.get_unit(f"vanphong@{D}").id == vp.id


def test_unit_code_and_address_collisions_create_nothing(org):
    tree(org)
    before = len(org.accounts.list_accounts())
    with pytest.raises(Exists):
        org.add_unit("Khác", "vp", f"khac@{D}", "h")
    with pytest.raises(Exists):
        org.add_unit("Khác", "khac", f"vanphong@{D}", "h")
    with pytest.raises(NotFound):
        org.add_unit("Khác", "khac", f"khac@{D}", "h", parent="nope")
    with pytest.raises(Invalid):
        org.add_unit("Khác", "khac", "khac@nowhere.example", "h")
    assert len(org.accounts.list_accounts()) == before


def test_unit_may_have_several_addresses_that_all_deliver_to_it(org):
    _, vp = tree(org)
    org.add_address(vp.account.id, f"vp@{D}")
    assert org.accounts.get_account(f"VP@{D}").id == vp.account.id
    assert org.get_unit("vp").addresses == (f"vanphong@{D}", f"vp@{D}")
    with pytest.raises(Exists):
        org.add_address(vp.account.id, f"head@{D}")


def test_head_has_all_rights_delegate_has_granted_ones_others_none(org):
    head, vp = tree(org)
    clerk, stranger = person(org, "clerk"), person(org, "stranger")
    org.delegate(vp.account.id, clerk.id, {Right.READ, Right.WRITE_FLAGS}, granted_by=head.id)
    assert org.rights_for(head.id, vp.account.id) == ALL_RIGHTS
    assert org.rights_for(clerk.id, vp.account.id) == {Right.READ, Right.WRITE_FLAGS}
    assert org.rights_for(stranger.id, vp.account.id) == frozenset()
    with pytest.raises(NoPerm):
        org.check_right(clerk.id, vp.account.id, Right.DELETE)
    org.check_right(clerk.id, vp.account.id, Right.READ)


def test_only_the_head_or_the_operator_may_delegate(org):
    head, vp = tree(org)
    clerk, other = person(org, "clerk"), person(org, "other")
    org.delegate(vp.account.id, clerk.id, {Right.READ}, granted_by=head.id)
    with pytest.raises(NoPerm):
        org.delegate(vp.account.id, other.id, {Right.READ}, granted_by=clerk.id)
    org.delegate(vp.account.id, other.id, parse_rights("read,send-as"))  # operator
    assert [d.delegate.address for d in org.delegations(vp.account.id)] == [f"clerk@{D}", f"other@{D}"]
    with pytest.raises(NoPerm):
        org.undelegate(vp.account.id, other.id, revoked_by=clerk.id)
    org.undelegate(vp.account.id, other.id, revoked_by=head.id)
    assert org.rights_for(other.id, vp.account.id) == frozenset()
    with pytest.raises(NotFound):
        org.undelegate(vp.account.id, other.id)


def test_parse_rights_refuses_unknown_names():
    assert parse_rights("all") == ALL_RIGHTS
    assert parse_rights("read, delete") == {Right.READ, Right.DELETE}
    with pytest.raises(Invalid):
        parse_rights("read,admin")
    with pytest.raises(Invalid):
        parse_rights("")


def test_resolve_login_gives_the_unit_to_a_reading_delegate_and_records_it(org):
    head, vp = tree(org)
    clerk, writer_only = person(org, "clerk"), person(org, "wo")
    org.delegate(vp.account.id, clerk.id, {Right.READ, Right.SEND_AS})
    org.delegate(vp.account.id, writer_only.id, {Right.SEND_AS})
    account, rights = org.resolve_login(clerk, f"VanPhong@{D}", via="imap")
    assert account.id == vp.account.id and rights == {Right.READ, Right.SEND_AS}
    entry = org.audit_log(vp.account.id)[0]
    assert (entry.actor, entry.mailbox, entry.action, entry.detail) == (f"clerk@{D}", f"vanphong@{D}", "login", "imap")
    assert org.resolve_login(head, f"vanphong@{D}")[1] == ALL_RIGHTS
    assert org.resolve_login(clerk, "")[0].id == clerk.id
    assert org.resolve_login(clerk, f"clerk@{D}")[0].id == clerk.id


@pytest.mark.parametrize("target", ["wo", "head", "nobody", "g"])
def test_resolve_login_refuses_everything_else_alike(org, target):
    _, vp = tree(org)
    clerk, wo = person(org, "clerk"), person(org, "wo")
    org.delegate(vp.account.id, wo.id, {Right.SEND_AS})
    org.add_group(f"g@{D}", "Nhóm")
    with pytest.raises(NoPerm):
        org.resolve_login(wo if target != "wo" else clerk, f"{target}@{D}" if target != "wo" else f"wo@{D}")
    with pytest.raises(NoPerm):  # SEND_AS without READ is not a login
        org.resolve_login(wo, f"vanphong@{D}")


def test_locked_unit_mailbox_cannot_be_entered_by_delegates(org):
    _, vp = tree(org)
    clerk = person(org, "clerk")
    org.delegate(vp.account.id, clerk.id, ALL_RIGHTS)
    org.accounts.set_state(vp.account.id, AccountState.LOCKED)
    with pytest.raises(NoPerm):
        org.resolve_login(clerk, f"vanphong@{D}")
    assert org.mailboxes_visible_to(clerk.id) == []


def test_mailboxes_visible_to_lists_headed_and_delegated_units_with_paths(org):
    head, vp = tree(org)
    clerk = person(org, "clerk")
    kt = org.add_unit("Phòng Kế toán", "kt", f"ketoan@{D}", "h", parent="vp", head_account_id=clerk.id)
    org.delegate(vp.account.id, clerk.id, {Right.READ})
    seen = org.mailboxes_visible_to(clerk.id)
    assert [(s.account.id, s.path, s.rights) for s in seen] == [
        (vp.account.id, "Đơn vị/Bộ Khoa học và Công nghệ/Văn phòng", frozenset({Right.READ})),
        (kt.account.id, "Đơn vị/Bộ Khoa học và Công nghệ/Văn phòng/Phòng Kế toán", ALL_RIGHTS),
    ]
    assert [s.account.id for s in org.mailboxes_visible_to(head.id)] == [vp.account.id]
    assert org.mailboxes_visible_to(person(org, "x").id) == []


def test_may_send_as_own_addresses_and_units_with_send_as_only(org):
    head, vp = tree(org)
    clerk, reader = person(org, "clerk"), person(org, "reader")
    org.delegate(vp.account.id, clerk.id, {Right.SEND_AS})
    org.delegate(vp.account.id, reader.id, {Right.READ})
    assert org.may_send_as(clerk.id, f"clerk@{D}")
    assert org.may_send_as(clerk.id, f"vanphong@{D}")
    assert org.may_send_as(head.id, f"vanphong@{D}")
    assert not org.may_send_as(reader.id, f"vanphong@{D}")
    assert not org.may_send_as(clerk.id, f"reader@{D}")
    assert not org.may_send_as(clerk.id, f"nobody@{D}")


def test_record_access_keeps_who_when_what_and_outlives_the_account(org):
    _, vp = tree(org)
    clerk = person(org, "clerk")
    org.record_access(clerk.id, vp.account.id, "SELECT", "INBOX")
    org.accounts.delete_account(clerk.id)
    entry = org.audit_log(vp.account.id)[0]
    assert (entry.actor, entry.action, entry.detail) == (f"clerk@{D}", "select", "INBOX")
    assert entry.at.tzinfo is not None
    with pytest.raises(Invalid):
        org.record_access(None, vp.account.id, " ")


def test_insert_account_matches_store_create_account(org, store):
    """Units and imports create accounts inside their own transaction; same result as the Store."""
    a = org.accounts.create_account(f"p@{D}", "P", "h")
    u = org.add_unit("P", "p", f"u@{D}", "h").account
    assert [(f.name, f.special_use, f.subscribed) for f in store.folders.list_folders(a.id)] == \
        [(f.name, f.special_use, f.subscribed) for f in store.folders.list_folders(u.id)]
    for field in ("display_name", "password_hash", "used_bytes", "used_messages", "quota_bytes", "last_login_at"):
        assert getattr(a, field) == getattr(u, field)
    assert u.password_changed_at is not None and u.state is AccountState.MUST_CHANGE_PASSWORD


# -- groups (R-BOX-4) -----------------------------------------------------------------------------

def test_nested_groups_expand_once_each_member_once(org):
    a, b, c = (person(org, x) for x in "abc")
    outer = org.add_group(f"all@{D}", "Tất cả")
    inner = org.add_group(f"team@{D}", "Tổ")
    inner2 = org.add_group(f"team2@{D}", "Tổ 2")
    for g, member in ((outer, a), (outer, inner.account), (outer, inner2.account), (inner, b), (inner, a),
                      (inner2, c), (inner2, inner.account)):
        org.add_member(g.account.id, member.id)
    assert sorted(org.expand_recipients(f"all@{D}")) == sorted([a.id, b.id, c.id])
    assert len(org.expand_recipients(f"all@{D}")) == 3
    assert [x.id for x in org.expand_accounts(outer.account.id)] == org.expand_recipients(f"all@{D}")


def test_group_loop_is_refused_with_its_path(org):
    g1, g2, g3 = (org.add_group(f"g{i}@{D}", f"G{i}") for i in (1, 2, 3))
    org.add_member(g1.account.id, g2.account.id)
    org.add_member(g2.account.id, g3.account.id)
    with pytest.raises(Invalid) as err:
        org.add_member(g3.account.id, g1.account.id)
    assert f"g3@{D} → g1@{D} → g2@{D} → g3@{D}" in str(err.value)
    with pytest.raises(Invalid, match="loop"):
        org.add_member(g1.account.id, g1.account.id)
    with pytest.raises(Exists):
        org.add_member(g1.account.id, g2.account.id)


def test_empty_group_and_revoked_members_expand_to_nothing(org):
    g = org.add_group(f"empty@{D}", "Trống")
    assert org.expand_recipients(f"empty@{D}") == []
    a = person(org, "a")
    org.add_member(g.account.id, a.id)
    org.accounts.set_state(a.id, AccountState.REVOKED)
    assert org.expand_recipients(f"empty@{D}") == []
    assert org.expand_recipients(f"a@{D}") == []  # not a group


def test_removed_member_no_longer_receives(org):
    g = org.add_group(f"g@{D}", "G")
    a, b = person(org, "a"), person(org, "b")
    org.add_member(g.account.id, a.id)
    org.add_member(g.account.id, b.id)
    org.remove_member(g.account.id, a.id)
    assert org.expand_recipients(g.account.id) == [b.id]
    assert [m.address for m in org.get_group(f"g@{D}").members] == [f"b@{D}"]
    with pytest.raises(NotFound):
        org.remove_member(g.account.id, a.id)


@pytest.mark.parametrize("policy,sender,allowed", [
    (SendPolicy.ANYONE, "x@gmail.com", True),
    (SendPolicy.ANYONE, "", True),
    (SendPolicy.DOMAINS, "x@gmail.com", False),
    (SendPolicy.DOMAINS, f"stranger@{D}", True),
    (SendPolicy.DOMAINS, "anyone@OTHER.gov.vn", True),
    (SendPolicy.DOMAINS, "", False),
    (SendPolicy.MEMBERS, f"stranger@{D}", False),
    (SendPolicy.MEMBERS, f"A@{D}", True),
    (SendPolicy.MEMBERS, f"deep@{D}", True),
    (SendPolicy.MEMBERS, "x@gmail.com", False),
])
def test_send_policy(org, policy, sender, allowed):
    g = org.add_group(f"g@{D}", "G", send_policy=policy)
    sub = org.add_group(f"sub@{D}", "Sub")
    person(org, "stranger")
    org.add_member(g.account.id, person(org, "a").id)
    org.add_member(g.account.id, sub.account.id)
    org.add_member(sub.account.id, person(org, "deep").id)
    assert org.may_send_to_group(f"g@{D}", sender) is allowed


def test_send_policy_can_change(org):
    g = org.add_group(f"g@{D}", "G")
    assert org.get_group(g.account.id).send_policy is SendPolicy.DOMAINS
    org.set_send_policy(g.account.id, SendPolicy.ANYONE)
    assert org.may_send_to_group(g.account.id, "x@gmail.com")


def test_group_fanout_shares_one_body_and_charges_each_member(org, store):
    """R-BOX-4 through the store: one blob, a row per member with its own uid and quota charge."""
    g = org.add_group(f"g@{D}", "G")
    members = [person(org, f"m{i}") for i in range(50)]
    for x in members:
        org.add_member(g.account.id, x.id)
    blob = store.messages.put_blob(MSG)
    outcomes = store.messages.deliver(blob, [DeliveryTarget(i) for i in org.expand_recipients(f"g@{D}")])
    assert len(outcomes) == 50 and all(o.ok for o in outcomes)
    for x in members:
        acc = org.accounts.get_account_by_id(x.id)
        assert (acc.used_messages, acc.used_bytes) == (1, len(MSG))
        info = store.messages.fetch(store.folders.get_folder(x.id, "INBOX").id, [1])[0]
        assert info.blob == blob.sha256
    from sqlalchemy import text
    with store.core.reading() as conn:
        assert conn.scalar(text("select count(*) from blobs")) == 1


def test_add_members_is_all_or_nothing_and_checks_loops_between_new_members(org):
    g = org.add_group(f"g@{D}", "G")
    sub = org.add_group(f"sub@{D}", "Sub")
    a, b = person(org, "a"), person(org, "b")
    org.add_member(sub.account.id, g.account.id)
    with pytest.raises(Invalid, match="loop"):
        org.add_members(g.account.id, [a.id, b.id, sub.account.id])
    assert org.get_group(g.account.id).members == ()
    org.add_members(g.account.id, [a.id, b.id, a.id])
    assert org.expand_recipients(g.account.id) == [a.id, b.id]
    with pytest.raises(Exists):
        org.add_members(g.account.id, [b.id])
    assert f"a@{D}, b@{D}" in org.audit_log(g.account.id)[0].detail
