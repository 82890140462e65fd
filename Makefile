# oktoscripts: `make up` starts the platform, `make test` runs every test.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python

.PHONY: install up test lint bench clean browser ldap-system docs

install: $(VENV)/.installed

# LDAP sign-in (the `ldap` extra) is installed when python-ldap can be built
# here; its tests skip and say why otherwise.
$(VENV)/.installed: pyproject.toml setup.py $(wildcard oktoscripts/usp/proto/*.proto) | ldap-system
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	@if [ -f /usr/include/ldap.h ] && [ -f /usr/include/sasl/sasl.h ]; then \
		$(VENV)/bin/pip install -q -e '.[dev,ldap]'; \
	else echo "LDAP sign-in not installed: python-ldap needs libldap2-dev and libsasl2-dev"; fi
	touch $@

up: install
	$(PY) manage.py up

lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

# docs/lua-api.md from the binding declarations (tests/test_docs.py fails when it is stale).
docs: install
	$(PY) -m oktoscripts.bindings.reference

test: lint browser
	$(VENV)/bin/pytest

# The IDE's browser tests drive Debian's chromium: install it when missing and we are root
# (elsewhere those tests skip and say why).
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -q && apt-get install -y -q chromium; fi

# python-ldap compiles against OpenLDAP's and Cyrus SASL's headers; the LDAP
# tests sign in against Debian's slapd. Installed when missing and we are root.
ldap-system:
	@if { [ ! -f /usr/include/ldap.h ] || [ ! -f /usr/include/sasl/sasl.h ] || [ ! -x /usr/sbin/slapd ]; } \
		&& [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			libldap2-dev libsasl2-dev slapd; fi

bench: install
	$(PY) -m bench

clean:
	rm -rf $(VENV) var
