/* Writing nrdiff's data file, layout version 1 (doc/data-files.md):
 *   /data    n x d, the points row by row: uint8, float32 or float64;
 *            @shape (int64[]) the trailing shape of a source of more than
 *            2 dims, @source the input file as given
 *   /labels  n int32 (when labels are given), @source likewise
 *   /        @nrdiff_data_version (int 1), @creator ("nrdiff-import V")
 * Written to a temporary file beside the output and linked into place when
 * complete; an existing file is never replaced. */
#ifndef NRDIFF_IMPORT_DATA_WRITE_H
#define NRDIFF_IMPORT_DATA_WRITE_H

#include "import/source.h"

enum { DATA_FILE_VERSION = 1 };

/* The element type of /data for a source element kind. */
typedef enum { OUT_NONE, OUT_U8, OUT_F32, OUT_F64 } out_type;
out_type data_out_type(imp_kind k);
const char *data_out_name(out_type t); /* "uint8", "float32", "float64" */

typedef struct {
  const char *out;       /* the output file */
  const imp_array *data; /* ndim >= 2 */
  const char *data_path; /* as given on the command line */
  const int32_t *labels; /* data->dims[0] of them, or NULL */
  const char *labels_path;
  const char *creator;
} data_file;

/* Write f->out; 0, IMP_BAD (2) if it exists, IMP_IO (1) if it cannot be
 * written (nothing left behind), the message printed. */
int data_write(const data_file *f);

#endif
