# backup — build, test, install.  See README.md.
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR = $(PREFIX)/bin
MANDIR = $(PREFIX)/share/man
BASHCOMPDIR = $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR = $(PREFIX)/share/zsh/vendor-completions
FISHCOMPDIR = $(PREFIX)/share/fish/vendor_completions.d

CC ?= cc
VERSION = 0.1.0
PKGS = libgit2 libarchive libzstd libcrypto zlib libcurl
CFLAGS ?= -O2 -g
BASE_CFLAGS = -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread -D_FILE_OFFSET_BITS=64 \
	-DBACKUP_VERSION='"$(VERSION)"' -Ilib $(shell pkg-config --cflags $(PKGS))
LIBS = $(shell pkg-config --libs $(PKGS)) -pthread

LIB_SRC = $(sort $(wildcard lib/*.c))
CMD_SRC = $(sort $(wildcard cmd/*.c))
LIB_OBJ = $(LIB_SRC:.c=.o)
CMD_OBJ = $(CMD_SRC:.c=.o)
UNIT_SRC = $(sort $(wildcard tests/unit/*.c))
UNIT_BIN = $(UNIT_SRC:.c=)

all: backup

backup: $(CMD_OBJ) lib/libbackup.a
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $(CMD_OBJ) lib/libbackup.a $(LIBS)

lib/libbackup.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

%.o: %.c $(wildcard lib/*.h) $(wildcard cmd/*.h)
	@echo CC $@; $(CC) $(BASE_CFLAGS) $(CFLAGS) -c -o $@ $<

tests/unit/%: tests/unit/%.c lib/libbackup.a $(wildcard tests/unit/*.h)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< lib/libbackup.a $(LIBS)

# The S3 client's driver for tests/90-s3.bats: a test tool, never installed.
tests/s3probe: tests/s3probe.c lib/libbackup.a
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< lib/libbackup.a $(LIBS)

# The fault injector of the crash tests: an LD_PRELOAD library, never linked into backup.
tests/faultshim.so: tests/faultshim.c
	$(CC) -O2 -Wall -Wextra -Werror -shared -fPIC -o $@ $< -ldl

unit: $(UNIT_BIN)
	@for t in $(UNIT_BIN); do $$t || exit 1; done

# Installs Debian's packages the build and the tests need (run as root).
deps:
	@tests/install-deps.sh

check: deps
	@$(MAKE) --no-print-directory backup $(UNIT_BIN) tests/faultshim.so tests/s3probe
	@tests/run-tests.sh

# The whole suite on an AddressSanitizer + UBSan build, in its own tree.
asan:
	rm -rf .asan .fuzz && mkdir -p .asan
	cp -r Makefile lib cmd tests man completions .asan/
	$(MAKE) -C .asan clean >/dev/null
	$(MAKE) -C .asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
		LDFLAGS="-fsanitize=address,undefined" check

# libFuzzer targets for every parser of untrusted bytes (clang), in .fuzz/.
FUZZ_TARGETS = $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_CFLAGS = -g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
	-std=gnu11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -DBACKUP_VERSION='"$(VERSION)"' -Ilib \
	$(shell pkg-config --cflags $(PKGS))
FUZZ_SECONDS ?= 8

.fuzz/lib/%.o: lib/%.c $(wildcard lib/*.h)
	@mkdir -p .fuzz/lib
	@echo FUZZCC $@; clang $(FUZZ_CFLAGS) -c -o $@ $<

.fuzz/%: tests/fuzz/%.c $(patsubst lib/%.c,.fuzz/lib/%.o,$(LIB_SRC))
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LIBS)

fuzz: $(addprefix .fuzz/,$(FUZZ_TARGETS))

# Each target for FUZZ_SECONDS, after replaying its kept regression inputs.
fuzz-smoke: fuzz
	@tests/fuzz-smoke.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Every durable step of run, rotate and cancel, not a sample (slow).
check-crash: backup tests/faultshim.so
	FAULT_STRIDE=1 bats tests/75-crash.bats
	FAULT_STRIDE=1 bats -f 'crash or a full disk' tests/12-format.bats
	FAULT_STRIDE=1 bats -f 'crash or a full disk' tests/14-keys.bats

# The README's two commands on a freshly bootstrapped minimal Debian 12
# (debootstrap; cached under /var/tmp), as .ci/run does after the suite.
check-fresh:
	@sh tests/check-fresh.sh

# The cipher and KDF speeds that chose lib/crypto.c's (docs/PERFORMANCE.md).
tests/bench_crypto: tests/bench_crypto.c lib/libbackup.a
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< lib/libbackup.a $(LIBS)

bench-crypto: tests/bench_crypto
	@tests/bench_crypto

check-man:
	@for m in man/*.[15]; do groff -man -ww -z $$m || exit 1; done

bench: backup
	@tests/bench.sh

bench-offsite: backup
	@tests/bench-offsite.sh

install: backup
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
	install -m 755 backup $(DESTDIR)$(BINDIR)/backup
	for c in $$(./backup --list | cut -f1); do \
		ln -sf backup $(DESTDIR)$(BINDIR)/backup-$$c; \
		ln -sf backup $(DESTDIR)$(BASHCOMPDIR)/backup-$$c; \
		ln -sf backup.fish $(DESTDIR)$(FISHCOMPDIR)/backup-$$c.fish; \
	done
	install -m 644 man/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 man/*.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 644 completions/backup.bash $(DESTDIR)$(BASHCOMPDIR)/backup
	# bash and fish load completions by command name: backup-COMMAND gets a link.
	install -m 644 completions/_backup $(DESTDIR)$(ZSHCOMPDIR)/_backup
	install -m 644 completions/backup.fish $(DESTDIR)$(FISHCOMPDIR)/backup.fish

demo: deps
	@$(MAKE) --no-print-directory backup
	@tests/demo.sh

clean:
	rm -f backup lib/*.o lib/libbackup.a cmd/*.o $(UNIT_BIN) tests/faultshim.so tests/bench_crypto tests/s3probe
	rm -rf .asan .fuzz

.PHONY: all unit deps check check-fresh check-crash asan check-man bench bench-offsite bench-crypto install demo clean fuzz fuzz-smoke
