"""`mailserver unit …` and `mailserver group …` in subprocesses, on both backends: exit 0 on
success, 1 refused with one line, 2 usage; never a traceback."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from storage.api import Right

PW = "Mk!12345678x"


@pytest.fixture
def srv(make_server):
    s = make_server(start=False)
    for local, name in (("head", "Trần Thị Bình"), ("new", "Phạm Văn Mới"), ("clerk", "Lê Văn Thư"),
                        ("a", "Nguyễn Văn An"), ("b", "Đỗ Thị Bé")):
        s.add_account(f"{local}@{s.domain}", PW, name=name)
    return s


def _value(output: str, key: str) -> str:
    return next(line.split(": ", 1)[1] for line in output.splitlines() if line.startswith(key + ": "))


def _refused(result, *fragments: str) -> None:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr and all(f in result.stderr for f in fragments), result.stderr


def test_unit_lifecycle_add_delegate_handover(srv):
    d = srv.domain
    srv.cli("unit", "add", "Bộ Tư pháp", "--code", "btp")
    added = srv.cli("unit", "add", "Văn phòng Bộ", "--code", "vp", "--parent", "btp", "--head", f"head@{d}")
    assert _value(added.stdout, "address") == f"vpb@{d}"  # initials of the name (R-ADDR-1 unit rule)
    srv.cli("unit", "add-address", "vp", f"vanphong@{d}")
    srv.cli("unit", "delegate", "vp", f"clerk@{d}", "--rights", "read,send-as")
    listing = srv.cli("unit", "list").stdout
    assert "btp" in listing and f"vpb@{d}, vanphong@{d}" in listing and f"head@{d}" in listing

    shown = srv.cli("unit", "show", f"vanphong@{d}").stdout
    assert f"clerk@{d}  read,send-as" in shown and "Đơn vị/Bộ Tư pháp/Văn phòng Bộ" in shown

    handed = srv.cli("unit", "handover", "vp", "--to", f"new@{d}")
    password = _value(handed.stdout, "password")
    assert _value(handed.stdout, "head") == f"head@{d} → new@{d}"
    assert f"clerk@{d} read,send-as" in handed.stdout
    store = srv.open_store()
    try:
        org = store.org
        unit = org.get_unit("vp")
        assert PasswordHasher().verify(unit.account.password_hash, password)
        assert unit.head.address == f"new@{d}"
        assert org.rights_for(unit.head.id, unit.account.id) == frozenset(Right)
        assert org.audit_log(unit.account.id)[0].action == "handover"
    finally:
        store.close()

    srv.cli("unit", "undelegate", "vp", f"clerk@{d}")
    assert "delegates: none" in srv.cli("unit", "show", "vp").stdout


def test_unit_refusals_and_usage_errors(srv):
    d = srv.domain
    srv.cli("unit", "add", "Văn phòng", "--code", "vp", "--head", f"head@{d}")
    _refused(srv.cli("unit", "add", "Văn phòng", "--code", "vp2", check=False), "already taken", "--address")
    _refused(srv.cli("unit", "add", "Khác", "--code", "vp", "--address", f"khac@{d}", check=False), "already exists")
    _refused(srv.cli("unit", "add", "Khác", "--code", "k", "--parent", "nope", check=False), "not found")
    _refused(srv.cli("unit", "show", "nope", check=False), "no unit nope")
    _refused(srv.cli("unit", "delegate", "vp", f"nobody@{d}", check=False), "no account")
    _refused(srv.cli("unit", "handover", "vp", "--to", f"head@{d}", check=False), "already heads")
    _refused(srv.cli("unit", "undelegate", "vp", f"clerk@{d}", check=False), "no such delegation")
    assert srv.cli("unit", "delegate", "vp", f"clerk@{d}", "--rights", "admin", check=False).returncode == 2
    assert srv.cli("unit", "handover", "vp", check=False).returncode == 2
    assert srv.cli("unit", "frobnicate", check=False).returncode == 2


def test_group_members_nesting_loop_and_removal(srv):
    d = srv.domain
    srv.cli("group", "add", f"lanhdao@{d}", "Lãnh đạo", "--member", f"head@{d}", "--member", f"new@{d}")
    srv.cli("group", "add", f"all@{d}", "Toàn cơ quan", "--policy", "members")
    srv.cli("group", "members", "add", f"all@{d}", f"lanhdao@{d}", f"a@{d}", f"head@{d}")
    expanded = srv.cli("group", "members", "list", f"all@{d}", "--expand").stdout
    assert expanded.count(f"head@{d}") == 1 and "3 recipient(s)" in expanded
    assert "3 member(s)" in srv.cli("group", "members", "list", f"all@{d}").stdout

    loop = srv.cli("group", "members", "add", f"lanhdao@{d}", f"all@{d}", check=False)
    _refused(loop, f"lanhdao@{d} → all@{d} → lanhdao@{d}")

    srv.cli("group", "policy", f"all@{d}", "anyone")
    assert "policy=anyone" in srv.cli("group", "list").stdout
    srv.cli("group", "members", "remove", f"all@{d}", f"a@{d}")
    assert f"a@{d}" not in srv.cli("group", "members", "list", f"all@{d}").stdout
    srv.cli("group", "remove", f"lanhdao@{d}")
    assert "1 recipient(s)" in srv.cli("group", "members", "list", f"all@{d}", "--expand").stdout
    _refused(srv.cli("group", "members", "list", f"lanhdao@{d}", check=False), "no group")
    assert srv.cli("group", "add", f"x@{d}", "X", "--policy", "nobody", check=False).returncode == 2
