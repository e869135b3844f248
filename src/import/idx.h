/* IDX files (MNIST, Fashion-MNIST): a 4-byte magic (0, 0, the element
 * type, the number of dims), each dim as a big-endian uint32, then the
 * elements in C order, big-endian.  Types: 0x08 ubyte, 0x09 sbyte,
 * 0x0B short, 0x0C int, 0x0D float, 0x0E double. */
#ifndef NRDIFF_IMPORT_IDX_H
#define NRDIFF_IMPORT_IDX_H

#include "import/source.h"

/* The rest of an IDX file whose first 4 bytes, magic, were read from s
 * (at most limit rows, 0: all). */
int idx_read(imp_source *s, const unsigned char magic[4], uint64_t limit,
             imp_array *a);

#endif
