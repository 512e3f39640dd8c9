# Two entry points: `make run` (a working server in ./data) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Real mail clients the end-to-end tests drive (and fail2ban-regex, which reads our login log;
# zip, which writes the classified-guard tests' password-protected archive), and the Debian
# packages that provide them.
CLIENT_BINARIES := swaks mbsync fetchmail mutt getmail offlineimap fail2ban-regex zip
CLIENT_PACKAGES := swaks isync fetchmail mutt getmail6 offlineimap3 fail2ban zip
# The reference IMAP server of the differential tests (tests/test_imap_differential.py): the tests
# start a private instance of their own; a system Dovecot the package may start is not used.
ORACLE_BINARIES := dovecot
ORACLE_PACKAGES := dovecot-imapd
# The content filters the filter tests start privately (tests/filter_daemons.py): SpamAssassin,
# ClamAV and its milter, OpenDKIM as a milter.
FILTER_BINARIES := spamd clamd clamav-milter opendkim
FILTER_PACKAGES := spamassassin spamd clamav-daemon clamav-milter opendkim
# A real browser for the HTML pages and reports (selenium drives it headless).
BROWSER_BINARIES := chromium chromedriver
BROWSER_PACKAGES := chromium chromium-driver
# The LDAP directory the LDAP tests start privately (tests/ldap_daemon.py): OpenLDAP's slapd.
DIRECTORY_BINARIES := slapd slapadd
DIRECTORY_PACKAGES := slapd
# systemd-analyze checks contrib/systemd/mailserver.service (tests/test_contrib.py).
CONTRIB_BINARIES := systemd-analyze
CONTRIB_PACKAGES := systemd

.PHONY: run test clients

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# First start without data/mailserver.yaml writes it (with a self-signed certificate and an empty
# database); later starts use it.
run: $(BIN)/python
	$(BIN)/pip install -q -e .
	$(BIN)/mailserver serve

# pytest's own exit status decides (5 = no tests collected is a failure too).
test: $(BIN)/python clients
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/pytest -q -n 4

clients:
	@missing=""; PATH="$$PATH:/usr/sbin:/sbin"; \
	for b in $(CLIENT_BINARIES) $(ORACLE_BINARIES) $(FILTER_BINARIES) $(BROWSER_BINARIES) $(DIRECTORY_BINARIES) $(CONTRIB_BINARIES); do command -v $$b >/dev/null 2>&1 || missing="$$missing $$b"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing mail clients and Dovecot for the tests (missing:$$missing)"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $(CLIENT_PACKAGES) $(ORACLE_PACKAGES) $(FILTER_PACKAGES) $(BROWSER_PACKAGES) $(DIRECTORY_PACKAGES) $(CONTRIB_PACKAGES); \
	else \
		echo "warning: test tools missing:$$missing; run as root on Debian/Ubuntu to install $(CLIENT_PACKAGES) $(ORACLE_PACKAGES) $(FILTER_PACKAGES) $(BROWSER_PACKAGES) $(DIRECTORY_PACKAGES) $(CONTRIB_PACKAGES)" >&2; \
	fi
