# Two commands for a new user: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The console's browser tests drive Debian's headless Chromium (tests/e2e/test_console.py).
CHROMIUM := /usr/bin/chromium
CJK_FONT := /usr/share/fonts/truetype/wqy/wqy-microhei.ttc

.PHONY: install run test lint format openapi lock clean

install: $(STAMP) $(CHROMIUM) $(CJK_FONT)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# Installed once, where apt-get can (as root or with password-less sudo); without them only
# the console's browser tests cannot run (or show Chinese as boxes), so this warns instead
# of failing the install.
define apt_install
	@if ! command -v apt-get >/dev/null; then \
		echo "warning: no apt-get here: install $(1) for the browser tests" >&2; exit 0; \
	fi; \
	if [ "$$(id -u)" = 0 ]; then as=""; elif sudo -n true 2>/dev/null; then as=sudo; else \
		echo "warning: run 'sudo apt-get install $(1)' for the browser tests" >&2; exit 0; \
	fi; \
	apt="env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(1)"; \
	$$as $$apt || { $$as apt-get update -q && $$as $$apt; }
endef

$(CHROMIUM):
	$(call apt_install,chromium chromium-driver)

# Chromium renders Chinese (the console speaks zh-CN) only with a CJK font installed.
$(CJK_FONT):
	$(call apt_install,fonts-wqy-microhei)

run: install
	$(BIN)/leadflow dev

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: install lint
	$(BIN)/pytest -n 2 --dist loadgroup --durations=25

# The API's description, checked in (tests/integration/test_openapi_document.py fails when
# it is out of date).
openapi: install
	$(BIN)/leadflow openapi --output docs/openapi.json

# requirements.lock: every package the production image installs (the project's dependencies
# and, from [build-system] on stdin, its build backend; no extras), pinned with its hashes for
# every platform. Run after changing them in pyproject.toml (tests/unit/test_image.py fails
# until you do); needs PyPI.
lock: $(STAMP)
	$(BIN)/python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['build-system']['requires'], sep='\n')" \
	| $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
		--custom-compile-command 'make lock' --output-file requirements.lock pyproject.toml -

clean:
	rm -rf $(VENV) .leadflow .pytest_cache .mypy_cache .ruff_cache
