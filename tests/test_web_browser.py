"""The portal in a real headless Chromium (Debian's chromium + chromium-driver) at a phone's
390×844 and a laptop's 1,280×900: no page scrolls sideways, every field is reached with Tab,
fields are labelled and carry the right autocomplete, text meets WCAG 2.1 AA contrast, the
password rules and the initial-password deadline are shown before the form (R-PASS-1..3), and
after a change the mail-program settings of the configured listeners. Screenshots in
tests/artifacts/."""

from __future__ import annotations

import pytest

from tests.browser import VIEWPORTS, chromium, low_contrast, overflow, screenshot, tab_order, unlabelled_fields
from tests.conftest import BACKENDS, Server, free_port, wait_until

DOMAIN = "example.gov.vn"
INITIAL = "Ban-dau-2026!"
NEW = "Mat-khau-moi-2027!"


@pytest.fixture(scope="module", params=BACKENDS)
def portal(request, tmp_path_factory):
    logo = tmp_path_factory.mktemp("logo") / "logo.svg"
    logo.write_text('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 48 48"><circle cx="24" cy="24" r="20" '
                    'fill="#c00"/><path d="M24 10l4 9h10l-8 6 3 10-9-6-9 6 3-10-8-6h10z" fill="#ff0"/></svg>')
    server = Server(tmp_path_factory.mktemp(f"browser-{request.param}"), request.param, {
        "listeners": {"web": {"address": "127.0.0.1", "port": free_port()}},
        "web": {"publish_directory": True},
        "passwords": {"initial_change_hours": 24},
        "agency": {"name": "Sở Thông tin và Truyền thông tỉnh Lâm Đồng", "name_en": "Lam Dong DIC", "logo": str(logo),
                   "helpdesk": {"phone": "0263 3 822 000", "email": f"hotro@{DOMAIN}", "hours": "7:30–17:00"}},
    })
    server.start()
    for who, address in (("Nguyễn Văn An", "annv"), ("Trần Thị Bình Minh Nguyệt", "ttbmnguyet")):
        server.cli("account", "add", who, "--address", f"{address}@{DOMAIN}", "--password", INITIAL)
    server.cli("account", "add", "Phòng Hành chính – Tổng hợp và Quản trị hệ thống thông tin", "--address",
               f"phong-hanh-chinh-tong-hop-quan-tri@{DOMAIN}", "--password", INITIAL, "--active")
    yield server
    server.destroy()


def _url(server, path: str) -> str:
    return f"https://127.0.0.1:{server.port('web')}{path}"


@pytest.fixture(params=VIEWPORTS, ids=[v[0] for v in VIEWPORTS])
def browser(request):
    name, width, height = request.param
    driver = chromium(width, height)
    driver.viewport = name
    yield driver
    driver.quit()


def _check_page(driver, label: str) -> None:
    scroll, inner = overflow(driver)
    assert scroll <= inner, f"{label}: page is {scroll}px wide in a {inner}px viewport"
    assert not low_contrast(driver), f"{label}: {low_contrast(driver)}"
    assert not unlabelled_fields(driver), label
    screenshot(driver, f"{driver.viewport}-{label}")


@pytest.mark.requirement("R-PASS-1")
def test_password_page_states_the_rules_first_and_every_field_is_reached_by_tab(portal, browser):
    browser.get(_url(portal, "/password"))
    text = browser.find_element("tag name", "main").text
    assert "trong vòng 24 giờ" in text and "within 24 hours" in text  # R-PASS-1 deadline, Vietnamese first
    assert text.index("Dài ít nhất 8 ký tự") < text.index("Địa chỉ thư điện tử")  # rules before the form
    assert "Sở Thông tin và Truyền thông tỉnh Lâm Đồng" in browser.page_source and "0263 3 822 000" in browser.page_source
    autocomplete = {e.get_attribute("name"): e.get_attribute("autocomplete")
                    for e in browser.find_elements("css selector", "form input")}
    assert autocomplete == {"address": "username", "current": "current-password", "new": "new-password",
                            "confirm": "new-password"}
    order = tab_order(browser)
    for field in ("address", "current", "new", "confirm"):
        assert field in order, order
    assert order.index("address") < order.index("current") < order.index("new") < order.index("confirm")
    assert "BUTTON" in order[order.index("confirm"):], order
    _check_page(browser, "password")


def test_refusal_and_success_pages_fit_and_give_the_next_step(portal, browser):
    address = f"annv@{DOMAIN}" if browser.viewport == "phone" else f"ttbmnguyet@{DOMAIN}"
    browser.get(_url(portal, "/password"))
    for name, value in (("address", address), ("current", INITIAL), ("new", NEW), ("confirm", "Khac-han-2027!")):
        browser.find_element("name", name).send_keys(value)
    browser.find_element("css selector", "button[type=submit]").click()
    wait_until(lambda: "không khớp" in browser.page_source, timeout=30, what="the refusal page")
    assert browser.find_element("name", "address").get_attribute("value") == address
    _check_page(browser, "password-refused")
    for name, value in (("current", INITIAL), ("new", NEW), ("confirm", NEW)):
        browser.find_element("name", name).send_keys(value)
    browser.find_element("css selector", "button[type=submit]").click()
    wait_until(lambda: "Đã đổi mật khẩu" in browser.page_source, timeout=30, what="the success page")
    rows = [r.text for r in browser.find_elements("css selector", "main tbody tr")]
    for service, security in (("imaps", "SSL/TLS"), ("imap", "STARTTLS"), ("pop3s", "SSL/TLS"),
                              ("submissions", "SSL/TLS"), ("submission", "STARTTLS")):
        assert any(f"127.0.0.1 {portal.port(service)} {security}" in r for r in rows), (service, rows)
    assert address in browser.find_element("tag name", "main").text
    _check_page(browser, "password-changed")


@pytest.mark.parametrize("path", ["/", "/danh-ba", "/vacation", "/mobileconfig", "/nowhere"])
def test_home_directory_and_error_pages_fit(portal, browser, path):
    browser.get(_url(portal, path))
    assert browser.find_element("tag name", "html").get_attribute("lang") == "vi"
    assert "Hỗ trợ kỹ thuật" in browser.page_source
    if path == "/danh-ba":
        assert "Phòng Hành chính – Tổng hợp" in browser.page_source
    order = tab_order(browser, 25)
    links = browser.execute_script("return [...document.querySelectorAll('main a[href], main [tabindex=\"0\"]')]"
                                   ".map(e => e.getAttribute('href') || e.id || e.tagName)")
    assert all(link in order for link in links if link.startswith("/")), (links, order)
    _check_page(browser, "home" if path == "/" else path.strip("/"))


@pytest.mark.parametrize("width", [320, 1920])
def test_readable_from_320_to_1920_pixels_with_the_agency_logo(portal, width):
    driver = chromium(width, 900)
    try:
        for path in ("/", "/password", "/danh-ba", "/vacation", "/mobileconfig"):
            driver.get(_url(portal, path))
            scroll, inner = overflow(driver)
            assert scroll <= inner, (width, path, scroll, inner)
            logo = driver.find_element("css selector", "header img")
            assert logo.get_attribute("src").endswith("/static/logo.svg") and logo.get_attribute("alt") == ""
            assert driver.execute_script("return arguments[0].naturalWidth", logo) > 0  # served and allowed by the CSP
            main = driver.find_element("tag name", "main").rect
            assert main["width"] <= 72 * 16 + 1  # lines stay readable on a wide screen
            screenshot(driver, f"w{width}-{path.strip('/') or 'home'}")
    finally:
        driver.quit()
