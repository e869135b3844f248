/* Reading IDX files (see idx.h). */
#include "import/idx.h"

#include <stdio.h>
#include <string.h>

int idx_read(imp_source *s, const unsigned char magic[4], uint64_t limit,
             imp_array *a) {
  static const struct {
    unsigned char code;
    const char *name;
    imp_kind kind;
  } types[] = {
      {0x08, "ubyte", {IMP_UINT, 1, 1}},  {0x09, "sbyte", {IMP_INT, 1, 1}},
      {0x0B, "short", {IMP_INT, 2, 1}},   {0x0C, "int", {IMP_INT, 4, 1}},
      {0x0D, "float", {IMP_FLOAT, 4, 1}}, {0x0E, "double", {IMP_FLOAT, 8, 1}}};
  int t = -1;
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
    if (types[i].code == magic[2]) t = (int)i;
  if (t < 0)
    return imp_error(s->path, IMP_BAD,
                     "not an IDX file: unknown element type 0x%02x in the "
                     "magic number (IDX has 0x08, 0x09, 0x0B-0x0E)",
                     magic[2]);
  if (magic[3] == 0 || magic[3] > IMP_MAX_DIMS)
    return imp_error(s->path, IMP_BAD,
                     "not an IDX file: %u dimensions in the magic number "
                     "(1 to %d read here)",
                     magic[3], IMP_MAX_DIMS);
  a->ndim = magic[3];
  a->kind = types[t].kind;
  snprintf(a->dtype, sizeof a->dtype, "%s", types[t].name);
  unsigned char d[4 * IMP_MAX_DIMS];
  int rc = imp_read(s, d, 4 * (size_t)a->ndim);
  if (rc) return rc;
  for (int i = 0; i < a->ndim; i++)
    a->dims[i] = (uint64_t)d[4 * i] << 24 | (uint64_t)d[4 * i + 1] << 16 |
                 (uint64_t)d[4 * i + 2] << 8 | d[4 * i + 3];
  return imp_read_body(s, a, limit);
}
