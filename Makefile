# edge-agent developer entry points. Two set-up commands matter (see README):
#   make demo   - the agent on a scratch root, this machine's real hardware, a local registrar
#   make test   - install everything the tests need, then run them (what .ci/run calls)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := python3-venv openssl curl iproute2 udev umockdev gir1.2-umockdev-1.0 python3-gi \
	debootstrap systemd-container wrk hyperfine lshw hwinfo prometheus nvme-cli lintian lvm2 xfsprogs postgresql-15
APT_PACKAGES += qemu-system-x86 qemu-utils ovmf swtpm swtpm-tools mtools dosfstools fdisk e2fsprogs
STAMP_APT := $(VENV)/.apt-stamp
STAMP_PIP := $(VENV)/.pip-stamp

.PHONY: deps demo test test-fast lint system-test vm-test vm-record bench clean

include image/image.mk

$(STAMP_APT):
	@mkdir -p $(VENV)
	@if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if [ -n "$$missing" ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  fi; \
	else echo "not root or no apt-get: install by hand: $(APT_PACKAGES)"; fi
	@touch $@

$(STAMP_PIP): pyproject.toml $(STAMP_APT)
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

deps: $(STAMP_PIP)

demo: deps
	$(PY) scripts/demo.py

test: deps lint
	$(PY) -m pytest -q -m "not system"

test-fast: deps
	$(PY) -m pytest -q -m "not system and not slow and not umockdev"

lint: deps
	$(VENV)/bin/ruff check agent tests bench scripts
	$(VENV)/bin/ruff format --check agent tests bench scripts
	$(VENV)/bin/mypy

# make deb [OUT=dir] [WHEELS=dir]: edge-agent_<version>_amd64.deb (docs/packaging.md)
.PHONY: deb
deb: deps
	bash packaging/deb/build.sh $(if $(OUT),--out $(OUT)) $(if $(WHEELS),--wheels $(WHEELS))

system-test: deps
	bash tests/system/run.sh

# The VM tier (docs/vm.md): the test disk image under QEMU/TCG, ~10 minutes on 2 cores.
# vm-record also refreshes tests/fixtures/recorded-qemu-vm.* from the VM it boots.
vm-test: deps
	EDGE_AGENT_VM_TESTS=1 $(PY) -m pytest -q -s -m vm tests/vm

vm-record: deps
	EDGE_AGENT_VM_TESTS=1 EDGE_AGENT_VM_RECORD=1 $(PY) -m pytest -q -s -m vm tests/vm

bench: deps
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) scratch .pytest_cache .mypy_cache .ruff_cache
