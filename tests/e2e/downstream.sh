#!/bin/sh
# downstream.sh - the three projects of examples/build/ built against an
# installed nnc: `make install DESTDIR=...` of this build tree into a
# temporary directory, then PATH, PKG_CONFIG_PATH, ACLOCAL_PATH and
# LD_LIBRARY_PATH pointed there (the installed nncrt.pc names the
# configured prefix: its absolute directories are moved under DESTDIR,
# as PKG_CONFIG_SYSROOT_DIR would also move those of libcjson). Each project is copied
# to a scratch directory, built, run, and rebuilt after its .nn is touched:
#  - make:     a plain Makefile with a %.c %.h: %.nn rule and the depfile;
#              train, checkpoint, predictor with the weights compiled in
#              (its predictions equal the trained model's);
#  - automake: configure.ac with NNC_PROG from the installed nnc.m4;
#  - cmake:    add_custom_command (DEPFILE) and pkg_check_modules.
# Also checks what was installed: nnc.m4, nnc.1 and nncrt.pc.
. "$(dirname "$0")/../lib.sh"
# an ASan-instrumented libnncrt needs the ASan runtime linked first into
# every program; the downstream projects are ordinary builds, so they are
# checked by the plain run (77: automake's SKIP)
case $RT_CFLAGS in *-fsanitize=*)
    skip_script downstream.sh "sanitized build (the installed libnncrt needs ASan)" ;;
esac
MAKE=${MAKE:-make}
# the outer make's flags (jobserver, variables on its command line) are
# not for these makes
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
# nor is make check's NNC (the build tree's): the projects must find the
# installed nnc by themselves
unset NNC

dest=$tmp/dest
if ! $MAKE -C "$builddir" install DESTDIR="$dest" > "$tmp/install.log" 2>&1; then
    bad "make install"; show "$tmp/install.log"; exit 1
fi
found() { find "$dest" -name "$1" -path "*$2*" | head -n 1; }
nnc=$(found nnc /bin/) pc=$(found nncrt.pc /pkgconfig/) m4=$(found nnc.m4 /aclocal/)
man=$(found nnc.1 /man1/) lib=$(found 'libnncrt.so' /lib)
for f in "$nnc" "$pc" "$m4" "$man" "$lib"; do
    [ -n "$f" ] && ok || bad "not installed: nnc, nncrt.pc, aclocal/nnc.m4, man1/nnc.1 or libnncrt.so"
done
[ $fail -eq 0 ] || exit 1
PATH=$(dirname "$nnc"):$PATH
PKG_CONFIG_PATH=$(dirname "$pc")
sed "s|^\([a-z_]*\)=/|\1=$dest/|" "$pc" > "$pc.new" && mv "$pc.new" "$pc"
ACLOCAL_PATH=$(dirname "$m4")${ACLOCAL_PATH:+:$ACLOCAL_PATH}
LD_LIBRARY_PATH=$(dirname "$lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PATH PKG_CONFIG_PATH ACLOCAL_PATH LD_LIBRARY_PATH
[ "$(command -v nnc)" = "$nnc" ] && ok || bad "nnc in PATH is not the installed one"
# the installed manual lists every option of nnc --help
for o in $(nnc --help | sed -n 's/^  \(-[-A-Za-z0-9]*\).*/\1/p' | sed 's/=.*//'); do
    grep -q -- "$(echo "$o" | sed 's/-/\\\\-/g')" "$man" || { bad "nnc.1 lacks $o"; continue; }
    ok
done
for w in main import-keras; do
    grep -q "$(echo "$w" | sed 's/-/\\\\-/g')" "$man" && ok || bad "nnc.1 lacks $w"
done

# older: make -q says out of date after FILE is touched (mtime granularity)
touch_later() { sleep 1; touch "$1"; }

# ---- a plain Makefile ---------------------------------------------------------
w=$tmp/make
cp -R "$srcdir/examples/build/make" "$w" && chmod -R u+w "$w"
if (cd "$w" && $MAKE > build.log 2>&1); then
    ok
    (cd "$w" && ./predict > p.txt && ./train again.safetensors > t.txt) && cmp -s "$w/t.txt" "$w/p.txt" &&
        ok || { bad "make: the predictor with embedded weights predicts differently:"; show "$w/t.txt"; show "$w/p.txt"; }
    grep -q 'xor.c xor.h: xor.nn' "$w/xor.d" && grep -q 'xor.safetensors' "$w/xor_trained.d" &&
        ok || bad "make: depfiles"
    (cd "$w" && $MAKE -q) && ok || bad "make: not up to date after a build"
    touch_later "$w/xor.nn"
    (cd "$w" && $MAKE -q); [ $? -eq 1 ] && ok || bad "make: a touched xor.nn is not seen"
    if (cd "$w" && $MAKE > rebuild.log 2>&1) && grep -q 'nnc xor.nn -o xor.c -MD' "$w/rebuild.log" &&
        grep -q 'weights-from=xor.safetensors' "$w/rebuild.log"; then ok
    else bad "make: touching xor.nn did not rebuild the model and the predictor:"; show "$w/rebuild.log"; fi
else
    bad "make project:"; show "$w/build.log"
fi

# ---- Automake, with NNC_PROG ----------------------------------------------------
w=$tmp/automake
cp -R "$srcdir/examples/build/automake" "$w" && chmod -R u+w "$w"
if command -v autoreconf > /dev/null && command -v automake > /dev/null; then
    if (cd "$w" && autoreconf -fi > build.log 2>&1 && mkdir b && cd b &&
        ../configure > ../configure.log 2>&1 && $MAKE >> ../build.log 2>&1 && ./xor > run.txt); then
        ok
        grep -q "checking whether .*/nnc is at least version 0.1... yes" "$w/configure.log" &&
            grep -q "^NNCRT_LIBS = .*-lnncrt" "$w/b/Makefile" && ok ||
            { bad "automake: NNC_PROG did not check or substitute"; show "$w/configure.log"; }
        touch_later "$w/xor.nn"
        (cd "$w/b" && $MAKE > rebuild.log 2>&1) && grep -q 'nnc.* -o xor.c -MD' "$w/b/rebuild.log" &&
            ok || { bad "automake: touching xor.nn did not rebuild"; show "$w/b/rebuild.log"; }
    else
        bad "automake project:"; show "$w/build.log"; show "$w/configure.log" 2>/dev/null
    fi
    # no nnc: NNC_PROG says so
    (cd "$w/b" && PATH=/usr/bin:/bin ../configure > ../none.log 2>&1); st=$?
    [ $st -ne 0 ] && grep -q "the nnc compiler was not found" "$w/none.log" && ok ||
        { bad "automake: configure without nnc"; show "$w/none.log"; }
else
    skip "automake project (no autoreconf)"
fi

# ---- CMake, with add_custom_command and pkg-config ---------------------------------
w=$tmp/cmake
cp -R "$srcdir/examples/build/cmake" "$w" && chmod -R u+w "$w"
if command -v cmake > /dev/null; then
    if (cd "$w" && cmake -S . -B b > build.log 2>&1 && cmake --build b >> build.log 2>&1 &&
        ./b/xor > run.txt); then
        ok
        touch_later "$w/xor.nn"
        (cd "$w" && cmake --build b > rebuild.log 2>&1) && grep -q 'nnc xor.nn' "$w/rebuild.log" &&
            ok || { bad "cmake: touching xor.nn did not rebuild"; show "$w/rebuild.log"; }
    else
        bad "cmake project:"; show "$w/build.log"
    fi
else
    skip "cmake project (no cmake)"
fi

finish downstream
