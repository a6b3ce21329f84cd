# clawgrid — one binary, plain make.
# Sources are discovered: every src/**/*.c goes into libclawgrid.a (src/cli/main.c is the entry point),
# every tests/**/test_*.c becomes a ctest test, every tests/**/test_*.sh too, every tests/fuzz/fuzz_*.c a
# libFuzzer target whose seed corpus is also replayed by `make test`.

BUILD   ?= build
CC      ?= cc
PREFIX  ?= /usr/local
SAN     ?=
JOBS    ?= $(shell nproc 2>/dev/null || echo 2)

PKGS     := libevent libevent_pthreads libcurl jansson sqlite3 libsodium libsecp256k1 nettle hogweed gmp \
            libprotobuf-c libseccomp miniupnpc
WARN     := -Wall -Wextra -Werror -Wstrict-prototypes -Wno-unused-parameter
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -DENABLE_STRNATPMPERR $(WARN) -g -Isrc -MMD -MP
PKG_CFLAGS   = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS     = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lnatpmp -ldl -lpthread -lm
CMOCKA_LIBS  = $(shell pkg-config --libs cmocka 2>/dev/null)

ifeq ($(SAN),1)
OPT := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
else ifeq ($(SAN),fuzz)
OPT := -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
       -DCLAWGRID_FUZZ=1
else
OPT := -O2
endif

CFLAGS  = $(CFLAGS_BASE) $(OPT) $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS = $(OPT) $(EXTRA_LDFLAGS)

SRC      := $(shell find src -name '*.c' ! -path 'src/cli/main.c' | sort)
OBJ      := $(SRC:%.c=$(BUILD)/%.o)
LIB      := $(BUILD)/libclawgrid.a
BIN      := $(BUILD)/clawgrid
TLIB_SRC := $(shell find tests/lib -name '*.c' 2>/dev/null | sort)
TLIB_OBJ := $(TLIB_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(shell find tests -name 'test_*.c' ! -path 'tests/sandbox/progs/*' 2>/dev/null | sort)
TEST_BIN := $(TEST_SRC:%.c=$(BUILD)/%)
TEST_SH  := $(shell find tests -name 'test_*.sh' 2>/dev/null | sort)
FUZZ_SRC := $(shell find tests/fuzz -name 'fuzz_*.c' 2>/dev/null | sort)
FUZZ_REPLAY := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz-replay/%)
BENCH_SRC := $(shell find bench -name '*.c' 2>/dev/null | sort)
BENCH_BIN := $(BENCH_SRC:%.c=$(BUILD)/%)

.PHONY: all deps run test asan fuzz fuzz-bins bench install clean check-style format ctest-file
all: $(BIN)

deps:
	@bash scripts/deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(OBJ)
	@mkdir -p $(dir $@)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(BUILD)/src/cli/main.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# Unit, integration and e2e tests: cmocka programs linked with the library and the test support code.
$(BUILD)/tests/%: tests/%.c $(LIB) $(TLIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/lib -o $@ $< $(TLIB_OBJ) $(LIB) $(LDFLAGS) $(CMOCKA_LIBS) $(PKG_LIBS)

# Fuzz targets built with a plain main() that replays the seed corpus (runs in `make test`).
$(BUILD)/fuzz-replay/%: tests/fuzz/%.c tests/fuzz/replay_main.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< tests/fuzz/replay_main.c $(LIB) $(LDFLAGS) $(PKG_LIBS)

$(BUILD)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDFLAGS) $(PKG_LIBS)

# ctest needs only a CTestTestfile.cmake; we write it ourselves (no cmake project).
ctest-file: $(BIN) $(TEST_BIN) $(FUZZ_REPLAY)
	@BUILD=$(BUILD) bash scripts/gen-ctest.sh "$(TEST_BIN)" "$(TEST_SH)" "$(FUZZ_REPLAY)" > $(BUILD)/CTestTestfile.cmake

test: deps
	@bash scripts/npm-deps.sh
	@bash scripts/llama-deps.sh
	@$(MAKE) --no-print-directory -j$(JOBS) ctest-file
	cd $(BUILD) && CLAWGRID_BIN=$(abspath $(BIN)) CLAWGRID_ROOT=$(CURDIR) ctest --output-on-failure -j$(JOBS) \
	  --timeout 600 $(CTEST_ARGS)

asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan SAN=1 test

# `make fuzz` builds every target with clang and runs each for FUZZ_SECONDS (FUZZ=name to pick one).
fuzz: deps
	@$(MAKE) --no-print-directory BUILD=build-fuzz SAN=fuzz CC=clang fuzz-bins
	@bash scripts/run-fuzz.sh build-fuzz/fuzz $${FUZZ_SECONDS:-30} $(FUZZ)

fuzz-bins: $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)

$(BUILD)/fuzz/%: tests/fuzz/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDFLAGS) -fsanitize=fuzzer $(PKG_LIBS)

bench: deps
	@$(MAKE) --no-print-directory -j$(JOBS) $(BIN) $(BENCH_BIN)
	@bash scripts/npm-deps.sh tests bench
	@bash scripts/llama-deps.sh
	@CLAWGRID_BIN=$(abspath $(BIN)) BUILD=$(BUILD) bash bench/run.sh

run: deps
	@bash scripts/llama-deps.sh
	@$(MAKE) --no-print-directory -j$(JOBS) $(BIN)
	@$(BIN) init --quiet-if-exists
	exec $(BIN) node

install: $(BIN)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/share/clawgrid $(DESTDIR)/lib/systemd/system
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/clawgrid
	install -m 0644 docs/clawgrid.1 $(DESTDIR)$(PREFIX)/share/man/man1/clawgrid.1
	install -m 0644 contrib/config.example.json $(DESTDIR)$(PREFIX)/share/clawgrid/config.example.json
	install -m 0644 contrib/clawgrid.service $(DESTDIR)/lib/systemd/system/clawgrid.service

check-style:
	@bash scripts/check-style.sh

format:
	clang-format -i $$(find src tests bench -name '*.[ch]')

clean:
	rm -rf build build-asan build-fuzz

# The sandbox embeds its seccomp policy file with .incbin (src/sandbox/policy_data.c).
$(BUILD)/src/sandbox/policy_data.o: src/sandbox/policy/default.policy

-include $(OBJ:.o=.d) $(BUILD)/src/cli/main.d
