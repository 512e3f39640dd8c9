"""Regenerate the Vietnamese test corpus (tests/corpus/*.eml and expected.json).

Run from the repository root: ``python tests/corpus/make_corpus.py``. Not needed by the tests.

The legacy bytes do not come from storage.mime (that would test the decoders against
themselves): TCVN3, VISCII and windows-1258 are produced by the system's iconv (glibc tables:
TCVN5712-1, VISCII, WINDOWS-1258), VNI is written out by hand (a vowel followed by its mark
byte, per the VNI Windows font layout). TCVN3 samples use only lower-case toned letters and
untoned capitals, the letters on which TCVN 5712 VN1 and VN3 (ABC) agree. Expected text is the
Unicode source text.
"""

from __future__ import annotations

import base64
import json
import quopri
import subprocess
import unicodedata
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
CRLF = "\r\n"


def iconv(text: str, charset: str) -> bytes:
    return subprocess.run(["iconv", "-f", "utf-8", "-t", charset], input=text.encode(), capture_output=True,
                          check=True).stdout


def b_word(data: bytes, charset: str = "utf-8") -> str:
    return f"=?{charset}?B?{base64.b64encode(data).decode()}?="


def q_word(data: bytes, charset: str = "utf-8") -> str:
    body = "".join(chr(b) if (chr(b).isalnum() and b < 128) else ("_" if b == 32 else f"={b:02X}") for b in data)
    return f"=?{charset}?Q?{body}?="


def head(subject: str, extra: str = "", sender: str = "Van thu <vanthu@example.gov.vn>") -> str:
    return (f"From: {sender}{CRLF}To: canbo@example.gov.vn{CRLF}Subject: {subject}{CRLF}"
            f"Date: Mon, 2 Nov 2026 09:00:00 +0700{CRLF}Message-ID: <corpus@example.gov.vn>{CRLF}"
            f"MIME-Version: 1.0{CRLF}{extra}")


def build(*parts: str | bytes) -> bytes:
    return b"".join(p.encode("utf-8") if isinstance(p, str) else p for p in parts)


def single(subject: str, body: bytes, ctype: str = "text/plain; charset=utf-8", cte: str = "8bit",
           sender: str = "Van thu <vanthu@example.gov.vn>") -> bytes:
    if cte == "base64":
        body = base64.encodebytes(body).replace(b"\n", b"\r\n")
    elif cte == "quoted-printable":
        body = quopri.encodestring(body).replace(b"\n", b"\r\n")
    ctype_line = f"Content-Type: {ctype}{CRLF}" if ctype else ""
    return build(head(subject, ctype_line + f"Content-Transfer-Encoding: {cte}{CRLF}", sender), CRLF, body, CRLF)


def with_attachment(subject: str, text: str, disposition: str, ctype: str = "application/pdf") -> bytes:
    return build(
        head(subject, f'Content-Type: multipart/mixed; boundary="=_b"{CRLF}'), CRLF,
        f"--=_b{CRLF}Content-Type: text/plain; charset=utf-8{CRLF}Content-Transfer-Encoding: 8bit{CRLF}{CRLF}",
        text, CRLF,
        f"--=_b{CRLF}Content-Type: {ctype}{CRLF}Content-Transfer-Encoding: base64{CRLF}{disposition}{CRLF}{CRLF}",
        "JVBERi0xLjQK", CRLF, f"--=_b--{CRLF}",
    )


TCVN_SUBJECT = "Công văn số 12/UBND về việc triển khai hệ thống thư điện tử"
TCVN_BODY = "Kính gửi các cơ quan, đơn vị trực thuộc. Đề nghị các đồng chí nghiên cứu và thực hiện."
VISCII_TEXT = "Ủy ban nhân dân tỉnh Lâm Đồng thông báo lịch tiếp công dân"
CP1258_TEXT = "Giấy mời họp giao ban tuần, địa điểm: phòng họp số 2"
VNI_SUBJECT = ("Thông báo lịch họp tuần", "Thoâng baùo lòch hoïp tuaàn")
VNI_BODY = ("Kính gửi các đơn vị trực thuộc Ủy ban nhân dân tỉnh. Đề nghị các đồng chí đến đúng giờ.",
            "Kính göûi caùc ñôn vò tröïc thuoäc UÛy ban nhaân daân tænh. Ñeà nghò caùc ñoàng chí ñeán ñuùng giôø.")
NAME = "Tờ trình số 06.pdf"


def corpus() -> dict[str, tuple[bytes, dict]]:
    items: dict[str, tuple[bytes, dict]] = {}

    def add(name: str, data: bytes, **expected) -> None:
        items[name] = (data, expected)

    s = "Công văn đến số 45"
    add("01-utf8-b-subject.eml", single(b_word(s.encode()), "Nội dung công văn".encode()), subject=s, body=["Nội dung công văn"])
    add("02-utf8-q-subject.eml", single(q_word(s.encode()), b"ok"), subject=s)
    word = "Tờ trình".encode()  # ờ is e1 bb 9d: split after its first byte
    add("03-split-b-mid-letter.eml", single(f"{b_word(word[:2])}{CRLF} {b_word(word[2:])}", b"x"), subject="Tờ trình")
    qs = "Quyết định bổ nhiệm".encode()
    cut = qs.index("ị".encode()) + 1
    add("04-split-q-mid-letter.eml", single(f"{q_word(qs[:cut])}{CRLF}\t{q_word(qs[cut:])}", b"x"), subject="Quyết định bổ nhiệm")
    add("05-adjacent-mixed-charsets.eml",
        single(f"{q_word('Café '.encode('latin-1'), 'iso-8859-1')} {q_word('Việt Nam'.encode())}", b"x"), subject="Café Việt Nam")
    nfd = unicodedata.normalize("NFD", "Thông báo nghỉ lễ Quốc khánh")
    add("06-nfd-raw-subject-and-body.eml", single(nfd, unicodedata.normalize("NFD", "Nghỉ lễ từ ngày 2/9").encode()),
        subject="Thông báo nghỉ lễ Quốc khánh", body=["Nghỉ lễ từ ngày 2/9"])
    add("07-nfd-encoded-word.eml", single(b_word(unicodedata.normalize("NFD", "Đường Điện Biên Phủ").encode()), b"x"),
        subject="Đường Điện Biên Phủ")
    add("08-raw-utf8-headers.eml", single("Báo cáo tình hình tháng 10", "Đã nhận".encode(),
        sender="Nguyễn Thị Hồng <hong@example.gov.vn>"), subject="Báo cáo tình hình tháng 10",
        **{"from": "Nguyễn Thị Hồng <hong@example.gov.vn>"}, body=["Đã nhận"])
    add("09-raw-tcvn3-subject.eml", build(head("@@")).replace(b"@@", iconv(TCVN_SUBJECT, "TCVN5712-1"))
        + b"Content-Type: text/plain\r\n\r\nx\r\n", subject=TCVN_SUBJECT)
    add("10-raw-vni-subject.eml", build(head("@@")).replace(b"@@", VNI_SUBJECT[1].encode("cp1252"))
        + b"Content-Type: text/plain\r\n\r\nx\r\n", subject=VNI_SUBJECT[0])
    add("11-tcvn3-body-no-charset.eml", single("TCVN3", iconv(TCVN_BODY, "TCVN5712-1"), ctype="text/plain"),
        body=[TCVN_BODY])
    add("12-tcvn3-labelled-latin1-qp.eml", single("TCVN3 QP", iconv(TCVN_BODY, "TCVN5712-1"),
        ctype="text/plain; charset=iso-8859-1", cte="quoted-printable"), body=[TCVN_BODY])
    add("13-tcvn3-labelled-tcvn.eml", single("TCVN3 label", iconv(TCVN_BODY, "TCVN5712-1"),
        ctype="text/plain; charset=x-viet-tcvn"), body=[TCVN_BODY])
    add("14-vni-labelled-windows-1252.eml", single("VNI", VNI_BODY[1].encode("cp1252"),
        ctype="text/plain; charset=windows-1252"), body=[VNI_BODY[0]])
    add("15-vni-labelled-vni.eml", single("VNI label", VNI_BODY[1].encode("cp1252"),
        ctype='text/plain; charset="VNI-Windows"', cte="base64"), body=[VNI_BODY[0]])
    add("16-viscii-labelled-base64.eml", single("VISCII", iconv(VISCII_TEXT, "VISCII"),
        ctype="text/plain; charset=VISCII", cte="base64"), body=[VISCII_TEXT])
    add("17-viscii-labelled-us-ascii.eml", single("VISCII wrong label", iconv(VISCII_TEXT, "VISCII"),
        ctype="text/plain; charset=us-ascii"), body=[VISCII_TEXT])
    add("18-viscii-encoded-word.eml", single(q_word(iconv(VISCII_TEXT, "VISCII"), "VISCII"), b"x"), subject=VISCII_TEXT)
    add("19-tcvn3-encoded-word-labelled-latin1.eml",
        single(q_word(iconv(TCVN_SUBJECT, "TCVN5712-1"), "iso-8859-1"), b"x"), subject=TCVN_SUBJECT)
    add("20-windows-1258-body.eml", single("cp1258", iconv(CP1258_TEXT, "WINDOWS-1258"),
        ctype="text/plain; charset=windows-1258"), body=[CP1258_TEXT])
    add("21-windows-1258-subject.eml", single(b_word(iconv(CP1258_TEXT, "WINDOWS-1258"), "windows-1258"), b"x"),
        subject=CP1258_TEXT)
    add("22-rfc2231-filename.eml", with_attachment("Tờ trình", "Gửi kèm tờ trình",
        f"Content-Disposition: attachment; filename*=UTF-8''{quote(NAME.encode())}"), filenames=[NAME])
    encoded = quote(NAME.encode())
    cut = encoded.index("%BB") + 3  # inside the three bytes of ờ
    add("23-rfc2231-continuation-mid-letter.eml", with_attachment("Tờ trình", "Gửi kèm",
        f"Content-Disposition: attachment;{CRLF} filename*0*=utf-8'vi'{encoded[:cut]};{CRLF}"
        f" filename*1*={encoded[cut:]}"), filenames=[NAME])
    add("24-rfc2047-in-quoted-name.eml", with_attachment("Outlook", "x",
        f'Content-Disposition: attachment; filename="{b_word("Quyết định 15.docx".encode())}"',
        ctype=f'application/msword; name="{b_word("Quyết định 15.docx".encode())}"'), filenames=["Quyết định 15.docx"])
    add("25-raw-utf8-filename.eml", with_attachment("raw", "x",
        'Content-Disposition: attachment; filename="Báo cáo tháng 10.xlsx"'), filenames=["Báo cáo tháng 10.xlsx"])
    mixed = "Meeting agenda / Chương trình họp: Budget 2027 và kế hoạch"
    html = "<html><body><p>Dear all, xin gửi <b>chương trình</b> họp.</p></body></html>"
    add("26-mixed-vi-en-alternative.eml", build(
        head(b_word(mixed.encode()), f'Content-Type: multipart/alternative; boundary="alt"{CRLF}'), CRLF,
        f"--alt{CRLF}Content-Type: text/plain; charset=utf-8{CRLF}{CRLF}Dear all, xin gửi chương trình họp.{CRLF}",
        f"--alt{CRLF}Content-Type: text/html; charset=utf-8{CRLF}{CRLF}{html}{CRLF}--alt--{CRLF}"),
        subject=mixed, body=["Dear all, xin gửi chương trình họp."])
    add("27-html-entities-script-style.eml", single("html",
        b"<style>p{color:red}</style><p>Th&#244;ng b&aacute;o &#7911;y quy&#7873;n</p><script>alert(1)</script>",
        ctype="text/html; charset=us-ascii"), body=["Thông báo ủy quyền"], body_absent=["alert", "color:red"])
    text = "Quyết định khen thưởng cán bộ xuất sắc năm 2026"
    add("28-qp-utf8-body.eml", single("qp", text.encode(), cte="quoted-printable"), body=[text])
    add("29-base64-utf8-body.eml", single("b64", text.encode(), cte="base64"), body=[text])
    inner = build(head(b_word("Chuyển tiếp: Kế hoạch công tác".encode()),
        f"Content-Type: text/plain; charset=utf-8{CRLF}"), CRLF, "Nội dung chuyển tiếp", CRLF)
    add("30-forwarded-message-rfc822.eml", build(
        head("Fwd", f'Content-Type: multipart/mixed; boundary="fw"{CRLF}'), CRLF,
        f"--fw{CRLF}Content-Type: text/plain; charset=utf-8{CRLF}{CRLF}Xem thư bên dưới{CRLF}",
        f"--fw{CRLF}Content-Type: message/rfc822{CRLF}{CRLF}", inner, f"--fw--{CRLF}"),
        nested_subject="Chuyển tiếp: Kế hoạch công tác", body=["Xem thư bên dưới", "Nội dung chuyển tiếp"])
    add("31-undecodable-word-left-as-sent.eml",
        single(f"=?utf-8?B?***?= {b_word('hợp lệ'.encode())}", b"x"), subject="=?utf-8?B?***?= hợp lệ")
    add("32-utf8-label-but-windows-1258.eml", single("wrong utf-8", iconv(CP1258_TEXT, "WINDOWS-1258"),
        ctype="text/plain; charset=utf-8"), body=[CP1258_TEXT])
    add("33-encoded-from-name.eml", single("from", b"x",
        sender=f"{b_word('Nguyễn Văn An'.encode())} <an@example.gov.vn>"), **{"from": "Nguyễn Văn An <an@example.gov.vn>"})
    add("34-lf-only-line-ends.eml", single(b_word("Lịch trực cơ quan".encode()), "Trực ban: Phòng Hành chính".encode())
        .replace(b"\r\n", b"\n"), subject="Lịch trực cơ quan", body=["Trực ban: Phòng Hành chính"])
    add("35-unknown-charset-word.eml", single(f"{q_word(b'abc', 'x-no-such-charset')} {q_word('Việt'.encode())}", b"x"),
        subject="=?x-no-such-charset?Q?abc?= Việt")
    add("36-raw-tcvn3-from-name.eml", build(head("x", sender="@@ <vanthu@example.gov.vn>")).replace(
        b"@@", iconv("Văn thư Sở Nội vụ", "TCVN5712-1")) + b"Content-Type: text/plain\r\n\r\nx\r\n",
        **{"from": "Văn thư Sở Nội vụ <vanthu@example.gov.vn>"})
    return items


def main() -> None:
    expected = {}
    for name, (data, facts) in corpus().items():
        (HERE / name).write_bytes(data)
        expected[name] = facts
    (HERE / "expected.json").write_text(json.dumps(expected, ensure_ascii=False, indent=1, sort_keys=True) + "\n",
                                        encoding="utf-8")


if __name__ == "__main__":
    main()
