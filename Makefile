# multiraft — PGXS build of the extension, plus the pure-C layers' own build
# (mk/pure.mk: static library, unit tests, simulator, fuzzers; no server needed).

EXTENSION   = multiraft
MODULE_big  = multiraft
DATA        = sql/multiraft--0.1.sql
PGFILEDESC  = "multiraft - Multi-Raft consensus groups for PostgreSQL"

PURE_SRCS   := $(wildcard src/raft/*.c src/multiraft/*.c)
PG_SRCS     := $(wildcard src/pg/*.c)
PROTO_GEN   := proto/multiraft.pb-c.c
# The core's storage conformance suite also runs inside the server, against the
# tables: multiraft.storage_selftest() (src/pg/storage_selftest.c).
CONFORMANCE := test/common/storage_conformance.c
OBJS        = $(PG_SRCS:.c=.o) $(PURE_SRCS:.c=.o) $(CONFORMANCE:.c=.o) $(PROTO_GEN:.c=.o)

# pg_regress: sql/<name>.sql against expected/<name>.out in a temporary instance
# that preloads the library (PGXS has no "make check").
REGRESS      = $(patsubst sql/%.sql,%,$(filter-out sql/multiraft--%,$(wildcard sql/*.sql)))
REGRESS_OPTS = --temp-config=test/regress.conf --temp-instance=tmp_check/regress \
               --load-extension=multiraft
# TAP: numbered multi-node tests in test/t (PostgreSQL::Test::Cluster + prove).
TAP_TESTS    = 1
PROVE_TESTS  = test/t/*.pl

PG_CONFIG  ?= pg_config
PG_CPPFLAGS = -Isrc/raft -Isrc/multiraft -Isrc/pg -Iproto -Itest/common -I$(libpq_srcdir)
SHLIB_LINK_INTERNAL = $(libpq)
SHLIB_LINK += -lprotobuf-c
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

override CFLAGS += -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Werror
# Header dependencies: each object gets a .d file next to it.
override CFLAGS += -MMD -MP
-include $(OBJS:.o=.d)
# The pure layers are C11 with declarations where they are used.
$(PURE_SRCS:.c=.o) $(CONFORMANCE:.c=.o): override CFLAGS += -std=c11 -D_POSIX_C_SOURCE=200809L -Wno-declaration-after-statement

# protoc-c output is generated, never committed.
proto/%.pb-c.c proto/%.pb-c.h: proto/%.proto
	protoc-c --c_out=. $<
$(PG_SRCS:.c=.o): proto/multiraft.pb-c.h
$(PROTO_GEN:.c=.o): override CFLAGS += -Wno-error
EXTRA_CLEAN = test/tools/mr_link proto/*.pb-c.c proto/*.pb-c.h build tmp_check sql/multiraft--0.1.sql $(OBJS:.o=.d)

# The extension script is assembled from one part per concern (sql/ext/NN_*.sql).
EXT_PARTS := $(sort $(wildcard sql/ext/*.sql))
sql/multiraft--0.1.sql: $(EXT_PARTS)
	( printf '%s\n' '-- Generated from sql/ext/*.sql by the Makefile: edit those files.' \
	  '\echo Use "CREATE EXTENSION multiraft" to load this file. \quit'; \
	  cat $(EXT_PARTS) ) > $@
all: sql/multiraft--0.1.sql

include mk/pure.mk

# The suites separately (scripts/test runs each and sums their results).
.PHONY: regress tap
regress:
	@mkdir -p tmp_check
	$(pg_regress_installcheck) $(REGRESS_OPTS) $(REGRESS)
PROVE_FLAGS = -I test/perl
tap: test/tools/mr_link
	$(prove_installcheck)

# A peer's side of a node link, for the TAP tests (test/tools/mr_link.c).
test/tools/mr_link: test/tools/mr_link.c
	$(CC) -std=c11 -Wall -Wextra -Werror -O1 -I$(libpq_srcdir) -o $@ $< -lpq
