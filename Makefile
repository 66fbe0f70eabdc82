# Thin driver over autotools (DESIGN.md): bootstrap, configure into build/,
# forward targets. A fresh clone needs nothing but `make demo` / `make check`.
#
#   build/        optimised build: the program (build/src/gen2prep), demo
#   build-check/  the same sources with ASan+UBSan: what `make check` runs
#   build-fuzz/   clang + libFuzzer harnesses (run briefly by `make check`)

SHELL := /bin/bash
JOBS  ?= $(shell nproc 2>/dev/null || echo 2)
SAN_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined

.PHONY: all deps check check-plain check-asan demo fuzz bench clean distclean install

all: build/Makefile
	$(MAKE) -C build -j$(JOBS)

deps:
	@scripts/install-deps

configure: configure.ac Makefile.am $(wildcard am/*.am)
	@scripts/install-deps
	autoreconf -fi >/dev/null

build/Makefile: configure
	mkdir -p build && cd build && ../configure -q CFLAGS="-O2 -g"

build-check/Makefile: configure
	mkdir -p build-check && cd build-check && ../configure -q --enable-werror CFLAGS="$(SAN_CFLAGS)" LDFLAGS="-fsanitize=address,undefined"

# The README's test command. Everything runs under ASan/UBSan.
check: build-check/Makefile
	$(MAKE) -C build-check -j$(JOBS)
	$(MAKE) -C build-check check -j$(JOBS) || { cat build-check/test-suite.log 2>/dev/null | tail -200; exit 1; }

check-plain: build/Makefile
	$(MAKE) -C build -j$(JOBS) check

demo: all
	@scripts/demo

fuzz:
	@scripts/fuzz $(FUZZ_SECONDS)

bench: all
	@scripts/bench

install: all
	$(MAKE) -C build install

clean:
	rm -rf build build-check build-fuzz

distclean: clean
	rm -rf autom4te.cache aclocal.m4 configure config.h.in config.h.in~ \
	  build-aux m4/libtool.m4 m4/lt*.m4 Makefile.in
