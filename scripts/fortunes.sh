#!/bin/sh
# fortunes.sh - the GPT example's training text: every fortune of the
# fortunes package (/usr/share/games/fortunes/*, not *.dat or *.u8),
# shuffled deterministically, written to stdout.
#   usage: fortunes.sh [DIR]      (exit 1 when DIR has no fortune files)
# The fortunes (split on the "%" lines) are ordered by a multiplicative
# hash of their number (Knuth's 2654435761 k mod 2^32), so that the
# held-out last tenth samples every file rather than only the
# alphabetically last ones; each is followed by a "%" line as in the
# package. The same files give the same text, byte for byte (about 2.5 MB,
# 114 distinct bytes, which fit examples/gpt_char.nn's 128 vocabulary rows).
# Used by scripts/demo.sh and bench/run.sh.
dir=${1:-/usr/share/games/fortunes}
n=0
for f in "$dir"/*; do
    case $f in *.dat|*.u8) continue ;; esac
    [ -f "$f" ] && n=$((n + 1))
done
[ $n -gt 0 ] || { echo "fortunes.sh: no fortune files in $dir (apt-get install fortunes)" >&2; exit 1; }
for f in "$dir"/*; do
    case $f in *.dat|*.u8) continue ;; esac
    [ -f "$f" ] && cat "$f"
done | LC_ALL=C awk '
    function flush() { if (n) printf "%.0f\t%s\n", (k * 2654435761) % 4294967296, rec; rec = ""; n = 0 }
    /^%$/ { flush(); k++; next }
    { rec = n ? rec "\001" $0 : $0; n++ }
    END { flush() }' | LC_ALL=C sort -n -k1,1 -s |
    LC_ALL=C awk '{ sub(/^[^\t]*\t/, ""); gsub(/\001/, "\n"); print; print "%" }'
