/* nrdiff-import's input side: an array read from a data-set file, whatever
 * its format (IDX: idx.h, NumPy .npy: npy.h), and the file it is read from,
 * gzipped or not (zlib's gzread reads plain files as they are).
 *
 * Every function that can fail prints the one line "nrdiff-import: FILE:
 * what is wrong" itself and returns the exit status it means: IMP_BAD (2)
 * for a file that is not what it should be, IMP_IO (1) when the system
 * fails (a read error, no memory). */
#ifndef NRDIFF_IMPORT_SOURCE_H
#define NRDIFF_IMPORT_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include <zlib.h>

enum { IMP_OK = 0, IMP_IO = 1, IMP_BAD = 2 }; /* = the exit statuses */
enum { IMP_MAX_DIMS = 32 }; /* NumPy's limit; IDX could say up to 255 */

/* What one element is, as stored in the file. */
typedef enum { IMP_UINT, IMP_INT, IMP_FLOAT } imp_class;
typedef struct {
  imp_class cls;
  int size;       /* bytes: 1, 2, 4 or 8 */
  int big_endian; /* the bytes are big-endian (always in IDX; npy '>') */
} imp_kind;

/* An array in C order (the last index fastest), its bytes as in the file
 * (no byte swapping: HDF5 converts when writing). */
typedef struct {
  int ndim;
  uint64_t dims[IMP_MAX_DIMS]; /* dims[0]: the rows in data (--limit) */
  uint64_t file_rows;          /* dims[0] as the file says */
  imp_kind kind;
  char dtype[40]; /* the file's own name of the type ("ubyte", "'<f8'") */
  unsigned char *data;
  size_t nbytes;
} imp_array;

/* An open input file. */
typedef struct {
  gzFile gz;
  const char *path;
  uint64_t offset;   /* uncompressed bytes read so far */
  uint64_t expected; /* the file's whole length, once the header says it */
  char layout[256];  /* how the header explains it ("16-byte header + ...") */
} imp_source;

/* Print "nrdiff-import: PATH: ..." and return status. */
int imp_error(const char *path, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Read PATH whatever its format (found from its first bytes): at most limit
 * rows (0: all), the rest of the file still read to check it is whole. */
int imp_read_file(const char *path, uint64_t limit, imp_array *a);
void imp_array_free(imp_array *a);

/* For the readers.  Exactly n bytes; a file that ends before says how long
 * it should be and how long it is. */
int imp_read(imp_source *s, void *buf, size_t n);
/* The element count of the dims, checked against overflow (0 if so). */
uint64_t imp_count(const uint64_t *dims, int ndim, int size);
/* After the header (dims, file_rows and kind set, s->offset at the data):
 * check the size, read the first min(limit, rows) rows (0: all), read past
 * the others, and check that the file ends there. */
int imp_read_body(imp_source *s, imp_array *a, uint64_t limit);

/* Elements per row (1 for a 1-D array); the shape as "10 x 28 x 28". */
uint64_t imp_row_size(const imp_array *a);
void imp_shape_text(const imp_array *a, int from, char *buf, size_t len);
/* Element i as an integer (kind IMP_INT or IMP_UINT; a uint64 above
 * INT64_MAX is returned as INT64_MAX). */
int64_t imp_int_at(const imp_array *a, uint64_t i);
/* "uint8", "int16", "float64", ... */
const char *imp_kind_name(imp_kind k);

#endif
