/* The output target: the name output.file and the files of its family
 * (OUTPUT, OUTPUT.tmp, OUTPUT.ckpt[.prev|.tmp], OUTPUT.done, OUTPUT.lock;
 * doc/restart.md), checked before anything is written: names MPI-IO can
 * handle, no input among them, one run at a time (the lock), and what a
 * fresh run or a restart may find there.  Writing the output file itself is
 * h5out.h's. */
#ifndef NRDIFF_OUTPUT_TARGET_H
#define NRDIFF_OUTPUT_TARGET_H

#include <stddef.h>

#include "config/params.h"

/* Collective (rank 0 looks, everyone gets the answer); NRD_ERR_INPUT with
 * a message naming output.file when
 *   - output.file is not a usable file name: a directory ('.', '..', '/',
 *     a trailing '/', an existing directory), too long for MPI-IO, ending
 *     in a companion's suffix (.tmp, .ckpt, .ckpt.prev, .ckpt.tmp, .done,
 *     .lock), in a directory that does not exist or cannot be written;
 *     or a companion that exists is a directory, a symbolic link, not a
 *     regular file, or a hard link of another;
 *   - output.file or a companion is an input: the parameter file,
 *     forward.u_file or forward.q_file (same device and inode, or the same
 *     resolved path);
 *   - another run holds output.file's lock (OUTPUT.lock; its pid and host
 *     are named).  Unless dry_run, rank 0 takes the lock here and holds it
 *     until h5out_release_target (or the process ends);
 *   - a fresh run finds output.file, its .tmp or its checkpoints (.ckpt,
 *     .ckpt.prev), unless output.overwrite;
 *   - a restart finds output.file and output.file.done: the run is
 *     complete.  Without the marker (a kill just before it was written)
 *     *unmarked is set instead: the caller writes the marker.
 * Unless dry_run or *unmarked, leftovers the run replaces are then removed
 * (the .done marker, a partial .tmp, and for a fresh run old checkpoints).
 * Nothing is written or removed when it refuses (and a lock this process
 * already holds stays held). */
int h5out_prepare_target(const nrd_params *p, int restart, int dry_run,
                         int *unmarked, char *err, size_t errlen);

/* Collective (rank 0 acts): the run is over, OUTPUT and OUTPUT.done are
 * written (or it stopped after a checkpoint): remove OUTPUT.lock and
 * release the lock.  After a fatal error the lock is released all the
 * same (nrd_at_fatal); its file stays then if it was there before. */
void h5out_release_target(void);

/* Local helpers for the family's files, for their writers (h5out.c,
 * checkpoints). */
/* path + suffix (malloc'd: NRD_XCALLOC). */
char *output_companion(const char *path, const char *suffix);
/* The directory part of path ("." if none, "/" for the root; malloc'd). */
char *output_dir_of(const char *path);
/* Make path durable (fsync): 0 or the errno (a delayed write error, such as
 * a full disk, shows here). */
int output_sync(const char *path);
/* Make a rename to path durable: fsync its directory (errors ignored: the
 * file itself is on disk). */
void output_sync_dir(const char *path);

#endif
