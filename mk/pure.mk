# Build of the pure-C layers (src/raft, src/multiraft) without PostgreSQL:
# a static library, cmocka unit tests, the simulator and the fuzzers.
# Included by the top-level Makefile; every path is relative to the repo root.
# Sources are picked up by wildcard so that adding a file needs no edit here.

PURE_CC      ?= gcc
PURE_STD     := -std=c11 -D_POSIX_C_SOURCE=200809L
PURE_WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror
PURE_INC     := -Isrc/raft -Isrc/multiraft -Itest/common
SAN_FLAGS    := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

PURE_SRCS    := $(wildcard src/raft/*.c src/multiraft/*.c)
TESTLIB_SRCS := $(wildcard test/common/*.c)
UNIT_SRCS    := $(wildcard test/unit/test_*.c)
SIM_SRCS     := $(wildcard test/sim/*.c)

# Two flavours: "opt" (benchmarks, -O2) and "san" (tests, ASan + UBSan).
OPT_DIR := build/opt
SAN_DIR := build/san
OPT_CFLAGS := $(PURE_STD) $(PURE_WARN) $(PURE_INC) -O2 -g
SAN_CFLAGS := $(PURE_STD) $(PURE_WARN) $(PURE_INC) -O1 -g $(SAN_FLAGS)

$(OPT_DIR)/%.o: %.c $(wildcard src/raft/*.h src/multiraft/*.h test/common/*.h)
	@mkdir -p $(dir $@)
	$(PURE_CC) $(OPT_CFLAGS) -c $< -o $@
$(SAN_DIR)/%.o: %.c $(wildcard src/raft/*.h src/multiraft/*.h test/common/*.h)
	@mkdir -p $(dir $@)
	$(PURE_CC) $(SAN_CFLAGS) -c $< -o $@

$(OPT_DIR)/libmrcore.a: $(PURE_SRCS:%.c=$(OPT_DIR)/%.o) $(TESTLIB_SRCS:%.c=$(OPT_DIR)/%.o)
	@rm -f $@; ar rcs $@ $^
$(SAN_DIR)/libmrcore.a: $(PURE_SRCS:%.c=$(SAN_DIR)/%.o) $(TESTLIB_SRCS:%.c=$(SAN_DIR)/%.o)
	@rm -f $@; ar rcs $@ $^

# A third flavour, MemorySanitizer (clang only, and it cannot share a build with
# ASan): reads of uninitialised memory, which ASan does not see (docs/sim-findings.md,
# finding 19).  cmocka and libc stay uninstrumented; neither hands us memory to read.
MSAN_CC     ?= $(shell command -v clang-14 || command -v clang)
MSAN_DIR    := build/msan
MSAN_CFLAGS := $(PURE_STD) $(PURE_WARN) $(PURE_INC) -O1 -g -fno-omit-frame-pointer \
               -fsanitize=memory -fsanitize-memory-track-origins
$(MSAN_DIR)/%.o: %.c $(wildcard src/raft/*.h src/multiraft/*.h test/common/*.h)
	@mkdir -p $(dir $@)
	$(MSAN_CC) $(MSAN_CFLAGS) -c $< -o $@
$(MSAN_DIR)/libmrcore.a: $(PURE_SRCS:%.c=$(MSAN_DIR)/%.o) $(TESTLIB_SRCS:%.c=$(MSAN_DIR)/%.o)
	@rm -f $@; ar rcs $@ $^

UNIT_BINS := $(UNIT_SRCS:test/unit/%.c=$(SAN_DIR)/unit/%)
MSAN_UNIT_BINS := $(UNIT_SRCS:test/unit/%.c=$(MSAN_DIR)/unit/%)
$(MSAN_DIR)/unit/%: test/unit/%.c $(MSAN_DIR)/libmrcore.a $(wildcard test/unit/*.h)
	@mkdir -p $(dir $@)
	$(MSAN_CC) $(MSAN_CFLAGS) $< -o $@ $(MSAN_DIR)/libmrcore.a -lcmocka
MSIM_SRCS := test/msim/msim.c test/msim/msim_admin.c test/msim/msim_scenarios.c
MSAN_MSIM_BIN := $(MSAN_DIR)/msim/msim
$(MSAN_MSIM_BIN): $(MSIM_SRCS) test/msim/msim.h $(MSAN_DIR)/libmrcore.a
	@mkdir -p $(dir $@)
	$(MSAN_CC) $(MSAN_CFLAGS) $(MSIM_SRCS) -o $@ $(MSAN_DIR)/libmrcore.a

$(SAN_DIR)/unit/%: test/unit/%.c $(SAN_DIR)/libmrcore.a $(wildcard test/unit/*.h)
	@mkdir -p $(dir $@)
	$(PURE_CC) $(SAN_CFLAGS) $< -o $@ $(SAN_DIR)/libmrcore.a -lcmocka

SIM_BIN := $(SAN_DIR)/sim/mrsim
$(SIM_BIN): $(SIM_SRCS) $(SAN_DIR)/libmrcore.a
	@mkdir -p $(dir $@)
	$(PURE_CC) $(SAN_CFLAGS) -Itest/sim $(SIM_SRCS) -o $@ $(SAN_DIR)/libmrcore.a
SIM_OPT_BIN := $(OPT_DIR)/sim/mrsim
$(SIM_OPT_BIN): $(SIM_SRCS) $(OPT_DIR)/libmrcore.a
	@mkdir -p $(dir $@)
	$(PURE_CC) $(OPT_CFLAGS) -Itest/sim $(SIM_SRCS) -o $@ $(OPT_DIR)/libmrcore.a

# Many-group simulator, heartbeat measurement and multi-raft benchmark (test/msim,
# bench/multiraft), libFuzzer targets (test/fuzz/run builds them with clang).
MSIM_BIN   := $(SAN_DIR)/msim/msim
HB_BIN     := $(SAN_DIR)/msim/sim-heartbeats
MRBENCH_BIN := $(OPT_DIR)/bench/mr_bench
$(MSIM_BIN): $(MSIM_SRCS) test/msim/msim.h $(SAN_DIR)/libmrcore.a
	@mkdir -p $(dir $@)
	$(PURE_CC) $(SAN_CFLAGS) $(MSIM_SRCS) -o $@ $(SAN_DIR)/libmrcore.a
$(HB_BIN): test/msim/sim_heartbeats.c $(SAN_DIR)/libmrcore.a
	@mkdir -p $(dir $@)
	$(PURE_CC) $(SAN_CFLAGS) $< -o $@ $(SAN_DIR)/libmrcore.a
$(MRBENCH_BIN): bench/multiraft/mr_bench.c $(OPT_DIR)/libmrcore.a
	@mkdir -p $(dir $@)
	$(PURE_CC) $(OPT_CFLAGS) $< -o $@ $(OPT_DIR)/libmrcore.a

MSIM_ARGS  ?=
BENCH_ARGS ?=
FUZZ_SECONDS ?= 30
FUZZ_RUNS    ?=
FUZZ_SEED    ?= 1
.PHONY: msim sim-heartbeats bench-multiraft fuzz
msim: $(MSIM_BIN)
	$(MSIM_BIN) $(MSIM_ARGS)
sim-heartbeats: $(HB_BIN)
	$(HB_BIN)
bench-multiraft: $(MRBENCH_BIN)
	$(MRBENCH_BIN) $(BENCH_ARGS)
fuzz:
	FUZZ_RUNS="$(FUZZ_RUNS)" FUZZ_SEED="$(FUZZ_SEED)" test/fuzz/run $(FUZZ_SECONDS)

.PHONY: pure unit-build unit sim sim-opt msan msan-msim
pure: $(OPT_DIR)/libmrcore.a $(SAN_DIR)/libmrcore.a
unit-build: $(UNIT_BINS)
# Runs every unit test binary; scripts/run-unit sums cmocka's results.
unit: unit-build
	@scripts/run-unit $(UNIT_BINS)
# The unit tests again under MemorySanitizer (scripts/test's msan suite), and the
# many-group simulator under it (by hand: make msan-msim MSIM_ARGS="--seeds 40").
msan: $(MSAN_UNIT_BINS)
	@scripts/run-unit $(MSAN_UNIT_BINS)
msan-msim: $(MSAN_MSIM_BIN)
	$(MSAN_MSIM_BIN) $(MSIM_ARGS)

SEEDS ?= 500
STEPS ?= 2000
sim: $(SIM_BIN)
	$(SIM_BIN) --seeds $(SEEDS) --steps $(STEPS)
sim-opt: $(SIM_OPT_BIN)
# Far more seeds than CI runs, on the optimised build (not part of scripts/test):
# docs/sim-findings.md, findings 10 and 11 came from it.
SOAK_SEEDS ?= 100000
SOAK_FIRST ?= 1000000
SOAK_STEPS ?= 4000
.PHONY: sim-soak
sim-soak: $(SIM_OPT_BIN)
	$(SIM_OPT_BIN) --seeds $(SOAK_SEEDS) --first $(SOAK_FIRST) --steps $(SOAK_STEPS)
