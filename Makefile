# clbsd build. `make` builds, `make check` installs what the tests need and
# runs every test, `make demo` starts a daemon with a sample container,
# `make asan` runs the suite under ASan+UBSan, `make fuzz` runs the fuzzers.

CC      ?= cc
BUILD   ?= build
PREFIX  ?= /usr/local
PKGS    := libevent jansson libseccomp libcap libcrypto libxxhash libarchive libnl-route-3.0 libnftables libcurl
WARN    := -Wall -Wextra -Wshadow -Wcast-qual -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
           -Wno-unused-parameter -Wno-format-nonliteral
CFLAGS  ?= -O2 -g
# Sections per function, so the static shim links only what it calls.
ALL_CFLAGS := -std=gnu11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -ffunction-sections -fdata-sections \
              -Iinclude -Isrc \
              $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
ifeq ($(CI),true)
ALL_CFLAGS += -Werror
endif
LDFLAGS ?=
ALL_LDFLAGS := -Wl,--as-needed $(LDFLAGS)
LIBS_NET    := $(shell pkg-config --libs libnl-route-3.0 libnftables 2>/dev/null)
LIBS_DAEMON := $(shell pkg-config --libs libevent_pthreads libevent jansson libseccomp libcap libcrypto libxxhash yaml-0.1 2>/dev/null) $(LIBS_NET) -lpthread
LIBS_SHIM   := $(shell pkg-config --libs jansson libseccomp libcap 2>/dev/null)
LIBS_CLI    := $(shell pkg-config --libs jansson yaml-0.1 libxxhash 2>/dev/null) -lhttp_parser
LIBS_TEST   := $(shell pkg-config --libs libevent jansson libseccomp libcap libcrypto libxxhash yaml-0.1 2>/dev/null) $(LIBS_NET) -lpthread

# Platform sources: the build picks linux/ (freebsd/ later), not #ifdefs.
PLATFORM := linux

LIB_SRC    := $(wildcard src/util/*.c src/runtime/*.c src/runtime/$(PLATFORM)/*.c \
                src/storage/*.c src/conf/*.c src/image/*.c src/core/*.c \
                src/net/*.c src/net/$(PLATFORM)/*.c src/ingress/*.c \
                src/sys/*.c src/sys/$(PLATFORM)/*.c src/docker/*.c \
                src/compose/*.c src/integrity/*.c)
# The engine (src/daemon/) and the API on it; clbsdd's own main is apart.
DAEMON_SRC := $(wildcard src/daemon/*.c src/api/*.c)
CLBSDD_SRC := $(wildcard src/clbsdd/*.c)
SHIM_SRC   := $(wildcard src/shim/*.c)
CLI_SRC    := $(wildcard src/cli/*.c)
UNIT_SRC   := $(wildcard tests/unit/*/test_*.c)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
LIB     := $(BUILD)/libclbsd.a
BINS    := $(BUILD)/clbsdd $(BUILD)/clbsd $(BUILD)/clbsd-shim
UNITS   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
# Helpers the integration tests and benchmarks drive the library with.
TOOL_SRC := $(wildcard tests/tools/*_tool.c)
TOOLS   := $(patsubst tests/tools/%_tool.c,$(BUILD)/tools/%-tool,$(TOOL_SRC))

.PHONY: all deps check demo demo-stop asan fuzz fuzz-build fuzz-bins clean install bench lint lisp install-lisp man docs
# Small static programs the tests run inside busybox containers: the network
# tests' echo server and the attacks of tests/security/ (what busybox cannot
# do: io_uring_setup, AF_VSOCK, pidfd_getfd, /proc/PID/mem, ...). They are
# built without $(CFLAGS): a sanitizer runtime cannot link statically, and
# they are not the code under test.
HELPER_CFLAGS := -std=gnu11 -D_GNU_SOURCE $(WARN) -O2 -g
ifeq ($(CI),true)
HELPER_CFLAGS += -Werror
endif
SEC_HELPER_SRC := $(wildcard tests/security/helpers/*.c)
HELPERS := $(BUILD)/tests/helpers/udp-echo \
           $(patsubst tests/security/helpers/%.c,$(BUILD)/tests/security/%,$(SEC_HELPER_SRC))
all: $(BINS) $(UNITS) $(TOOLS) $(HELPERS)

$(BUILD)/tests/helpers/udp-echo: tests/helpers/udp_echo.c
	@mkdir -p $(dir $@)
	$(CC) $(HELPER_CFLAGS) -static -o $@ $<

$(BUILD)/tests/security/%: tests/security/helpers/%.c
	@mkdir -p $(dir $@)
	$(CC) $(HELPER_CFLAGS) -static -o $@ $<

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(LIB): $(call obj,$(LIB_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# The daemon carries the USDT probes (src/util/trace.h, docs/tracing.md) in
# its .note.stapsdt section: keep it there (no --gc-sections tricks, no
# objcopy --remove-section); `strip` keeps notes. The static shim and CLI
# have no probes.
$(BUILD)/clbsdd: $(call obj,$(CLBSDD_SRC) $(DAEMON_SRC)) $(LIB)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(LIBS_DAEMON)

# The shim is linked statically: one runs per container, and without the
# dynamic loader it starts faster and keeps about half the resident memory.
SHIM_STATIC ?= -static
$(BUILD)/clbsd-shim: $(call obj,$(SHIM_SRC)) $(LIB)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -Wl,--gc-sections $(SHIM_STATIC) -o $@ $^ $(LIBS_SHIM)

# The CLI too: every `clbsd` command is a new process, and the dynamic loader
# (libc, jansson, http-parser) cost about 0.3 ms of each (1.1 -> 0.8 ms for
# `clbsd info`). It calls nothing that needs glibc's NSS.
CLI_STATIC ?= -static
$(BUILD)/clbsd: $(call obj,$(CLI_SRC)) $(LIB)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -Wl,--gc-sections $(CLI_STATIC) -o $@ $^ $(LIBS_CLI)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/test.h $(wildcard tests/unit/*/*.h) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit -MMD -MP -MF $@.d $(ALL_LDFLAGS) -o $@ $< $(LIB) $(LIBS_TEST)

# The API's pure parts (route matching, request decoding) live beside the
# handlers in src/api/; its unit tests link those objects and the library.
API_PURE_SRC := src/api/route.c src/api/req_decode.c
$(BUILD)/tests/api/%: tests/unit/api/%.c tests/unit/test.h $(call obj,$(API_PURE_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit -MMD -MP -MF $@.d $(ALL_LDFLAGS) -o $@ $< $(call obj,$(API_PURE_SRC)) $(LIB) $(LIBS_TEST)

$(BUILD)/tools/%-tool: tests/tools/%_tool.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIB) $(LIBS_TEST)

deps:
	scripts/deps.sh check

check: deps
	$(MAKE) all
	$(MAKE) lisp
	$(MAKE) fuzz-build
	CLBSD_TEST_JOBS=$${CLBSD_TEST_JOBS:-$$(nproc)} BUILD=$(BUILD) tests/run.sh

demo:
	scripts/deps.sh demo
	$(MAKE) all
	$(MAKE) lisp
	scripts/demo.sh

demo-stop:
	scripts/demo.sh stop

# Leaks fail a test too; tests/lsan.supp lists what is left on purpose.
ASAN_OPTIONS_TEST := detect_leaks=1:abort_on_error=0:print_summary=1
LSAN_OPTIONS_TEST := suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0
BUILD_ASAN ?= build-asan
asan:
	scripts/deps.sh check
	$(MAKE) BUILD=$(BUILD_ASAN) CC=clang SHIM_STATIC= CLI_STATIC= \
	  CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=address,undefined" all
	BUILD=$(BUILD_ASAN) ASAN_OPTIONS=$(ASAN_OPTIONS_TEST) LSAN_OPTIONS=$(LSAN_OPTIONS_TEST) \
	  UBSAN_OPTIONS=print_stacktrace=1 tests/run.sh

# The fuzzers: libFuzzer with ASan+UBSan, built by clang in build-fuzz/ by
# one sub-make (several would rewrite the same archive at once).
# fuzz_create drives the daemon's own container code, so it links the
# daemon's objects (libclbsdd.a: src/daemon and src/api, without
# src/clbsdd/main.c); the other targets need
# only the library. `make fuzz-build` builds them, `make check` runs each
# for a few seconds (tests/run.sh), `make fuzz` for FUZZ_TIME seconds each.
FUZZ_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
               -fno-sanitize-recover=undefined
DAEMON_LIB  := $(BUILD)/libclbsdd.a
FUZZ_BINS   := $(patsubst tests/fuzz/%.c,$(BUILD)/%,$(FUZZ_SRC))
$(DAEMON_LIB): $(call obj,$(DAEMON_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/fuzz_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(DAEMON_LIB) $(LIB)
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $^ $(LIBS_DAEMON)
fuzz-bins: $(FUZZ_BINS)
fuzz-build:
	$(MAKE) BUILD=build-fuzz CC=clang CFLAGS="$(FUZZ_CFLAGS)" LDFLAGS= fuzz-bins
fuzz: fuzz-build
	scripts/fuzz.sh

bench: all
	scripts/deps.sh bench
	bench/start-latency
	bench/reconcile
	bench/storage
	bench/ingress
	bench/docker
	bench/metrics
	bench/integrity

# shellcheck, clang-format (check mode), the folder layers, cppcheck, the
# Emacs package's lint and a clang -Werror build (scripts/lint.sh).
lint:
	scripts/lint.sh

# Man pages and the bash completion are generated from the programs
# themselves: clbsd(1) and the completion from the CLI's command table,
# clbsdd(8) from `clbsdd --help`, clbsd.conf(5) from the container key table.
MANS       := $(BUILD)/man/clbsd.1 $(BUILD)/man/clbsdd.8 $(BUILD)/man/clbsd.conf.5
COMPLETION := $(BUILD)/completion/clbsd
man: $(MANS) $(COMPLETION)

$(BUILD)/man/clbsd.1: $(BUILD)/clbsd
	@mkdir -p $(dir $@)
	$(BUILD)/clbsd __man >$@.tmp && mv $@.tmp $@

$(BUILD)/man/clbsdd.8: $(BUILD)/clbsdd scripts/man-clbsdd.sh
	@mkdir -p $(dir $@)
	scripts/man-clbsdd.sh $(BUILD)/clbsdd >$@.tmp && mv $@.tmp $@

$(COMPLETION): $(BUILD)/clbsd
	@mkdir -p $(dir $@)
	$(BUILD)/clbsd completion bash >$@.tmp && mv $@.tmp $@

# The container keys' documentation comes from their table
# (src/core/spec_keys.c): docs/config.md's list and clbsd.conf(5).
# tests/unit/core/test_ctr_spec.c fails when docs/config.md is behind.
docs: $(BUILD)/tools/specdoc-tool $(BUILD)/man/clbsd.conf.5
	$(BUILD)/tools/specdoc-tool update docs/config.md

$(BUILD)/man/clbsd.conf.5: $(BUILD)/tools/specdoc-tool
	@mkdir -p $(dir $@)
	$(BUILD)/tools/specdoc-tool man >$@.tmp && mv $@.tmp $@

# make install [PREFIX=/usr/local] [DESTDIR=staging]: the programs, the man
# pages and the bash completion.
install: $(BINS) $(MANS) $(COMPLETION)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/libexec/clbsd \
	  $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5 \
	  $(DESTDIR)$(PREFIX)/share/man/man8 \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 755 $(BUILD)/clbsd $(DESTDIR)$(PREFIX)/bin/clbsd
	install -m 755 $(BUILD)/clbsdd $(DESTDIR)$(PREFIX)/sbin/clbsdd
	install -m 755 $(BUILD)/clbsd-shim $(DESTDIR)$(PREFIX)/libexec/clbsd/clbsd-shim
	install -m 644 $(BUILD)/man/clbsd.1 $(DESTDIR)$(PREFIX)/share/man/man1/clbsd.1
	install -m 644 $(BUILD)/man/clbsd.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/clbsd.conf.5
	install -m 644 $(BUILD)/man/clbsdd.8 $(DESTDIR)$(PREFIX)/share/man/man8/clbsdd.8
	install -m 644 $(COMPLETION) $(DESTDIR)$(PREFIX)/share/bash-completion/completions/clbsd

# The Lisp control plane (docs/lisp.md) as one executable SBCL core holding
# the clbsd system and Swank: it starts without compiling anything. Needs
# sbcl (scripts/deps.sh demo); lisp/clbsd-lisp runs the same from source.
LISP_SRC := lisp/clbsd.asd lisp/build-core $(wildcard lisp/src/*.lisp)
lisp: $(BUILD)/clbsd-lisp

$(BUILD)/clbsd-lisp: $(LISP_SRC)
	@mkdir -p $(BUILD)
	lisp/build-core $@

install-lisp: $(BUILD)/clbsd-lisp
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(BUILD)/clbsd-lisp $(DESTDIR)$(PREFIX)/bin/clbsd-lisp

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
# A unit test's own dependencies (the headers and .def files it includes).
-include $(shell find $(BUILD)/tests -name '*.d' 2>/dev/null)
