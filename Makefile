# Thin wrapper over meson: `make run` and `make check` are all a new user needs (README.md).
BUILD     ?= build
BUILD_SAN ?= build-san
MESON     ?= meson
JOBS      ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build run check check-unit check-sanitize check-valgrind check-format check-banned bench clean

all: build

deps:
	@scripts/install-deps

$(BUILD)/build.ninja:
	$(MESON) setup $(BUILD)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD) -j $(JOBS)

run: deps build
	@scripts/run $(BUILD)

$(BUILD_SAN)/build.ninja:
	$(MESON) setup $(BUILD_SAN) -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug

check-unit: build
	$(MESON) test -C $(BUILD) --print-errorlogs --num-processes $(JOBS)

check-sanitize: $(BUILD_SAN)/build.ninja
	ninja -C $(BUILD_SAN) -j $(JOBS)
	$(MESON) test -C $(BUILD_SAN) --print-errorlogs --num-processes $(JOBS)

check-valgrind: build
	$(MESON) test -C $(BUILD) --suite unit --print-errorlogs --num-processes $(JOBS) --logbase valgrind \
	    --wrap='valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible --show-leak-kinds=definite,indirect,possible' \
	    --timeout-multiplier 4

check-format:
	@tools/check-format

check-banned:
	@tools/check-banned

# Everything CI runs: static checks, the debug suite, the sanitizer suite, valgrind on units.
check: deps check-format check-banned check-unit check-sanitize check-valgrind
	@tools/test-summary $(BUILD)/meson-logs/testlog.json $(BUILD_SAN)/meson-logs/testlog.json \
	    $(BUILD)/meson-logs/valgrind*.json

bench: deps build
	$(BUILD)/bench/bench-certd
	bench/https-bench $(BUILD)/src/daemon/certd
	bench/ca-bench $(BUILD)/src/daemon/certd
	bench/tpm-bench $(BUILD)/src/daemon/certd
	bench/pins-bench $(BUILD)/src/daemon/certd

clean:
	rm -rf $(BUILD) $(BUILD_SAN)
