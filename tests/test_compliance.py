"""``mailserver compliance``: the running configuration against a regulation (R-* matrix) — the
checks as pure functions, the command on a real initialised data directory, and the HTML page
in headless Chromium (Debian's chromium and chromium-driver through selenium)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from config.filters import Clamd, Spamd
from config.settings import Settings
from mailserver.compliance import checks, report
from mailserver.compliance.matrix import profile_settings

ROOT = Path(__file__).resolve().parent.parent
EXIT_OK = 0
GIB = 1024**3


def with_(settings: Settings, **sections) -> Settings:
    """``settings`` with some sections' fields changed: with_(s, quota={"mailbox": 3 * GIB})."""
    update = {name: getattr(settings, name).model_copy(update=fields) for name, fields in sections.items()}
    return settings.model_copy(update=update)


def broken_ids(rep: report.Report) -> set[str]:
    return {i.id for i in rep.broken()}


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MAILSERVER_CONFIG", "MAILSERVER_DEBUG")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "mailserver", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


# -- the checks, pure ----------------------------------------------------------------------------------

@pytest.mark.requirement("R-QUOTA-1")
def test_a_mailbox_quota_raised_over_the_profiles_limit_breaks_the_rule():
    own = profile_settings("lamdong")
    assert checks.compare("quota.mailbox", own, own) is None
    raised = checks.compare("quota.mailbox", with_(own, quota={"mailbox": 2 * GIB + 1}), own)
    assert raised.breaks and "2 GiB" in raised.en
    unlimited = checks.compare("quota.mailbox", with_(own, quota={"mailbox": None}), own)
    assert unlimited.breaks and unlimited.running == "unlimited"
    lowered = checks.compare("quota.mailbox", with_(own, quota={"mailbox": GIB}), own)
    assert not lowered.breaks  # a stricter limit still meets art. 6


@pytest.mark.requirement("R-PASS-2", "R-PASS-3")
def test_weaker_password_rules_break_and_stronger_ones_do_not():
    own = profile_settings("hcm-q4")
    assert checks.compare("passwords.min_classes", with_(own, passwords={"min_classes": 3}), own).breaks
    assert checks.compare("passwords.unlock_wait_days", with_(own, passwords={"unlock_wait_days": 4}), own).breaks
    assert not checks.compare("passwords.min_length", with_(own, passwords={"min_length": 12}), own).breaks
    most = profile_settings("most")
    assert checks.compare("passwords.reject_account_name", with_(most, passwords={"reject_account_name": False}), most).breaks


@pytest.mark.requirement("R-LIFE-4", "R-LIFE-5", "R-PASS-1")
def test_the_lifecycle_run_switched_off_breaks_every_deadline_it_applies():
    most = profile_settings("most")
    assert most.lifecycle.run_at is None  # the shipped default: off
    rep = report.build(most)
    assert {"R-PASS-1", "R-LIFE-4"} <= broken_ids(rep)
    finding = next(f for i in rep.items if i.id == "R-LIFE-4" for f in i.findings)
    assert "lifecycle run" in finding.en and "lifecycle.lock_after_inactive_months" in finding.en
    on = report.build(with_(most, lifecycle={"run_at": "03:00"}))
    assert not {"R-PASS-1", "R-LIFE-4"} & broken_ids(on)
    assert checks.lifecycle_off(profile_settings("none")) is None  # no deadline to apply


@pytest.mark.requirement("R-SEC-1")
def test_spam_and_virus_filters_off_are_flagged_under_every_regulation():
    for profile in ("molisa", "lamdong", "most", "moj"):
        assert "R-SEC-1" in broken_ids(report.build(profile_settings(profile))), profile
    scanned = with_(profile_settings("most"), filters={"spamd": Spamd(), "clamd": Clamd()})
    assert checks.filters_off(scanned) == []


def test_judged_against_another_profile_its_rules_are_the_measure():
    rep = report.build(profile_settings("none"), "hcm-q4")
    assert rep.profile == "hcm-q4" and rep.running_profile == "none"
    assert {"R-QUOTA-1", "R-PASS-3", "R-ADDR-3"} <= broken_ids(rep)  # 2 GiB > 1 GiB, 3 classes < 4, address rule


# -- the command -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def most_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("compliance")
    result = run(root, "init", "--profile", "most")
    assert result.returncode == EXIT_OK, result.stderr
    return root


def test_compliance_prints_articles_values_and_breaches(most_dir):
    result = run(most_dir, "compliance")
    assert result.returncode == EXIT_OK, result.stderr
    assert "Decision 4105/QĐ-BKHCN" in result.stdout
    assert "R-PASS-2 — art. 17.4: enforced by the server" in result.stdout
    assert "passwords.min_classes: 3" in result.stdout
    assert "!! R-LIFE-4" in result.stdout and "lifecycle.run_at: null" in result.stdout
    assert "$ mailserver db backup DIR" not in result.stdout  # R-SEC-4 is not in Decision 4105
    assert "Traceback" not in result.stderr


def test_compliance_json_follows_overrides_of_the_running_configuration(most_dir):
    result = run(most_dir, "--set", "lifecycle.run_at=03:00", "--set", "quota.mailbox=3GB",
                 "compliance", "--profile", "lamdong", "--format", "json")
    assert result.returncode == EXIT_OK, result.stderr
    data = json.loads(result.stdout)
    items = {i["id"]: i for i in data["items"]}
    assert items["R-QUOTA-1"]["broken"] and items["R-QUOTA-1"]["settings"]["quota.mailbox"] == "3 GiB"
    assert items["R-LIFE-3"]["kind"] == "enforced"
    assert items["R-BOX-4"]["kind"] == "not-applicable"  # Decision 61 has no group mailbox
    assert data["summary"]["broken"] == sum(1 for i in data["items"] if i["broken"])


@pytest.mark.skipif(not (shutil.which("chromium") and shutil.which("chromedriver")) and os.environ.get("CI") != "true",
                    reason="Debian chromium and chromium-driver not installed")
@pytest.mark.parametrize("width, height", [(390, 844), (1280, 900)])
def test_the_html_report_reads_in_vietnamese_then_english_in_a_real_browser(most_dir, tmp_path, width, height):
    from selenium import webdriver
    from selenium.webdriver.common.by import By

    page = tmp_path / "bao-cao.html"
    result = run(most_dir, "compliance", "--format", "html", "-o", str(page))
    assert result.returncode == EXIT_OK, result.stderr
    html = page.read_text(encoding="utf-8")
    assert "<script" not in html and "http://" not in html and "https://" not in html  # self-contained
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium")
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=shutil.which("chromedriver")))
    try:
        driver.get(page.as_uri())
        heading = driver.find_element(By.TAG_NAME, "h1").text
        assert heading.index("Báo cáo tuân thủ") < heading.index("compliance report")  # Vietnamese first
        broken = driver.find_elements(By.CSS_SELECTOR, "tr.broken")
        assert any("R-LIFE-4" in row.text for row in broken)
        assert "lifecycle.run_at" in driver.find_element(By.TAG_NAME, "body").text
        overflow = driver.execute_script("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the page scrolls sideways by {overflow}px at {width}px"
        driver.save_screenshot(str(tmp_path / f"compliance-{width}.png"))
    finally:
        driver.quit()
