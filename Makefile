# ECV top-level Makefile: builds everything out of tree into $(BUILD).
#   make            build/ecv-agent build/tvn build/ecv-isn and the tools
#   make check      every test suite, with a summary (SAN=1 for ASan/UBSan)
#   make fuzz       libFuzzer harnesses, longer rounds (FUZZ_SECONDS=...)
#   make bench      benchmarks (tests/bench/)
#   make deps       install the Debian packages the build and the tests need
#   make install    PREFIX=/usr/local DESTDIR=
#   V=1             show the real commands
.DELETE_ON_ERROR:
# Keep intermediate objects (tools, BPF) so a second make does nothing.
.SECONDARY:
.SUFFIXES:

BUILD   ?= build
PREFIX  ?= /usr/local
DESTDIR ?=
SAN     ?= 0
V       ?= 0

ifeq ($(V),1)
Q =
msg = @true
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

CC      ?= cc
CLANG   ?= clang
BPFTOOL ?= bpftool
PKG_CONFIG ?= pkg-config

ARCH := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')

pc_cflags = $(shell $(PKG_CONFIG) --cflags $(1) 2>/dev/null)
pc_libs   = $(shell $(PKG_CONFIG) --libs $(1) 2>/dev/null)

COMMON_PKGS := jansson libcrypto libmicrohttpd
TVN_PKGS    := $(COMMON_PKGS) libpcap
AGENT_PKGS  := $(COMMON_PKGS) libbpf libelf zlib
TEST_PKGS   := check libpcap

SAN_FLAGS :=
ifeq ($(SAN),1)
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif

CFLAGS  ?= -O2 -g
override CFLAGS += -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -MMD -MP \
	-Icommon -I$(BUILD) $(SAN_FLAGS) \
	$(call pc_cflags,$(sort $(TVN_PKGS) $(AGENT_PKGS) check))
override LDFLAGS += $(SAN_FLAGS)

# --- sources ----------------------------------------------------------------
COMMON_SRCS := $(wildcard common/*.c)
TVN_SRCS    := $(filter-out tvn/main.c,$(wildcard tvn/*.c))
AGENT_SRCS  := $(filter-out agent/main.c,$(wildcard agent/*.c))
BPF_SRCS    := $(wildcard bpf/*.bpf.c)
TOOL_SRCS   := $(wildcard tools/*.c)
TEST_SRCS   := $(wildcard tests/unit/test_*.c)
# What suites share (fixtures, harnesses): every other .c under tests/unit/.
TEST_LIB_SRCS := $(filter-out $(TEST_SRCS),$(wildcard tests/unit/*.c))
FUZZ_SRCS   := $(wildcard tests/fuzz/fuzz_*.c)

# Objects live under obj/: $(BUILD)/tvn is the program, so it cannot also be a directory.
obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

COMMON_LIB := $(BUILD)/libecvcommon.a
TVN_LIB    := $(BUILD)/libtvn.a
AGENT_LIB  := $(BUILD)/libagent.a
TEST_LIB   := $(BUILD)/libtestsupport.a
BPF_OBJS   := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS      := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))
TOOLS      := $(patsubst tools/%.c,$(BUILD)/%,$(TOOL_SRCS))
TESTS      := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
FUZZERS    := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))

PROGS := $(BUILD)/tvn $(BUILD)/ecv-agent $(TOOLS)

.PHONY: all tests check fuzz bench deps install \
	uninstall clean demo run soak images format
all: $(PROGS)

# --- user-space objects -----------------------------------------------------
$(BUILD)/obj/%.o: %.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(COMMON_LIB): $(call obj,$(COMMON_SRCS))
$(TVN_LIB): $(call obj,$(TVN_SRCS))
$(AGENT_LIB): $(call obj,$(AGENT_SRCS))
$(TEST_LIB): $(call obj,$(TEST_LIB_SRCS))
$(COMMON_LIB) $(TVN_LIB) $(AGENT_LIB) $(TEST_LIB):
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

# Agent objects include the BPF skeletons.
$(call obj,$(AGENT_SRCS) agent/main.c): | $(SKELS)

$(BUILD)/tvn: $(BUILD)/obj/tvn/main.o $(TVN_LIB) $(COMMON_LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pc_libs,$(TVN_PKGS)) -lpthread

$(BUILD)/ecv-agent: $(BUILD)/obj/agent/main.o $(AGENT_LIB) $(COMMON_LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pc_libs,$(AGENT_PKGS)) -lpthread

$(BUILD)/%: $(BUILD)/obj/tools/%.o $(TVN_LIB) $(COMMON_LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pc_libs,$(TVN_PKGS)) -lpthread

# --- BPF --------------------------------------------------------------------
$(BUILD)/vmlinux.h:
	$(call msg,BTF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(BUILD)/vmlinux.h
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
		-Icommon -Ibpf -I$(BUILD) -MMD -MP -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

# --- tests ------------------------------------------------------------------
$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(TEST_LIB) $(TVN_LIB) $(AGENT_LIB) $(COMMON_LIB)
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ \
		$(call pc_libs,$(sort $(TVN_PKGS) $(AGENT_PKGS) $(TEST_PKGS))) -lpthread

FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -std=gnu11 -D_GNU_SOURCE \
	-Icommon -I$(BUILD) $(call pc_cflags,$(TVN_PKGS))
$(BUILD)/fuzz/%: tests/fuzz/%.c $(COMMON_SRCS) $(TVN_SRCS) | $(SKELS)
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -o $@ $^ $(call pc_libs,$(TVN_PKGS)) -lpthread

# The user-facing targets install what they need first (tools/deps.sh is idempotent and
# quiet when nothing is missing), then build, then run.
SUBMAKE = $(MAKE) --no-print-directory BUILD=$(BUILD) SAN=$(SAN) V=$(V)

tests: all $(TESTS) $(FUZZERS)

check:
	$(Q)bash tools/deps.sh
	$(Q)$(SUBMAKE) tests
	$(Q)BUILD=$(BUILD) SAN=$(SAN) bash tests/run.sh

fuzz: $(FUZZERS)
	$(Q)BUILD=$(BUILD) FUZZ_SECONDS=$${FUZZ_SECONDS:-60} bash tests/fuzz/run.sh

bench:
	$(Q)bash tools/deps.sh
	$(Q)$(SUBMAKE) all
	$(Q)BUILD=$(BUILD) bash tests/bench/run.sh

demo:
	$(Q)bash tools/deps.sh
	$(Q)$(SUBMAKE) all
	$(Q)BUILD=$(BUILD) bash tests/e2e/demo.sh

run:
	$(Q)bash tools/deps.sh
	$(Q)$(SUBMAKE) all
	$(Q)BUILD=$(BUILD) bash tests/e2e/run.sh

soak:
	$(Q)bash tools/deps.sh
	$(Q)$(SUBMAKE) all
	$(Q)BUILD=$(BUILD) bash tests/bench/soak.sh

deps:
	$(Q)bash tools/deps.sh

images:
	$(Q)bash tools/images.sh

install: $(PROGS)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/ecv-agent $(BUILD)/tvn $(BUILD)/ecv-isn $(DESTDIR)$(PREFIX)/bin/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/ecv-agent $(DESTDIR)$(PREFIX)/bin/tvn \
		$(DESTDIR)$(PREFIX)/bin/ecv-isn

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
