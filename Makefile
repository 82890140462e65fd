# oktoscripts: `make up` starts the platform, `make test` runs every test.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python

.PHONY: install up test lint bench clean browser

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py $(wildcard oktoscripts/usp/proto/*.proto)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

up: install
	$(PY) manage.py up

lint: install
	$(VENV)/bin/ruff check .

test: lint browser
	$(VENV)/bin/pytest

# The IDE's browser tests drive Debian's chromium: install it when missing and we are root
# (elsewhere those tests skip and say why).
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -q && apt-get install -y -q chromium; fi

bench: install
	$(PY) -m bench

clean:
	rm -rf $(VENV) var
