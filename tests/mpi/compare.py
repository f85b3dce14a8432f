#!/usr/bin/env python3
# compare.py - are two training runs the same within atol + rtol * |b|?
#   compare.py ATOL RTOL a.safetensors b.safetensors   every tensor of both
#   compare.py ATOL RTOL a.csv b.csv                   every number of the logs
# but the last column of a log (seconds). Standard library only. Prints
# the largest difference; exit 1 if any is beyond the tolerance.
# More arguments SUFFIX:LO:HI leave out values [LO, HI) of the tensors
# whose names end with SUFFIX (parameters that rounding noise drives).
import json
import struct
import sys
from array import array


def tensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in head.items():
        if name == '__metadata__':
            continue
        a = array('f')
        lo, hi = t['data_offsets']
        a.frombytes(data[lo:hi])
        out[name] = list(a)
    return out


def logs(path):
    rows = [line.strip().split(',') for line in open(path) if line.strip()]
    return {'row%d' % i: [float(v) if v else 0.0 for v in r[:-1]]
            for i, r in enumerate(rows[1:])}


def main():
    atol, rtol, a, b = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
    read = logs if a.endswith('.csv') else tensors
    ta, tb = read(a), read(b)
    for skip in sys.argv[5:]:
        suffix, lo, hi = skip.split(':')
        for t in (ta, tb):
            for name in t:
                if name.endswith(suffix):
                    t[name] = t[name][:int(lo)] + t[name][int(hi):]
    if sorted(ta) != sorted(tb):
        print('%s and %s hold different names' % (a, b))
        return 1
    worst, where, bad = 0.0, '', 0
    for name in ta:
        if len(ta[name]) != len(tb[name]):
            print('%s: %d values against %d' % (name, len(ta[name]), len(tb[name])))
            return 1
        for i, (x, y) in enumerate(zip(ta[name], tb[name])):
            d = abs(x - y)
            if not d <= atol + rtol * abs(y):
                bad += 1
            if d > worst:
                worst, where = d, '%s[%d]: %.9g vs %.9g' % (name, i, x, y)
    print('%s vs %s: %d values beyond tolerance; largest difference %.3g (%s)'
          % (a, b, bad, worst, where or 'none'))
    return 1 if bad else 0


sys.exit(main())
