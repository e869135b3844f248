/* Data files (data.source: file; the layout is doc/data-files.md's): the
 * reader the run is given.  Local: every rank reads the same file
 * independently (read-only; the file is never modified). */
#ifndef NRDIFF_DATA_FILE_H
#define NRDIFF_DATA_FILE_H

#include <stddef.h>

#include "core/dataset.h"

/* Read the n x d dataset `dataset` of `file` (uint8, float32 or float64;
 * other integer types are converted too) and, when `labels` is not "",
 * the n integer labels of that dataset.  NRD_ERR_IO if the file cannot be
 * opened or read, NRD_ERR_INPUT for a missing dataset or a wrong shape or
 * type, with one message naming the file and the dataset in err. */
int data_file_read(const char *file, const char *dataset, const char *labels,
                   data_raw *raw, char *err, size_t errlen);

#endif
