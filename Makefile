# Thin wrapper over meson: installs the Debian packages it needs when missing, then builds.
#   make demo   build and run the headline example
#   make test   plain + ASan/UBSan builds, the whole suite, one summary line at the end
SHELL := /bin/bash
DEBS := gcc clang liburing-dev libc-ares-dev libcriterion-dev meson ninja-build pkg-config python3 \
  dnsmasq-base
BENCH_DEBS := libuv1-dev python3-uvloop linux-perf
BUILD ?= build
ASAN ?= build-asan
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps bench-deps build build-asan build-clang demo test test-plain test-asan bench format clean

all: build

deps:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "make: installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; fi

bench-deps: deps
	@missing=""; for p in $(BENCH_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "make: installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; fi

build: deps
	@[ -f $(BUILD)/build.ninja ] || meson setup $(BUILD) >/dev/null
	@ninja -C $(BUILD) >/dev/null || ninja -C $(BUILD)

build-asan: deps
	@[ -f $(ASAN)/build.ninja ] || meson setup $(ASAN) -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
	@ninja -C $(ASAN) >/dev/null || ninja -C $(ASAN)

demo: build
	./$(BUILD)/examples/downloads

test-plain: build
	-meson test -C $(BUILD) --print-errorlogs --num-processes 2

test-asan: build-asan
	-ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  meson test -C $(ASAN) --print-errorlogs --num-processes 2 --wrapper $(CURDIR)/tests/sanitizer_check.sh

# The library must also build warning-free with clang.
build-clang: deps
	@[ -f build-clang/build.ninja ] || CC=clang meson setup build-clang >/dev/null
	@ninja -C build-clang >/dev/null || ninja -C build-clang

test: test-plain test-asan build-clang
	@python3 tests/summary.py $(BUILD) $(ASAN)

bench: bench-deps
	bash bench/run.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN) build-clang build-bench
