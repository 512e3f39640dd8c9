"""`unit rename|move|remove` (R-LIFE-1: units renamed, merged, dissolved): audited, a move under
itself refused, a unit with people or units in it not removed, a mailbox holding mail kept unless
the operator says otherwise."""

from __future__ import annotations

PW = "Mk!12345678x"


def _refused(result, fragment: str) -> None:
    assert result.returncode == 1 and fragment in result.stderr and "Traceback" not in result.stderr, result


def test_rename_move_and_remove(make_server):
    srv = make_server(start=False)
    d = srv.domain
    srv.cli("unit", "add", "Sở Nội vụ", "--code", "snv", "--address", f"snv@{d}")
    srv.cli("unit", "add", "Phòng Tổ chức", "--code", "tc", "--parent", "snv", "--address", f"tochuc@{d}")
    srv.cli("unit", "add", "Văn phòng Sở", "--code", "vp", "--address", f"vanphong@{d}")

    assert srv.cli("unit", "rename", "tc", "Phòng Tổ chức cán bộ").stdout == "tc: Phòng Tổ chức cán bộ (Sở Nội vụ / Phòng Tổ chức cán bộ)\n"
    assert srv.cli("unit", "move", f"vanphong@{d}", "--parent", "snv").stdout == "vp: Sở Nội vụ / Văn phòng Sở\n"
    _refused(srv.cli("unit", "move", "snv", "--parent", "tc", check=False), "cannot move under itself")
    assert srv.cli("unit", "move", "tc").stdout == "tc: Phòng Tổ chức cán bộ\n"

    srv.cli("account", "add", "Nguyễn Văn An", "--unit", "vp", "--password", PW)
    _refused(srv.cli("unit", "remove", "vp", "--yes", check=False), "still has 1 member(s)")
    _refused(srv.cli("unit", "remove", "snv", "--yes", check=False), "still has units below it: vp")
    srv.cli("account", "move", f"annv@{d}", "--unit", "tc")
    assert srv.cli("unit", "remove", "vp", "--yes").stdout == f"vp: removed with its mailbox vanphong@{d}\n"
    _refused(srv.cli("unit", "show", "vp", check=False), "no unit vp")

    store = srv.open_store()
    try:
        from storage.api import DeliveryTarget

        tc = store.org.get_unit("tc")
        blob = store.messages.put_blob("Subject: Công văn\r\n\r\nNội dung.\r\n".encode())
        store.messages.deliver(blob, [DeliveryTarget(tc.account.id, "INBOX", quota_limit=None)])
        actions = [(e.action, e.detail) for e in store.org.audit_log(None, limit=50)]
    finally:
        store.close()
    assert ("unit-rename", "Phòng Tổ chức -> Phòng Tổ chức cán bộ") in actions
    assert ("unit-move", "parent - -> snv") in actions and ("unit-move", "parent snv -> -") in actions
    assert ("unit-remove", "code=vp name=Văn phòng Sở") in actions

    srv.cli("account", "move", f"annv@{d}", "--unit", "snv")
    _refused(srv.cli("unit", "remove", "tc", check=False), "holds 1 message(s)")
    _refused(srv.cli("unit", "remove", "tc", "--delete-mail", check=False), "add --yes to confirm")  # no terminal
    assert "removed" in srv.cli("unit", "remove", "tc", "--delete-mail", "--yes").stdout
