#!/bin/sh
# bootstrap.sh - everything from a fresh Debian machine, as root:
#   sh scripts/bootstrap.sh demo   install packages, build, run the demo
#   sh scripts/bootstrap.sh test   install packages, build, run every test
# Both also install nnc into the configured prefix (/usr/local by default:
# nnc on PATH, nncrt.pc where pkg-config looks), as README.md says.
# (.ci/run calls the second.)
set -eu
mode=${1:-test}
cd "$(dirname "$0")/.."
top=$(pwd)

packages="build-essential autoconf automake libtool pkg-config flex bison \
libcjson-dev zlib1g-dev libcriterion-dev clang python3-torch python3-numpy \
gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user cmake valgrind libclang-rt-dev"
# tests/e2e/driver.sh renders --emit=dot (without dot that check is a SKIP)
packages="$packages graphviz"
# English text for the language model example (examples/gpt_char.nn): the
# files of /usr/share/games/fortunes, 2.5 MB, '%' lines between fortunes
packages="$packages fortunes"
# data-parallel training (issue 14): libnncrt-mpi and tests/mpi need MPI
packages="$packages openmpi-bin libopenmpi-dev"
missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "== installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing > /dev/null
fi

echo "== building"
autoreconf -fi > /dev/null 2>&1 || autoreconf -fi
[ -f Makefile ] || ./configure --enable-werror -q
make -j2 > /dev/null
echo "== installing: make install, ldconfig"
make install > /dev/null
ldconfig

case "$mode" in
demo)
    extra=""
    for p in dataset-fashion-mnist graphviz gnuplot-nox; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            extra="$extra $p"
    done
    if [ -n "$extra" ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $extra > /dev/null
    fi
    make demo
    ;;
test)
    status=0
    make -j2 check || status=1
    for log in $(find tests -name '*.log' ! -name 'test-suite.log' 2>/dev/null | sort); do
        echo "---- $log"; tail -n 40 "$log"
    done
    if [ $status -eq 0 ]; then
        echo "== installing into a temporary prefix and building against it"
        dest=$(mktemp -d)
        make install DESTDIR="$dest" > /dev/null 2>&1
        prefix=$(sed -n 's/^prefix=//p' runtime/nncrt.pc)
        libdir=$prefix/lib bindir=$prefix/bin
        export PKG_CONFIG_SYSROOT_DIR="$dest" PKG_CONFIG_PATH="$dest$libdir/pkgconfig"
        d=$(mktemp -d)
        "$dest$bindir/nnc" examples/seed.nn -o "$d/seed.c"
        cc -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -I"$d" -o "$d/seed" \
            examples/seed_main.c "$d/seed.c" $(pkg-config --cflags --libs nncrt) -lm \
            -Wl,-rpath,"$dest$libdir"
        (cd "$d" && ./seed > /dev/null) && echo "installed nnc, libnncrt and nncrt.pc work" || status=1
        # the training program of --emit=main, built as README says
        "$dest$bindir/nnc" tests/e2e/driver_cls.nn --emit=main -o "$d/train.c"
        cc -O3 "$d/train.c" $(pkg-config --cflags --libs nncrt) -lm -o "$d/train" \
            -Wl,-rpath,"$dest$libdir" && "$d/train" --help > /dev/null &&
            echo "the --emit=main program builds with pkg-config" || status=1
        unset PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_PATH
        rm -rf "$dest" "$d"
        # the README's first example, verbatim, against the real install
        d=$(mktemp -d)
        cp -R examples "$d/"
        if awk '/^```/ { n++; next } n == 1' README.md | (cd "$d" && sh -e > run.log 2>&1) &&
            grep -q . "$d/run.log"; then
            echo "the README's first example works as written"
        else
            echo "the README's first example fails:"; cat "$d/run.log"; status=1
        fi
        rm -rf "$d"
    fi
    # the fuzz target (clang's libFuzzer) over its seed corpus, once each
    echo "== make fuzz FUZZ_ARGS=-runs=0 (the seed corpus through the fuzz target)"
    make fuzz FUZZ_ARGS=-runs=0 > fuzz.log 2>&1 && grep -h 'stat::number_of_executed_units' fuzz.log ||
        { tail -n 60 fuzz.log; status=1; }
    # the distribution, built out of tree with ASan+UBSan: the whole suite
    # again, sanitized (nnc, the runtime, the tests' programs and the
    # emitted C of every example and test model)
    echo "== make distcheck (VPATH build with --enable-sanitizers)"
    if VERBOSE=yes make -j2 distcheck \
        DISTCHECK_CONFIGURE_FLAGS="--enable-sanitizers --enable-werror" > distcheck.log 2>&1; then
        grep -E '^(PASS|SKIP|FAIL|ERROR|XFAIL|XPASS):' distcheck.log
        echo "distcheck passed"
    else
        grep -E '^(FAIL|ERROR):' distcheck.log; tail -n 150 distcheck.log; status=1
    fi
    pass=$(grep -h '^# PASS:' tests/test-suite.log test-suite.log 2>/dev/null | awk '{s+=$3} END {print s+0}')
    fail=$(grep -h -E '^# (FAIL|ERROR):' test-suite.log 2>/dev/null | awk '{s+=$3} END {print s+0}')
    # a skip is a check that could not run here (a missing tool, an ISA
    # this CPU lacks): counted apart, never as passed
    skip=$(grep -h '^# SKIP:' test-suite.log 2>/dev/null | awk '{s+=$3} END {print s+0}')
    echo "test suites: $pass passed, $fail failed, $skip skipped"
    # the logs of failed suites once more, whole, where a reader of the
    # output's end finds them
    for trs in $(find tests -name '*.trs' 2>/dev/null | sort); do
        grep -q -E '^:test-result: (FAIL|ERROR)' "$trs" || continue
        echo "==== failed: ${trs%.trs}.log"; tail -n 200 "${trs%.trs}.log"
    done
    exit $status
    ;;
*)
    echo "usage: $0 demo|test" >&2
    exit 2
    ;;
esac
