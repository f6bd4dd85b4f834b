# Thin wrapper over meson: installs the Debian packages it needs when missing, then builds.
#   make demo   build and run the headline example
#   make test   plain + ASan/UBSan builds, the whole suite, the thread pool under TSan, one
#               summary line at the end
SHELL := /bin/bash
DEBS := gcc clang liburing-dev libc-ares-dev libcriterion-dev meson ninja-build pkg-config python3 \
  dnsmasq-base
BENCH_DEBS := libuv1-dev python3-uvloop linux-perf nginx-light wrk curl
BUILD ?= build
ASAN ?= build-asan
TSAN ?= build-tsan
# Run under ThreadSanitizer (their sources carry the Criterion-under-TSan workaround).
TSAN_TESTS := test_executor_thread test_executor_thread_cancel test_executor_thread_loop \
  test_executor_thread_map test_executor_process test_executor_process_cancel \
  test_executor_process_crash test_executor_process_payload test_executor_process_shm \
  test_executor_process_map test_executor_process_start test_executor_completions
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps bench-deps build build-asan build-tsan build-clang demo test test-plain test-asan \
  test-tsan bench format clean

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

build-tsan: deps
	@[ -f $(TSAN)/build.ninja ] || meson setup $(TSAN) -Db_sanitize=thread >/dev/null
	@ninja -C $(TSAN) >/dev/null || ninja -C $(TSAN)

demo: build
	./$(BUILD)/examples/downloads

test-plain: build
	-meson test -C $(BUILD) --print-errorlogs --num-processes 2

test-asan: build-asan
	-ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  meson test -C $(ASAN) --print-errorlogs --num-processes 2 --wrapper $(CURDIR)/tests/sanitizer_check.sh

# halt_on_error: the first race ends the test process, which Criterion reports as a failure.
test-tsan: build-tsan
	-TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  meson test -C $(TSAN) --print-errorlogs --num-processes 2 $(TSAN_TESTS)

# The library must also build warning-free with clang.
build-clang: deps
	@[ -f build-clang/build.ninja ] || CC=clang meson setup build-clang >/dev/null
	@ninja -C build-clang >/dev/null || ninja -C build-clang

test: test-plain test-asan test-tsan build-clang
	@python3 tests/summary.py $(BUILD) $(ASAN) $(TSAN)

bench: bench-deps
	bash bench/run.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN) $(TSAN) build-clang build-bench
