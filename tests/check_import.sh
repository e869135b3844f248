#!/usr/bin/env bash
# nrdiff-import (src/import): IDX and .npy data sets, gzipped or not, to the
# data-file layout of doc/data-files.md, read back independently with h5py
# (values, HDF5 types, @shape, labels, attributes); the real Fashion-MNIST
# test set when Debian's dataset-fashion-mnist is installed; hostile inputs
# (exit 2, one line naming the file, nothing written, inputs untouched); a
# write failure (exit 1, nothing left behind).
set -u
. "$(dirname "$0")/testlib.sh"
# failures show the last command's stderr
ko() { fail=$((fail + 1)); echo "FAIL - $1"; [ -f err ] && sed 's/^/       /' err; rm -f err; }
need_h5py
imp=${NRDIFF_IMPORT:-$top_build/src/nrdiff-import}
py=/usr/bin/python3
cd "$work"
mkdir in ref out

# ------------------------------------------------------------ the inputs
# in/: the files to import; ref/NAME.npz: what /data, @shape and /labels
# must then hold; cases: NAME|options|data file|labels file.
cat >mk.py <<'EOF'
import gzip, struct, numpy as np
rng = np.random.default_rng(7)
cases = []
IDX = {'u1': 8, 'i1': 9, 'i2': 11, 'i4': 12, 'f4': 13, 'f8': 14}

def idx(path, a, gz=False):
    a = np.asarray(a)
    code = IDX[a.dtype.str[1:]]
    b = bytes([0, 0, code, a.ndim]) + struct.pack('>%dI' % a.ndim, *a.shape)
    b += a.astype(a.dtype.newbyteorder('>')).tobytes()
    (gzip.open if gz else open)('in/' + path, 'wb').write(b)

def npy(path, a, gz=False, version=None):
    with (gzip.open if gz else open)('in/' + path, 'wb') as f:
        np.lib.format.write_array(f, a, version=version)

def case(name, data, want, labels=None, lfile='', opts='', shape=()):
    r = {'data': want, 'shape': np.array(shape, dtype=np.int64)}
    if labels is not None:
        r['labels'] = np.asarray(labels, dtype=np.int32)
    np.savez('ref/%s.npz' % name, **r)
    cases.append('%s|%s|in/%s|%s' % (name, opts, data, lfile and 'in/' + lfile))

u8 = rng.integers(0, 256, (5, 3, 4), dtype=np.uint8)
lab = np.array([3, 0, 9, 9, 1], dtype=np.uint8)
idx('tiny-images-idx3-ubyte.gz', u8, gz=True)
idx('tiny-labels-idx1-ubyte', lab)
case('idx_u8_gz', 'tiny-images-idx3-ubyte.gz', u8.reshape(5, 12), lab,
     'tiny-labels-idx1-ubyte', shape=(3, 4))
idx('plain.idx', u8[:, 0, :])
case('idx_u8_2d_plain', 'plain.idx', u8[:, 0, :])
case('idx_limit', 'tiny-images-idx3-ubyte.gz', u8[:2].reshape(2, 12), lab[:2],
     'tiny-labels-idx1-ubyte', opts='--limit 2', shape=(3, 4))
case('idx_limit_beyond', 'tiny-images-idx3-ubyte.gz', u8.reshape(5, 12), lab,
     'tiny-labels-idx1-ubyte', opts='--limit 99', shape=(3, 4))
s8 = np.array([[-128, -1, 0], [1, 2, 127], [5, -5, 64], [0, 0, -100]], np.int8)
idx('s8.idx', s8)
case('idx_sbyte', 's8.idx', s8.astype(np.float64))
s16 = np.array([-32768, -1, 0, 1, 300, 32767, 1234, -4321, 7, 8, 9, 10],
               np.int16).reshape(3, 2, 2)
idx('s16.idx.gz', s16, gz=True)
case('idx_short', 's16.idx.gz', s16.reshape(3, 4).astype(np.float64), shape=(2, 2))
s32 = np.array([[-2**31, 2**31 - 1, 0, 5, -7]] * 3, np.int32)
s32[1] += 1
idx('s32.idx', s32)
ilab = np.array([-1, 7, 2**31 - 1], np.int32)
idx('ilab.idx', ilab)
case('idx_int_int_labels', 's32.idx', s32.astype(np.float64), ilab, 'ilab.idx')
f32 = np.array([[1.5, -2.25], [3e38, -1e-38], [np.inf, 0.0], [1e-45, -0.0]], np.float32)
idx('f32.idx', f32)
case('idx_float', 'f32.idx', f32)
f64 = rng.normal(size=(2, 3)) * 1e300
idx('f64.idx', f64)
case('idx_double', 'f64.idx', f64)

u4d = rng.integers(0, 256, (6, 2, 3, 2), dtype=np.uint8)  # n x H x W x C
l64 = np.array([0, 1, 2, 3, 4, 5], np.int64)
npy('img.npy', u4d)
npy('l64.npy', l64)
case('npy_u1_4d', 'img.npy', u4d.reshape(6, 12), l64, 'l64.npy', shape=(2, 3, 2))
a = rng.normal(size=(5, 3)).astype('<f4')
npy('f4.npy.gz', a, gz=True)
npy('lu1.npy', np.array([4, 4, 0, 1, 255], np.uint8))
case('npy_f4_gz', 'f4.npy.gz', a, [4, 4, 0, 1, 255], 'lu1.npy')
a = rng.normal(size=(4, 4))
npy('f8.npy', a)
case('npy_f8', 'f8.npy', a)
a = rng.normal(size=(3, 2)).astype('>f8')
npy('f8be.npy', a)
case('npy_f8_bigendian', 'f8be.npy', a.astype('<f8'))
a = np.array([[-2**31, 17], [2**31 - 1, -3], [0, 1]], '>i4')
npy('i4be.npy', a)
case('npy_i4_bigendian', 'i4be.npy', a.astype(np.float64))
for t in ['i1', 'i2', 'i4', 'i8', 'u2', 'u4']:
    info = np.iinfo(t)
    lo, hi = (max(info.min, -2**53), min(info.max, 2**53))
    a = np.array([[lo, hi], [0, 1], [hi - 1, lo + 1]], t)
    npy('int_%s.npy' % t, a)
    case('npy_' + t, 'int_%s.npy' % t, a.astype(np.float64))
a = np.asfortranarray(rng.normal(size=(4, 3)))
npy('fortran2.npy', a)
case('npy_fortran_2d', 'fortran2.npy', np.ascontiguousarray(a))
a = np.asfortranarray(rng.integers(0, 256, (3, 2, 4, 2), dtype=np.uint8))
npy('fortran4.npy', a)
case('npy_fortran_4d', 'fortran4.npy', a.reshape(3, 16), shape=(2, 4, 2))
case('npy_fortran_limit', 'fortran4.npy', a[:2].reshape(2, 16), opts='--limit 2',
     shape=(2, 4, 2))
a = rng.normal(size=(3, 5)).astype('<f4')
npy('v2.npy', a, version=(2, 0))
npy('v3.npy', a, version=(3, 0))
case('npy_version2', 'v2.npy', a)
case('npy_version3', 'v3.npy', a)
l = np.array([1, 2, 3], '>i8')
npy('l8be.npy', l)
case('npy_labels_bigendian', 'v2.npy', a, [1, 2, 3], 'l8be.npy')
open('cases', 'w').write('\n'.join(cases) + '\n')

# hostile inputs (h_*)
full = open('in/plain.idx', 'rb').read()
open('in/h_trunc.idx', 'wb').write(full[:-7])
g = open('in/tiny-images-idx3-ubyte.gz', 'rb').read()
open('in/h_trunc.idx.gz', 'wb').write(g[:len(g) // 2])
open('in/h_trunc_header.idx', 'wb').write(bytes([0, 0, 8, 3, 0, 0]))
open('in/h_trailing.idx', 'wb').write(full + b'\0\0\0')
open('in/h_badmagic.idx', 'wb').write(b'\x01\x02\x08\x02' + full[4:])
open('in/h_badtype.idx', 'wb').write(bytes([0, 0, 7, 2]) + full[4:])
open('in/h_empty.idx', 'wb').write(b'')
open('in/h_huge.idx', 'wb').write(bytes([0, 0, 8, 2]) + struct.pack('>2I', 2**31, 2**20) + b'x' * 9)
idx('h_zero.idx', np.zeros((0, 3), np.uint8))
idx('h_oned.idx', np.arange(10, dtype=np.uint8))
idx('h_labels4.idx', lab[:4])
bad = bytearray(g); bad[len(g) // 2] ^= 0xff; bad[len(g) // 2 + 1] ^= 0x55
open('in/h_damaged.idx.gz', 'wb').write(bytes(bad))
npy('h_c16.npy', np.ones((3, 2), np.complex128))
np.save('in/h_obj.npy', np.array([[1, 'a'], [2, None]], dtype=object), allow_pickle=True)
npy('h_bool.npy', np.ones((3, 2), bool))
npy('h_u8.npy', np.ones((3, 2), np.uint64))
npy('h_f2.npy', np.ones((3, 2), np.float16))
npy('h_struct.npy', np.zeros(3, dtype=[('x', '<f4'), ('y', '<i4')]))
npy('h_datetime.npy', np.zeros((3, 2), 'M8[s]'))
npy('h_str.npy', np.array([['ab', 'c']]))
npy('h_scalar.npy', np.float64(3))
npy('h_oned.npy', np.arange(4.0))
npy('h_flabels.npy', np.arange(5.0))
npy('h_labels2d.npy', np.zeros((5, 1), np.int32))
npy('h_big_i8.npy', np.array([[1, 2**53 + 1]], np.int64))
npy('h_label_big.npy', np.array([0, 1, 2**40, 3, 4], np.int64))
h = open('in/f8.npy', 'rb').read()
open('in/h_trunc.npy', 'wb').write(h[:-1])
open('in/h_header.npy', 'wb').write(h.replace(b"'fortran_order'", b"'fortran_ordex'", 1))
open('in/h_header2.npy', 'wb').write(h.replace(b"(4, 4)", b"(4; 4)", 1))
npy('big.npy', rng.normal(size=(400, 100)))
EOF
$py mk.py >err 2>&1 && [ -s cases ] && ok "test inputs made (numpy)" \
  || { ko "making the test inputs"; finish; exit; }
# one IDX file written by hand, not by numpy: 2 points of 3 bytes
printf '\0\0\010\002\0\0\0\002\0\0\0\003\001\002\003\377\376\375' >in/printf.idx
md5sum in/* >inputs.md5

# ---------------------------------------------------- read back with h5py
cat >check.py <<'EOF'
import sys, h5py, numpy as np
out, ref, src, lsrc = sys.argv[1:5]
r = np.load(ref)
f = h5py.File(out, 'r')
errs = []
def want(cond, msg):
    if not cond: errs.append(msg)
h5t = h5py.h5t
want(sorted(f.keys()) == (['data', 'labels'] if 'labels' in r else ['data']),
     'datasets %s' % list(f.keys()))
v = f.attrs.get('nrdiff_data_version')
want(v is not None and v == 1 and v.dtype == np.int32 and v.shape == (),
     'nrdiff_data_version %r' % (v,))
want(str(f.attrs.get('creator', '')).startswith('nrdiff-import '),
     'creator %r' % f.attrs.get('creator'))
d, w = f['data'], r['data']
ftype = {'uint8': h5t.STD_U8LE, 'float32': h5t.IEEE_F32LE,
         'float64': h5t.IEEE_F64LE}[w.dtype.name]
want(d.id.get_type() == ftype, 'data type %s, want %s' % (d.dtype, w.dtype))
want(d.shape == w.shape, 'data shape %s, want %s' % (d.shape, w.shape))
want(d.shape == w.shape and np.array_equal(d[()], w), 'data values differ')
want(d.id.get_create_plist().get_layout() == h5py.h5d.CONTIGUOUS, 'not contiguous')
if r['shape'].size:
    s = d.attrs.get('shape')
    want(s is not None and s.dtype == np.int64 and list(s) == list(r['shape']),
         '@shape %r, want %r' % (s, r['shape']))
else:
    want('shape' not in d.attrs, '@shape on a 2-D source')
want(d.attrs.get('source') == src, '/data@source %r' % d.attrs.get('source'))
if 'labels' in r:
    l = f['labels']
    want(l.id.get_type() == h5t.STD_I32LE, 'labels type %s' % l.dtype)
    want(l.shape == r['labels'].shape and np.array_equal(l[()], r['labels']),
         'labels %s, want %s' % (l[()], r['labels']))
    want(l.attrs.get('source') == lsrc, '/labels@source %r' % l.attrs.get('source'))
if errs:
    print('; '.join(errs))
    sys.exit(1)
EOF

while IFS='|' read -r name opts data labels; do
  # shellcheck disable=SC2086  # opts: words
  "$imp" -o "out/$name.h5" $opts "$data" ${labels:+"$labels"} >stdout 2>err \
    && $py check.py "out/$name.h5" "ref/$name.npz" "$data" "$labels" >>err 2>&1 \
    && ok "$name: $(sed 's/^nrdiff-import: wrote [^:]*: //' stdout)" || ko "$name"
done <cases
"$imp" -o out/printf.h5 in/printf.idx >stdout 2>err \
  && $py -c "import h5py,sys; d=h5py.File('out/printf.h5')['data']
sys.exit(not (d.shape == (2, 3) and d[()].tolist() == [[1, 2, 3], [255, 254, 253]]))" 2>>err \
  && ok "an IDX file written by printf: 2 x 3 ubyte" || ko "printf IDX"
"$imp" -o out/line.h5 in/tiny-images-idx3-ubyte.gz in/tiny-labels-idx1-ubyte >stdout 2>err \
  && grep -qx "nrdiff-import: wrote out/line.h5: 5 points of dimension 12 (3 x 4, uint8), labels 0..9 (4 classes)" stdout \
  && ok "the success line: points, dimension, shape, type, labels" || ko "the success line"
"$imp" -o out/lim.h5 --limit 2 in/s16.idx.gz | grep -q "the first 2 of 3 points of dimension 4 (2 x 2, float64 from int16)" \
  && ok "the success line says --limit and the conversion" || ko "success line with --limit"

# the default output name: in the current directory, suffixes dropped
mkdir here && cd here
"$imp" ../in/tiny-images-idx3-ubyte.gz >/dev/null 2>../err && "$imp" ../in/f4.npy.gz >/dev/null 2>>../err \
  && "$imp" ../in/plain.idx >/dev/null 2>>../err \
  && [ "$(ls | tr '\n' ' ')" = "f4.h5 plain.h5 tiny-images.h5 " ] \
  && ok "default output: tiny-images.h5, f4.h5, plain.h5 in the current directory" \
  || { ls; ko "default output name"; }
cd .. && rm -rf here

"$imp" --help >stdout 2>err && grep -q "usage: nrdiff-import \[options\] DATA_FILE \[LABELS_FILE\]" stdout \
  && grep -q -- "-o, --output FILE" stdout && grep -q -- "--limit N" stdout \
  && grep -q -- "-V, --version" stdout && ok "--help" || ko "--help"
"$imp" --version >stdout 2>err && grep -q "^nrdiff-import [0-9]" stdout && ok "--version" || ko "--version"

# ------------------------------------------------------------ Fashion-MNIST
fm=/usr/share/datasets/fashion-mnist
if [ -d "$fm" ]; then
  "$imp" -o out/fm.h5 "$fm/t10k-images-idx3-ubyte.gz" "$fm/t10k-labels-idx1-ubyte.gz" >stdout 2>err \
    && grep -qx "nrdiff-import: wrote out/fm.h5: 10000 points of dimension 784 (28 x 28, uint8), labels 0..9 (10 classes)" stdout \
    && $py - "$fm" >>err 2>&1 <<'EOF' && ok "Fashion-MNIST t10k: 10000 x 784 uint8, @shape [28, 28], labels 0..9 1000 each, pixels as in the file" || ko "Fashion-MNIST t10k"
import gzip, sys, h5py, numpy as np
fm = sys.argv[1]
f = h5py.File('out/fm.h5', 'r')
d, l = f['data'], f['labels']
raw = np.frombuffer(gzip.open(fm + '/t10k-images-idx3-ubyte.gz').read()[16:], np.uint8)
lab = np.frombuffer(gzip.open(fm + '/t10k-labels-idx1-ubyte.gz').read()[8:], np.uint8)
assert d.shape == (10000, 784) and d.id.get_type() == h5py.h5t.STD_U8LE
assert list(d.attrs['shape']) == [28, 28]
assert np.array_equal(d[()].ravel(), raw)
assert l.id.get_type() == h5py.h5t.STD_I32LE and np.array_equal(l[()], lab)
assert np.bincount(l[()]).tolist() == [1000] * 10
assert f.attrs['nrdiff_data_version'] == 1
EOF
  "$imp" -o out/fmtrain.h5 --limit 1000 "$fm/train-images-idx3-ubyte.gz" "$fm/train-labels-idx1-ubyte.gz" >stdout 2>err \
    && grep -q "wrote out/fmtrain.h5: the first 1000 of 60000 points of dimension 784" stdout \
    && $py -c "import h5py,sys; f=h5py.File('out/fmtrain.h5'); sys.exit(not (f['data'].shape==(1000,784) and f['labels'].shape==(1000,)))" 2>>err \
    && ok "Fashion-MNIST train --limit 1000: 1000 points and labels" || ko "Fashion-MNIST train --limit"
else
  echo "skip - $fm not installed (Debian package dataset-fashion-mnist): the real data set is not checked"
fi
rm -f out/*

# ------------------------------------------------------------ hostile inputs
# Each: exit 2, one line "nrdiff-import: FILE: ..." naming the file that is
# wrong and matching the pattern, and no file in out/ (not even a temporary).
refused() { # name, file named, pattern, arguments...
  local name=$1 file=$2 pat=$3; shift 3
  "$imp" -o out/h.h5 "$@" >stdout 2>err; local rc=$?
  if [ $rc -eq 2 ] && [ "$(wc -l <err)" -eq 1 ] && grep -qF "nrdiff-import: $file: " err \
      && grep -q -- "$pat" err && [ -z "$(ls -A out)" ]; then
    ok "refused: $name ($(sed "s|^nrdiff-import: $file: ||" err))"
  else
    echo "       exit status $rc; out/: $(ls -A out)"; ko "refused: $name"
  fi
  rm -rf out; mkdir out
}
refused "truncated IDX" in/h_trunc.idx "expected 32 bytes .*, found 25$" in/h_trunc.idx
refused "truncated gzipped IDX" in/h_trunc.idx.gz "truncated: expected 76 bytes" in/h_trunc.idx.gz
refused "IDX header cut short" in/h_trunc_header.idx "truncated in the header" in/h_trunc_header.idx
refused "bytes after the IDX data" in/h_trailing.idx "3 bytes more than the header says" in/h_trailing.idx
refused "bad magic" in/h_badmagic.idx "not an IDX or .npy file" in/h_badmagic.idx
refused "unknown IDX type" in/h_badtype.idx "unknown element type 0x07" in/h_badtype.idx
refused "empty file" in/h_empty.idx "empty" in/h_empty.idx
refused "a header promising 2^51 bytes (not allocated)" in/h_huge.idx \
  "truncated: expected 2251799813685260 bytes (12-byte header + 2147483648 x 1048576 ubyte), found 21$" in/h_huge.idx
refused "no points" in/h_zero.idx "empty: the shape is 0 x 3" in/h_zero.idx
refused "damaged gzip data" in/h_damaged.idx.gz "gzip" in/h_damaged.idx.gz
refused "label count mismatch (both counts)" in/h_labels4.idx "4 labels for the 5 points of in/tiny-images" \
  in/tiny-images-idx3-ubyte.gz in/h_labels4.idx
refused "label count mismatch under --limit" in/h_labels4.idx "4 labels for the 5 points" \
  --limit 2 in/tiny-images-idx3-ubyte.gz in/h_labels4.idx
refused "1-D IDX data" in/h_oned.idx "needs one point per row" in/h_oned.idx
refused "1-D npy data" in/h_oned.npy "needs one point per row" in/h_oned.npy
refused "npy scalar" in/h_scalar.npy "needs one point per row" in/h_scalar.npy
refused "missing input" in/nothing.idx "No such file" in/nothing.idx
refused "missing labels" in/nothing.idx "No such file" in/plain.idx in/nothing.idx
refused "a directory" in "is a directory" in
refused "npy complex128" in/h_c16.npy "'<c16' is not supported: complex" in/h_c16.npy
refused "npy object array" in/h_obj.npy "'|O' is not supported: an object array" in/h_obj.npy
refused "npy bool" in/h_bool.npy "'|b1' is not supported" in/h_bool.npy
refused "npy float16" in/h_f2.npy "'<f2' is not supported" in/h_f2.npy
refused "npy uint64 data" in/h_u8.npy "'<u8' (uint64) is not supported" in/h_u8.npy
refused "npy structured" in/h_struct.npy "structured dtype" in/h_struct.npy
refused "npy datetime" in/h_datetime.npy "'<M8\[s\]' is not supported" in/h_datetime.npy
refused "npy strings" in/h_str.npy "'<U2' is not supported" in/h_str.npy
refused "npy int64 beyond 2^53" in/h_big_i8.npy "9007199254740993 .* beyond 2^53" in/h_big_i8.npy
refused "truncated npy" in/h_trunc.npy "expected 256 bytes .*, found 255" in/h_trunc.npy
refused "npy header: unknown key" in/h_header.npy "unexpected key 'fortran_ordex'" in/h_header.npy
refused "npy header: bad shape" in/h_header2.npy "bad .npy header" in/h_header2.npy
refused "float labels" in/h_flabels.npy "labels must be integers" in/tiny-images-idx3-ubyte.gz in/h_flabels.npy
refused "2-D labels" in/h_labels2d.npy "labels must be 1-D" in/tiny-images-idx3-ubyte.gz in/h_labels2d.npy
refused "a label beyond int32" in/h_label_big.npy "label 1099511627776 (point 2) is not an int32" \
  in/tiny-images-idx3-ubyte.gz in/h_label_big.npy

# the output exists: refused before reading, the file unchanged
echo keep >out/h.h5
"$imp" -o out/h.h5 in/plain.idx >stdout 2>err; rc=$?
[ $rc -eq 2 ] && grep -qx "nrdiff-import: out/h.h5: exists; remove it or choose another --output" err \
  && [ "$(cat out/h.h5)" = keep ] && [ "$(ls -A out)" = h.h5 ] \
  && ok "output exists: exit 2, the file unchanged" || { echo "       exit $rc"; ko "output exists"; }
rm -f out/h.h5

# usage errors: exit 2, nothing written
for args in "" "--limit 0 in/plain.idx" "--limit x in/plain.idx" "--frobnicate in/plain.idx" \
    "in/plain.idx in/plain.idx in/plain.idx"; do
  # shellcheck disable=SC2086
  "$imp" -o out/h.h5 $args >stdout 2>err; rc=$?
  [ $rc -eq 2 ] && [ "$(wc -l <err)" -eq 1 ] && grep -q "^nrdiff-import: " err && [ -z "$(ls -A out)" ] \
    && ok "usage error '$args': exit 2, one line" || { echo "       exit $rc"; ko "usage error '$args'"; }
done

# a write failure (the file size limit: EFBIG, as a full disk's ENOSPC):
# exit 1, the output named, nothing left behind
(trap '' XFSZ; ulimit -f 64; exec "$imp" -o out/big.h5 in/big.npy) >stdout 2>err; rc=$?
[ $rc -eq 1 ] && grep -q "^nrdiff-import: out/big.h5: cannot .*File too large" err && [ -z "$(ls -A out)" ] \
  && ok "write failure: exit 1 ($(sed 's/^nrdiff-import: //' err)), nothing left" \
  || { echo "       exit $rc; out/: $(ls -A out)"; ko "write failure"; }
"$imp" -o nodir/x.h5 in/plain.idx >stdout 2>err; rc=$?
[ $rc -eq 1 ] && grep -q "^nrdiff-import: nodir/x.h5: cannot create" err \
  && ok "output directory missing: exit 1" || { echo "       exit $rc"; ko "output directory missing"; }

md5sum -c --quiet inputs.md5 >err 2>&1 && ok "the inputs are unchanged" || ko "an input changed"

finish
