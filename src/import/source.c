/* Reading an input file for nrdiff-import (see source.h): opening it
 * through zlib, finding its format, reading exactly what the header
 * promises and saying how much is missing when the file is shorter. */
#define _XOPEN_SOURCE 700 /* open, fstat */
#include "import/source.h"

#include "import/idx.h"
#include "import/npy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int imp_error(const char *path, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "nrdiff-import: %s: ", path);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return status;
}

/* zlib's reason for a failed gzread: a system error is an I/O failure, a
 * damaged compressed stream is a bad file. */
static int gz_failure(imp_source *s) {
  int err = 0;
  const char *msg = gzerror(s->gz, &err);
  if (err == Z_ERRNO)
    return imp_error(s->path, IMP_IO, "read error: %s", strerror(errno));
  if (err == Z_MEM_ERROR)
    return imp_error(s->path, IMP_IO, "out of memory decompressing");
  const char *fd = strstr(msg, ">: "); /* "<fd:3>: " before the reason */
  if (!strncmp(msg, "<fd:", 4) && fd) msg = fd + 3;
  return imp_error(s->path, IMP_BAD, "damaged gzip data (zlib: %s)", msg);
}

/* Up to n bytes into buf (*got: how many); 0 unless zlib failed other than
 * by the stream ending early (a truncated gzip file is a short file). */
static int gz_fill(imp_source *s, unsigned char *buf, size_t n, size_t *got) {
  *got = 0;
  while (*got < n) {
    size_t want = n - *got;
    if (want > (1u << 30)) want = 1u << 30; /* gzread takes an int's worth */
    int r = gzread(s->gz, buf + *got, (unsigned)want);
    if (r > 0) {
      *got += (size_t)r;
      s->offset += (uint64_t)r;
      continue;
    }
    if (r < 0) {
      int err = 0;
      gzerror(s->gz, &err);
      if (err != Z_BUF_ERROR) return gz_failure(s); /* BUF: ended early */
    }
    break; /* the end of the data */
  }
  return IMP_OK;
}

/* The file ended at s->offset, before what it should have. */
static int truncated(imp_source *s, uint64_t wanted_end) {
  const char *how = gzdirect(s->gz) ? "" : " (uncompressed)";
  if (s->expected)
    return imp_error(s->path, IMP_BAD,
                     "truncated: expected %llu bytes (%s), found %llu%s",
                     (unsigned long long)s->expected, s->layout,
                     (unsigned long long)s->offset, how);
  return imp_error(s->path, IMP_BAD,
                   "truncated in the header: expected at least %llu bytes, "
                   "found %llu%s",
                   (unsigned long long)wanted_end,
                   (unsigned long long)s->offset, how);
}

int imp_read(imp_source *s, void *buf, size_t n) {
  size_t got;
  uint64_t end = s->offset + n;
  int rc = gz_fill(s, buf, n, &got);
  if (rc) return rc;
  return got < n ? truncated(s, end) : IMP_OK;
}

/* Read and drop n bytes (the rows past --limit: the file must still be
 * whole). */
static int skip(imp_source *s, uint64_t n) {
  unsigned char buf[1 << 16];
  while (n > 0) {
    size_t want = n < sizeof buf ? (size_t)n : sizeof buf, got;
    int rc = gz_fill(s, buf, want, &got);
    if (rc) return rc;
    if (got < want) return truncated(s, s->expected);
    n -= got;
  }
  return IMP_OK;
}

/* Nothing after the data: more bytes mean the header does not describe
 * the file (and reading one more byte makes zlib check the gzip CRC). */
static int expect_end(imp_source *s) {
  unsigned char buf[1 << 12];
  uint64_t extra = 0;
  for (;;) {
    size_t got;
    uint64_t before = s->offset;
    int rc = gz_fill(s, buf, sizeof buf, &got);
    if (rc) return rc;
    extra += s->offset - before;
    if (got < sizeof buf) break;
  }
  if (extra)
    return imp_error(s->path, IMP_BAD,
                     "%llu bytes more than the header says: expected %llu "
                     "(%s), found %llu%s",
                     (unsigned long long)extra, (unsigned long long)s->expected,
                     s->layout, (unsigned long long)s->offset,
                     gzdirect(s->gz) ? "" : " (uncompressed)");
  return IMP_OK;
}

/* a->nbytes bytes into a->data, the buffer grown as they arrive: a header
 * that promises far more than the file holds (damaged, or hostile) is
 * found truncated, not met with an allocation of what it promises. */
static int read_growing(imp_source *s, imp_array *a) {
  size_t have = 0, cap = 0;
  while (have < a->nbytes) {
    size_t next = cap ? cap * 2 : (size_t)1 << 24;
    if (next > a->nbytes || next < cap) next = a->nbytes;
    unsigned char *p = realloc(a->data, next);
    if (!p)
      return imp_error(s->path, IMP_IO,
                       "out of memory (%zu bytes for the data)", a->nbytes);
    a->data = p;
    cap = next;
    int rc = imp_read(s, a->data + have, cap - have);
    if (rc) return rc;
    have = cap;
  }
  return IMP_OK;
}

uint64_t imp_count(const uint64_t *dims, int ndim, int size) {
  uint64_t n = (uint64_t)size;
  const uint64_t cap = (uint64_t)1 << 62;
  for (int i = 0; i < ndim; i++) {
    if (dims[i] != 0 && n > cap / dims[i]) return 0;
    n *= dims[i];
  }
  return n;
}

uint64_t imp_row_size(const imp_array *a) {
  uint64_t n = 1;
  for (int i = 1; i < a->ndim; i++)
    n *= a->dims[i];
  return n;
}

void imp_shape_text(const imp_array *a, int from, char *buf, size_t len) {
  size_t k = 0;
  buf[0] = 0;
  for (int i = from; i < a->ndim && k < len; i++)
    k += (size_t)snprintf(buf + k, len - k, "%s%llu", i > from ? " x " : "",
                          (unsigned long long)a->dims[i]);
}

int imp_read_body(imp_source *s, imp_array *a, uint64_t limit) {
  uint64_t header = s->offset,
           total = imp_count(a->dims, a->ndim, a->kind.size);
  char shape[128];
  imp_shape_text(a, 0, shape, sizeof shape);
  if (a->ndim > 0 && total == 0) {
    for (int i = 0; i < a->ndim; i++)
      if (a->dims[i] == 0)
        return imp_error(s->path, IMP_BAD, "empty: the shape is %s", shape);
    return imp_error(s->path, IMP_BAD, "too large: %s elements of %d bytes",
                     shape, a->kind.size);
  }
  s->expected = header + total;
  snprintf(s->layout, sizeof s->layout, "%llu-byte header + %s %s",
           (unsigned long long)header, a->ndim ? shape : "a scalar", a->dtype);
  a->file_rows = a->ndim > 0 ? a->dims[0] : 1;
  if (a->ndim > 0 && limit > 0 && limit < a->dims[0]) a->dims[0] = limit;
  uint64_t keep = imp_count(a->dims, a->ndim, a->kind.size);
  if (keep > SIZE_MAX)
    return imp_error(s->path, IMP_IO, "too large for this machine's memory");
  a->nbytes = (size_t)keep;
  int rc = read_growing(s, a);
  if (!rc) rc = skip(s, total - keep);
  if (!rc) rc = expect_end(s);
  return rc;
}

int64_t imp_int_at(const imp_array *a, uint64_t i) {
  const unsigned char *p = a->data + i * (uint64_t)a->kind.size;
  uint64_t u = 0;
  int n = a->kind.size;
  for (int k = 0; k < n; k++) /* most significant byte first */
    u = (u << 8) | p[a->kind.big_endian ? k : n - 1 - k];
  if (a->kind.cls == IMP_UINT) return u > INT64_MAX ? INT64_MAX : (int64_t)u;
  if (n < 8 && (u >> (8 * n - 1)) & 1) u |= ~(uint64_t)0 << (8 * n); /* sign */
  return (int64_t)u;
}

const char *imp_kind_name(imp_kind k) {
  static const char *names[3][4] = {
      {"uint8", "uint16", "uint32", "uint64"},
      {"int8", "int16", "int32", "int64"},
      {"float8?", "float16", "float32", "float64"}};
  int i = k.size == 1 ? 0 : k.size == 2 ? 1 : k.size == 4 ? 2 : 3;
  return names[k.cls][i];
}

void imp_array_free(imp_array *a) {
  free(a->data);
  a->data = NULL;
}

/* Open path read-only (never written) with zlib; a directory is refused
 * here, where zlib would only fail at the first read. */
static int open_source(imp_source *s, const char *path) {
  memset(s, 0, sizeof *s);
  s->path = path;
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return imp_error(path, IMP_BAD, "cannot open: %s", strerror(errno));
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    close(fd);
    return imp_error(path, IMP_BAD, "is a directory, not a data file");
  }
  s->gz = gzdopen(fd, "rb");
  if (!s->gz) {
    close(fd);
    return imp_error(path, IMP_IO, "cannot read: out of memory");
  }
  gzbuffer(s->gz, 1 << 17);
  return IMP_OK;
}

int imp_read_file(const char *path, uint64_t limit, imp_array *a) {
  memset(a, 0, sizeof *a);
  imp_source s;
  int rc = open_source(&s, path);
  if (rc) return rc;
  unsigned char magic[4];
  size_t got = 0;
  rc = gz_fill(&s, magic, sizeof magic, &got);
  if (!rc && got == 0) rc = imp_error(path, IMP_BAD, "empty");
  if (!rc && got < sizeof magic)
    rc = imp_error(path, IMP_BAD, "not an IDX or .npy file: only %zu bytes",
                   got);
  if (!rc) {
    if (magic[0] == 0 && magic[1] == 0)
      rc = idx_read(&s, magic, limit, a);
    else if (magic[0] == 0x93 && !memcmp(magic + 1, "NUM", 3))
      rc = npy_read(&s, limit, a);
    else
      rc = imp_error(path, IMP_BAD,
                     "not an IDX or .npy file (it starts with bytes %02x %02x "
                     "%02x %02x; IDX starts 00 00, .npy \\x93NUMPY)",
                     magic[0], magic[1], magic[2], magic[3]);
  }
  gzclose_r(s.gz);
  if (rc) imp_array_free(a);
  return rc;
}
