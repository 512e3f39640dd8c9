"""storage.mime.parse: offsets, RFC 3501 defaults, broken input, RFC 2231, groups, nesting."""

from __future__ import annotations

import io
import json
import random

import pytest

from storage.mime import decode_header, filename, fold, html_to_text, parse
from storage.mime.address import parse_addresses

CRLF = b"\r\n"


def msg(*lines: bytes | str, eol: bytes = CRLF) -> bytes:
    return eol.join(line.encode("utf-8") if isinstance(line, str) else line for line in lines)


NESTED = msg(
    "From: Nguyen Van A <a@example.gov.vn>",
    "To: b@example.gov.vn",
    "Subject: outer",
    "MIME-Version: 1.0",
    'Content-Type: multipart/mixed; boundary="OUTER"',
    "",
    "preamble",
    "--OUTER",
    'Content-Type: multipart/alternative; boundary="INNER"',
    "",
    "--INNER",
    "Content-Type: text/plain; charset=utf-8",
    "",
    "plain line 1",
    "plain line 2",
    "--INNER",
    "Content-Type: text/html; charset=utf-8",
    "",
    "<p>html</p>",
    "--INNER--",
    "",
    "--OUTER",
    "Content-Type: message/rfc822",
    "Content-Description: forwarded",
    "",
    "From: c@example.org",
    "Subject: inner subject",
    'Content-Type: multipart/mixed; boundary="DEEP"',
    "",
    "--DEEP",
    "",
    "deep text",
    "--DEEP",
    "Content-Type: application/octet-stream",
    "Content-Transfer-Encoding: base64",
    "",
    "AAECAw==",
    "--DEEP--",
    "--OUTER--",
    "epilogue",
    "",
)


def section(structure: dict, path: str) -> dict:
    """The part IMAP names ``path`` (e.g. "2.1"); a message/rfc822 part's children are its message's."""
    part = structure
    for number in path.split("."):
        if "message" in part:
            part = part["message"]["structure"]
        part = part["parts"][int(number) - 1]
    return part


def body(data: bytes, part: dict) -> bytes:
    return data[part["body_start"]:part["body_end"]]


def test_offsets_slice_each_body_like_imap_body_sections() -> None:
    meta = parse(NESTED)
    structure = meta["structure"]
    assert meta["size"] == len(NESTED)
    assert body(NESTED, section(structure, "1.1")) == b"plain line 1\r\nplain line 2"
    assert body(NESTED, section(structure, "1.2")) == b"<p>html</p>"
    assert body(NESTED, section(structure, "2.1")) == b"deep text"
    assert body(NESTED, section(structure, "2.2")) == b"AAECAw=="
    rfc822 = section(structure, "2")
    assert body(NESTED, rfc822).startswith(b"From: c@example.org\r\n")
    assert body(NESTED, rfc822).endswith(b"--DEEP--")
    assert NESTED[section(structure, "1.1")["header_start"]:section(structure, "1.1")["body_start"]] == (
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
    )


def test_sizes_and_lines_describe_the_encoded_body() -> None:
    structure = parse(NESTED)["structure"]
    plain = section(structure, "1.1")
    assert plain["size"] == len(b"plain line 1\r\nplain line 2")
    assert plain["lines"] == 2
    rfc822 = section(structure, "2")
    assert rfc822["lines"] == body(NESTED, rfc822).count(b"\n") + 1
    assert rfc822["size"] == rfc822["body_end"] - rfc822["body_start"]


def test_message_rfc822_part_carries_envelope_and_structure() -> None:
    rfc822 = section(parse(NESTED)["structure"], "2")
    assert (rfc822["type"], rfc822["subtype"], rfc822["description"]) == ("message", "rfc822", "forwarded")
    inner = rfc822["message"]
    assert inner["envelope"]["subject"] == "inner subject"
    assert inner["envelope"]["from"] == [{"name": None, "adl": None, "mailbox": "c", "host": "example.org"}]
    assert inner["structure"]["header_start"] == rfc822["body_start"]
    assert inner["structure"]["subtype"] == "mixed"
    assert section(inner["structure"], "1")["params"] == [["charset", "us-ascii"]]


def test_result_is_json_serialisable_and_file_objects_give_the_same_result() -> None:
    meta = parse(NESTED)
    assert json.loads(json.dumps(meta)) == meta
    stream = io.BytesIO(NESTED)
    assert parse(stream) == meta


def test_no_content_type_defaults_to_text_plain_us_ascii_7bit() -> None:
    structure = parse(msg("Subject: hi", "", "body", ""))["structure"]
    assert (structure["type"], structure["subtype"]) == ("text", "plain")
    assert structure["params"] == [["charset", "us-ascii"]]
    assert structure["encoding"] == "7bit"
    assert structure["disposition"] is None and structure["language"] is None and structure["location"] is None


def test_digest_children_default_to_message_rfc822() -> None:
    data = msg(
        "Content-Type: multipart/digest; boundary=d", "", "--d", "", "Subject: one", "", "first", "--d",
        "Content-Type: text/plain", "", "not a message", "--d--", "",
    )
    parts = parse(data)["structure"]["parts"]
    assert [(p["type"], p["subtype"]) for p in parts] == [("message", "rfc822"), ("text", "plain")]
    assert parts[0]["message"]["envelope"]["subject"] == "one"


def test_params_keep_value_case_and_lower_case_names() -> None:
    data = msg(
        'Content-Type: multipart/Mixed; BOUNDARY="AbC"; Name="My File.PDF"', "", "--AbC",
        'Content-Type: Application/PDF; NAME="Báo Cáo.pdf"',
        'Content-Disposition: Attachment; FileName="My File.PDF"; size=12', "", "x", "--AbC--",
    )
    structure = parse(data)["structure"]
    assert structure["subtype"] == "mixed"
    assert structure["params"] == [["boundary", "AbC"], ["name", "My File.PDF"]]
    part = structure["parts"][0]
    assert (part["type"], part["subtype"]) == ("application", "pdf")
    assert part["params"] == [["name", "Báo Cáo.pdf"]]
    assert part["disposition"] == ["attachment", [["filename", "My File.PDF"], ["size", "12"]]]


def test_rfc2231_continuations_and_charset_are_decoded() -> None:
    data = msg(
        "Content-Type: application/pdf;",
        " name*0*=utf-8'vi'T%E1%BB%9D%20tr%C3%ACnh%20;",
        ' name*1="số 06";',
        " name*2*=.pdf",
        "Content-Disposition: attachment; filename*=UTF-8''T%E1%BB%9D%20tr%C3%ACnh%20s%E1%BB%91%2006.pdf;",
        ' filename="fallback.pdf"',
        "", "x",
    )
    part = parse(data)["structure"]
    assert part["params"] == [["name", "Tờ trình số 06.pdf"]]
    assert part["disposition"][1] == [["filename", "Tờ trình số 06.pdf"]]
    assert filename(part) == "Tờ trình số 06.pdf"


def test_language_location_id_md5_are_read() -> None:
    data = msg(
        "Content-Type: text/plain; charset=utf-8", "Content-Language: vi, en", "Content-Location: http://x/y",
        "Content-ID: <id@x>", "Content-MD5: Q2hlY2s=", "Content-Transfer-Encoding: Quoted-Printable", "", "b",
    )
    part = parse(data)["structure"]
    assert part["language"] == ["vi", "en"]
    assert (part["location"], part["id"], part["md5"], part["encoding"]) == ("http://x/y", "<id@x>", "Q2hlY2s=", "quoted-printable")


def test_groups_and_addresses_without_at_sign() -> None:
    data = msg(
        "From: postmaster",
        "To: undisclosed-recipients:;",
        'Cc: Team: "Lê, Văn B" <b@x.vn>, c@x.vn;, d@y.vn',
        'Bcc: "quoted local"@x.vn (Comment Name)',
        "", "",
    )
    envelope = parse(data)["envelope"]
    assert envelope["from"] == [{"name": None, "adl": None, "mailbox": "postmaster", "host": None}]
    assert envelope["to"] == [
        {"name": None, "adl": None, "mailbox": "undisclosed-recipients", "host": None},
        {"name": None, "adl": None, "mailbox": None, "host": None},
    ]
    assert [(a["name"], a["mailbox"], a["host"]) for a in envelope["cc"]] == [
        (None, "Team", None), ("Lê, Văn B", "b", "x.vn"), (None, "c", "x.vn"), (None, None, None), (None, "d", "y.vn"),
    ]
    assert envelope["bcc"] == [{"name": "Comment Name", "adl": None, "mailbox": "quoted local", "host": "x.vn"}]


def test_sender_and_reply_to_default_to_from_and_missing_from_is_empty() -> None:
    envelope = parse(msg("From: A <a@x.vn>", "", ""))["envelope"]
    assert envelope["sender"] == envelope["from"] == envelope["reply_to"]
    assert parse(msg("Subject: s", "", ""))["envelope"]["from"] == []


def test_envelope_strings_are_raw_unfolded_and_search_is_decoded() -> None:
    data = msg(
        "Subject: =?UTF-8?B?Q8O0bmcgdsSDbg==?=", "  =?UTF-8?Q?_s=E1=BB=91_12?=", "Message-ID: <m1@x.vn>",
        "Date: Tue, 3 Nov 2026 08:30:00 +0700", "From: =?utf-8?Q?Tr=E1=BA=A7n_Th=E1=BB=8B_B?= <b@x.vn>", "", "",
    )
    meta = parse(data)
    assert meta["envelope"]["subject"] == "=?UTF-8?B?Q8O0bmcgdsSDbg==?=  =?UTF-8?Q?_s=E1=BB=91_12?="
    assert meta["envelope"]["message_id"] == "<m1@x.vn>"
    assert meta["search"]["subject"] == "Công văn số 12"
    assert meta["search"]["from"] == "Trần Thị B <b@x.vn>"
    assert meta["search"]["date"] == "2026-11-03T01:30:00+00:00"
    assert "subject: Công văn số 12" in meta["search"]["headers"]


def test_raw_8bit_header_is_latin1_in_envelope_when_not_utf8() -> None:
    meta = parse(b"Subject: caf\xe9\r\n\r\n")
    assert meta["envelope"]["subject"] == "caf\xe9"
    assert parse("Subject: Công văn\r\n\r\n".encode())["envelope"]["subject"] == "Công văn"


def test_unparseable_date_gives_none() -> None:
    assert parse(msg("Date: yesterday-ish", "", ""))["search"]["date"] is None
    assert parse(msg("Date: 3 Nov 2026 08:30:00", "", ""))["search"]["date"] == "2026-11-03T08:30:00+00:00"


def test_body_search_text_decodes_plain_and_html_and_skips_attachments() -> None:
    data = msg(
        "Content-Type: multipart/mixed; boundary=b", "", "--b",
        "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: quoted-printable", "",
        "C=C3=B4ng v=C4=83n s=E1=BB=91 12", "--b", "Content-Type: text/html; charset=utf-8", "",
        "<html><style>.x{}</style><p>K&iacute;nh g&#7917;i</p><script>bad()</script></html>", "--b",
        "Content-Type: application/octet-stream", "Content-Transfer-Encoding: base64", "", "aGlkZGVu", "--b--", "",
    )
    text = parse(data)["search"]["body"]
    assert "Công văn số 12" in text and "Kính gửi" in text
    assert "bad()" not in text and "hidden" not in text and ".x" not in text


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\r\n",
        b"no header at all\r\njust text",
        b"Subject: only a header",
        b"Content-Type: text/plain;\r\n\r\nbody",
        b"Content-Type: multipart/mixed\r\n\r\n--x\r\nno boundary param\r\n",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nno end",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\nnever a delimiter\r\n",
        b"Content-Type: /\r\nContent-Transfer-Encoding:\r\n\r\n",
        b"Subject: \xff\xfe\x00\r\n\xff: x\r\n\r\n",
        b"Content-Type: message/rfc822\r\n\r\n",
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogeA==\r\n",
    ],
)
def test_broken_input_degrades_to_parts_with_consistent_offsets(data: bytes) -> None:
    meta = parse(data)
    assert meta["size"] == len(data)
    check_part(meta["structure"], len(data))


def check_part(part: dict, size: int) -> None:
    assert 0 <= part["header_start"] <= part["body_start"] <= part["body_end"] <= size
    assert part["size"] == part["body_end"] - part["body_start"]
    assert part["lines"] >= 0 and isinstance(part["encoding"], str) and part["type"] and part["subtype"]
    if part["type"] == "multipart":
        assert part["parts"], "a multipart part always has children"
        for child in part["parts"]:
            assert part["body_start"] <= child["header_start"] and child["body_end"] <= part["body_end"]
            check_part(child, size)
    else:
        assert "parts" not in part
    if (part["type"], part["subtype"]) == ("message", "rfc822"):
        check_part(part["message"]["structure"], size)


def test_missing_final_boundary_closes_parts_at_end_of_input() -> None:
    data = b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\nfirst\r\n--x\r\n\r\nsecond\r\n"
    parts = parse(data)["structure"]["parts"]
    assert [body(data, p) for p in parts] == [b"first", b"second\r\n"]


def test_inner_part_missing_its_close_delimiter_ends_at_the_outer_one() -> None:
    data = msg(
        "Content-Type: multipart/mixed; boundary=out", "", "--out", "Content-Type: multipart/related; boundary=in",
        "", "--in", "", "inner", "--out", "", "second", "--out--",
    )
    structure = parse(data)["structure"]
    assert body(data, section(structure, "1.1")) == b"inner"
    assert body(data, section(structure, "2")) == b"second"


def test_lf_only_line_ends() -> None:
    data = msg("Content-Type: multipart/mixed; boundary=b", "", "--b", "", "one\ntwo", "--b--", "", eol=b"\n")
    part = parse(data)["structure"]["parts"][0]
    assert body(data, part) == b"one\ntwo"
    assert part["lines"] == 2


def test_header_without_separator_starts_the_body_at_the_first_non_header_line() -> None:
    data = b"Subject: x\r\nThis is body text\r\n"
    part = parse(data)["structure"]
    assert body(data, part) == b"This is body text\r\n"
    assert parse(data)["envelope"]["subject"] == "x"


def test_random_bytes_never_raise() -> None:
    rng = random.Random(20261123)
    alphabet = b"-\r\n:;= \t\"'*%abx\xc3\xff=?BQ"
    prefixes = [b"", b"Content-Type: multipart/mixed; boundary=x\r\n\r\n", b"Content-Type: message/rfc822\r\n\r\n"]
    for _ in range(1000):
        data = rng.choice(prefixes) + bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 300)))
        meta = parse(data)
        check_part(meta["structure"], len(data))
        json.dumps(meta)
    for _ in range(300):
        data = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 500)))
        check_part(parse(data)["structure"], len(data))
        decode_header(data)


def test_large_message_is_scanned_without_keeping_the_attachment() -> None:
    attachment = (b"QUJD" * 19 + b"\r\n") * 200_000  # ~15 MB of base64
    data = msg("Content-Type: multipart/mixed; boundary=b", "", "--b", "Content-Type: text/plain", "", "hello",
               "--b", "Content-Type: application/zip", "Content-Transfer-Encoding: base64", "", b"") + attachment + b"--b--\r\n"
    parts = parse(io.BytesIO(data))["structure"]["parts"]
    assert parts[1]["size"] == len(attachment) - 2
    assert parts[1]["lines"] == 200_000


def test_fold_removes_case_tones_and_marks() -> None:
    assert fold("  CÔNG  Văn\tSố 12 ") == "cong van so 12"
    assert fold("Đường ĐI") == "duong di"
    assert fold("\u00d0\u00e0 N\u1eb5ng") == "da nang"  # Ð (eth) typed for Đ by old converters
    assert fold("Công văn", diacritics=False) == "công văn"
    assert fold("Co\u0302ng") == "cong"  # NFD input
    assert fold("Ủy ban Nhân dân tỉnh Lâm Đồng") == "uy ban nhan dan tinh lam dong"


def _fold_by_regex(text: str) -> str:
    """The definition of fold: NFD, every combining mark removed by the regex, đ/ð → d, NFC."""
    import unicodedata

    from storage.mime.text import _COMBINING

    text = unicodedata.normalize("NFD", text.casefold())
    text = unicodedata.normalize("NFC", _COMBINING.sub("", text).replace("đ", "d").replace("\u00f0", "d"))
    return " ".join(text.split())


def test_fold_fast_path_equals_the_regex_definition_on_mixed_scripts() -> None:
    # The byte-counting path must give the regex's answer for any text: Vietnamese, other marks
    # (U+0361), Greek sharing the 0xCD lead byte (U+0370-037F), CJK, ligatures, odd whitespace.
    rng = random.Random(6909)
    alphabet = ("aăâbdđeêioôơuưyÀẢÃẠĐðÐỐỰẪ \t\r\n\x0b\x0c\x1c\x1d\x1f\x85\u00a0Ͱͷǅ日本ﬁßẞſẛΣς\u0300\u0345"
                "\u0361\u036f\u0370\u0130\u212a\u212bABCxyzXYZ.,-")
    samples = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(5000)]
    samples += ["Công văn số 12 " * 500, "Ͱ công", "công ͷ"]
    for text in samples:
        assert fold(text) == _fold_by_regex(text), repr(text)


def test_html_to_text_strips_markup_and_unescapes_entities() -> None:
    assert html_to_text("<div>A&amp;B</div><script>x()</script><br>C&#7871;") == "A&B\nCế"


def test_message_global_nests_like_rfc822() -> None:
    data = msg("Content-Type: message/global", "", "Subject: Tiếng Việt", "", "inner", "")
    part = parse(data)["structure"]
    assert part["message"]["envelope"]["subject"] == "Tiếng Việt"
    assert body(data, part["message"]["structure"]) == b"inner\r\n"


def test_base64_message_rfc822_gets_an_empty_envelope_and_one_text_part() -> None:
    data = msg("Content-Type: message/rfc822", "Content-Transfer-Encoding: base64", "", "U3ViamVjdDogeA==", "")
    part = parse(data)["structure"]
    assert part["message"]["envelope"]["subject"] is None
    inner = part["message"]["structure"]
    assert (inner["type"], inner["body_start"], inner["body_end"]) == ("text", part["body_start"], part["body_end"])


def test_mbox_from_line_is_not_a_field_and_does_not_end_the_header() -> None:
    data = b"From sender@example.org Mon Nov  2 09:00:00 2026\r\nSubject: kept\r\n\r\nbody"
    meta = parse(data)
    assert meta["envelope"]["subject"] == "kept"
    assert body(data, meta["structure"]) == b"body"


def test_decode_header_joins_a_letter_split_over_three_words() -> None:
    raw = "Đồng".encode()  # Đ = c4 90, ồ = e1 bb 93
    words = " ".join(f"=?UTF-8?Q?{''.join(f'={b:02X}' for b in raw[i:i + 2])}?=" for i in range(0, len(raw), 2))
    assert decode_header(words) == "Đồng"


def test_decode_header_keeps_words_of_different_charsets_apart() -> None:
    assert decode_header("=?iso-8859-1?Q?caf=E9?= =?utf-8?B?IFZp4buHdA==?=") == "café Việt"


def test_over_long_header_line_is_read_whole_up_to_the_cap() -> None:
    names = ", ".join(f"user{i}@example.gov.vn" for i in range(5000))  # one 120 KB line
    meta = parse(f"To: {names}\r\nSubject: s\r\n\r\nb".encode())
    assert len(meta["envelope"]["to"]) == 5000
    assert meta["envelope"]["subject"] == "s"


def test_search_fields_are_empty_strings_when_headers_are_missing() -> None:
    search = parse(b"\r\nbody only")["search"]
    assert (search["subject"], search["from"], search["to"], search["message_id"], search["date"]) == ("", "", "", "", None)
    assert search["body"] == "body only"


def test_deep_nesting_is_cut_off_and_stays_serialisable() -> None:
    depth = 500
    head = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i) for i in range(depth))
    data = head + b"\r\ninnermost\r\n"
    meta = parse(data)
    json.dumps(meta)
    levels, part = 0, meta["structure"]
    while "parts" in part:
        part, levels = part["parts"][0], levels + 1
    assert levels < 100
    check_part(meta["structure"], len(data))


def test_number_of_parts_is_capped() -> None:
    data = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + b"--b\r\n\r\nx\r\n" * 20000 + b"--b--\r\n"
    parts = parse(data)["structure"]["parts"]
    assert 1000 < len(parts) <= 5000
    assert parts[-1]["body_end"] == len(data) - len(b"\r\n--b--\r\n")


def test_transfer_encoding_token_ignores_comments() -> None:
    part = parse(b"Content-Transfer-Encoding: Base64 (because)\r\n\r\nQQ==")["structure"]
    assert part["encoding"] == "base64"


def _email_leaves(message):
    """Leaf payloads in IMAP part order per the stdlib parser (a reference for our offsets)."""
    if message.is_multipart():
        for sub in message.get_payload():
            yield from _email_leaves(sub)
    elif message.get_content_type() == "message/rfc822":
        yield from _email_leaves(message.get_payload()[0])
    else:
        yield message.get_payload(decode=True)


def _our_leaves(data: bytes, part: dict):
    from storage.mime.bodytext import decode_transfer

    if "parts" in part:
        for child in part["parts"]:
            yield from _our_leaves(data, child)
    elif "message" in part:
        yield from _our_leaves(data, part["message"]["structure"])
    else:
        yield decode_transfer(body(data, part), part["encoding"])


def test_leaf_bodies_match_the_stdlib_parser_on_generated_messages() -> None:
    import email
    import email.policy
    from email.message import EmailMessage

    rng = random.Random(7)
    for round_ in range(40):
        outer = EmailMessage()
        outer["Subject"] = f"Thử nghiệm {round_}"
        outer.set_content("Nội dung chính " * rng.randint(1, 50))
        for index in range(rng.randint(0, 3)):
            payload = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 3000)))
            outer.add_attachment(payload, maintype="application", subtype="octet-stream", filename=f"Tệp {index}.bin")
        if rng.random() < 0.5:
            inner = EmailMessage()
            inner["Subject"] = "Thư chuyển tiếp"
            inner.set_content("Chuyển tiếp\n" * rng.randint(1, 5))
            inner.add_alternative("<p>Chuyển tiếp</p>", subtype="html")
            outer.add_attachment(inner)
        if rng.random() < 0.5:
            outer.add_alternative("<p>HTML</p>", subtype="html") if not outer.is_multipart() else None
        data = outer.as_bytes(policy=email.policy.SMTP)
        reference = list(_email_leaves(email.message_from_bytes(data, policy=email.policy.default)))
        meta = parse(data)
        assert list(_our_leaves(data, meta["structure"])) == reference
        json.dumps(meta)


_FUZZ_HEADERS = [
    b"Content-Type: multipart/mixed; boundary=b", b"Content-Type: multipart/digest; boundary=\"b\"",
    b"Content-Type: message/rfc822", b"Content-Type: text/plain; charset=\"a\x00b\"", b"Content-Type: text/html;",
    b"Content-Type: text/plain; charset=unicode_escape", b"Content-Type: text/plain; charset=x-viet-vni",
    b"Content-Type: text/plain; charset*0*=utf-8''%E1%BB; charset*1*=%9D", b"Content-Type: ; ; =",
    b"Content-Transfer-Encoding: base64", b"Content-Transfer-Encoding: quoted-printable", b"Content-Transfer-Encoding:",
    b"Content-Disposition: attachment; filename*=utf-8''%FF%FE; filename*1=x", b"Content-Disposition: ;;\"",
    b"Subject: =?utf-8?B?4bs=?= =?undefined?Q?x?= =?utf-8?Q?=E1=BB?=", b"Subject: \xc3\x28\xa0\xa1",
    b"From: \"unterminated <a@b", b"To: a:b:c;;;, <>, <@route:x@y>, ((nested) comment) x@y", b"Date: 99 Foo 1 25:61",
    b"\tcontinuation", b"X-\xff: 8bit name", b"no colon line",
]
_FUZZ_BODY = [b"", b"--b", b"--b--", b"--b  ", b"text", b"QUJD", b"=E1=BB=9D", b"<p>&#99999999;</p>", b"\xff\x00",
              b"From x", b"--bb", b"- -b"]


def test_structured_fuzz_never_raises_and_keeps_offsets_consistent() -> None:
    rng = random.Random(1456)
    for _ in range(1500):
        lines: list[bytes] = []
        for _ in range(rng.randint(0, 25)):
            pool = _FUZZ_HEADERS if rng.random() < 0.5 else _FUZZ_BODY
            lines.append(rng.choice(pool) if rng.random() < 0.95 else b"")
        data = rng.choice([b"\r\n", b"\n"]).join(lines)
        meta = parse(data)
        check_part(meta["structure"], len(data))
        json.dumps(meta)


def test_delimiter_right_after_the_header_without_blank_line() -> None:
    data = b"Content-Type: multipart/mixed; boundary=b\r\n--b\r\n\r\nonly part\r\n--b--\r\n"
    structure = parse(data)["structure"]
    assert structure["body_start"] == data.index(b"--b")
    assert [body(data, p) for p in structure["parts"]] == [b"only part"]


def test_header_lines_matched_at_once_give_what_line_by_line_scanning_gives(monkeypatch) -> None:
    """The scanner takes runs of header lines in one regex match; the structured fuzz inputs
    (odd fields, continuations, delimiters in headers, LF-only, 8-bit) must parse exactly as
    they do one line at a time."""
    import re

    from storage.mime import parser

    rng = random.Random(2047)
    samples = []
    for _ in range(1500):
        lines = [rng.choice(_FUZZ_HEADERS if rng.random() < 0.7 else _FUZZ_BODY) if rng.random() < 0.95 else b""
                 for _ in range(rng.randint(0, 25))]  # fmt: skip
        samples.append(rng.choice([b"\r\n", b"\n"]).join(lines))
    samples.append(b"From sender Mon Dec 7\r\nSubject: mbox\r\n\r\nbody")
    samples.append(b"Subject: " + b"x" * 300_000 + b"\r\nTo: a@b\r\n\r\nbody")  # past the header cap
    fast = [parse(data) for data in samples]
    monkeypatch.setattr(parser, "_HEADER_LINES", re.compile(rb"(?!)"))
    for data, meta in zip(samples, fast):
        assert parse(data) == meta, data[:200]


def test_simple_address_forms_parse_as_the_tokenizer_parses_them() -> None:
    from storage.mime import address

    rng = random.Random(5322)
    word = ["a", "b", "Nguyễn", "x.y", "gov.vn", "-", "_", "\xa0", "\u2003", "\\", "]", "=?UTF-8?B?QQ==?="]
    other = [" ", "\t", "@", "<", ">", ",", ";", ":", '"', "(", ")", "["]
    simple = 0
    for i in range(20000):
        if i % 3 == 0:
            text = "".join(rng.choice(word + other) for _ in range(rng.randint(1, 12)))
        else:
            w = lambda: "".join(rng.choice(word) for _ in range(rng.randint(1, 3)))  # noqa: E731
            phrase = " ".join(w() for _ in range(rng.randint(0, 3)))
            text = rng.choice(["", " ", "\t"]) + rng.choice(
                [f"{w()}@{w()}", f"<{w()}@{w()}>", f"{phrase} <{w()}@{w()}>", f"{phrase}<{w()}@{w()}>", f"{phrase} {w()}@{w()}"]
            ) + rng.choice(["", " ", "\t  "])
        simple += bool(address._BARE.fullmatch(text) or address._ANGLE.fullmatch(text))
        assert address.parse_addresses(text) == address._parse_addresses(text), repr(text)
    assert simple > 4000  # the fast forms were exercised, not only the fallback


def test_split_fields_equals_unfolding_then_matching_each_line() -> None:
    """split_fields takes each field with its continuations in one match; the definition is:
    unfold the block, split it into lines, keep the lines that start with a field name."""
    import re

    from storage.mime.headers import split_fields

    unfold, name = re.compile(rb"\r?\n(?=[ \t])"), re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")

    def reference(block: bytes) -> list:
        found = ((name.match(line), line) for line in unfold.sub(b"", block).split(b"\n"))
        return [(m.group(1).decode().lower(), line[m.end():].strip(b" \t\r")) for m, line in found if m]

    rng = random.Random(822)
    pieces = [b"Subject", b"X-A", b":", b" ", b"\t", b"\r\n", b"\n", b"\r", b"v", b"\xc3\xa1", b"a:b", b"  :",
              b"From ", b"\x00", b"\x7f", b"=?x?=", b";"]  # fmt: skip
    for _ in range(30000):
        block = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 20)))
        assert split_fields(block) == reference(block), block


@pytest.mark.parametrize(("value", "expected"), [
    ('"Nguyen Van A" <@route1.example,@route2.example:an@example.gov.vn>',
     [("Nguyen Van A", "@route1.example,@route2.example", "an", "example.gov.vn")]),
    ("<@relay.example:x@y.example>", [(None, "@relay.example", "x", "y.example")]),
    ("A <@r1.example, @r2.example : x@y.example>, b@c.example",
     [("A", "@r1.example,@r2.example", "x", "y.example"), (None, None, "b", "c.example")]),
    ("Team: <@r.example:x@y.example>;", [(None, None, "Team", None), (None, "@r.example", "x", "y.example"), (None, None, None, None)]),
    ("plain <x@y.example>", [("plain", None, "x", "y.example")]),
])
def test_envelope_keeps_source_route(value: str, expected: list) -> None:
    """RFC 3501 §7.4.2: the obsolete source route is the address structure's adl field."""
    addresses = parse_addresses(value)
    assert [(a["name"], a["adl"], a["mailbox"], a["host"]) for a in addresses] == expected


@pytest.mark.parametrize(("data", "expected"), [
    (b"", b""),
    (b"a\r\nb\r\n", b"a\r\nb\r\n"),
    (b"a\nb\n", b"a\r\nb\r\n"),
    (b"\n\n", b"\r\n\r\n"),
    (b"a\r\nb\nc\r\r\n", b"a\r\nb\r\nc\r\r\n"),
    (b"no line end", b"no line end"),
])
def test_bare_lf_made_crlf(data: bytes, expected: bytes, tmp_path) -> None:
    from storage.mime.crlf import CrlfStream, file_to_crlf, to_crlf

    assert to_crlf(data) == expected
    if data == expected:
        assert to_crlf(data) is data  # the common case is not copied
    for cut in range(len(data) + 1):
        stream = CrlfStream()
        assert stream.feed(data[:cut]) + stream.feed(data[cut:]) == expected, cut
    path = tmp_path / "m"
    path.write_bytes(b"x" * 5 + data)
    with open(path, "rb") as f:
        f.seek(5)
        out = file_to_crlf(f)
        assert out.read() == expected
        assert (out is f) == (data == expected)
        if out is not f:
            out.close()
