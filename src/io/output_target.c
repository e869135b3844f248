/* The output target (see output_target.h): the names of output.file's
 * family, their inputs, the lock and what a run may find there.  Rank 0
 * looks and acts; the verdict is broadcast. */
#define _GNU_SOURCE /* F_OFD_SETLK; gethostname, gmtime_r, realpath */
#include "config.h"

#include "io/output_target.h"
#include "io/h5check.h"
#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------- files */

char *output_companion(const char *path, const char *suffix) {
  size_t n = strlen(path) + strlen(suffix) + 1;
  char *s = NRD_XCALLOC(n, 1);
  snprintf(s, n, "%s%s", path, suffix);
  return s;
}

static char *copy_string(const char *s) {
  return output_companion(s, "");
}

char *output_dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return copy_string(".");
  size_t n = slash == path ? 1 : (size_t)(slash - path);
  char *d = NRD_XCALLOC(n + 1, 1);
  memcpy(d, path, n);
  return d;
}

int output_sync(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  int e = fsync(fd) == 0 ? 0 : errno;
  close(fd);
  return e;
}

void output_sync_dir(const char *path) {
  char *dir = output_dir_of(path);
  output_sync(dir);
  free(dir);
}

/* ------------------------------------------------------------- names */

/* Every file the run writes or removes: OUTPUT and its companions
 * (doc/restart.md), longest suffix first. */
static const struct {
  const char *suffix, *what;
} FAMILY[] = {
    {".ckpt.prev", "its previous checkpoint"},
    {".ckpt.tmp", "its partial checkpoint"},
    {".ckpt", "its checkpoint"},
    {".done", "its completion marker"},
    {".lock", "its lock file"},
    {".tmp", "its partial output"},
    {"", "the output"},
};
enum { N_FAMILY = sizeof FAMILY / sizeof FAMILY[0], LONGEST_SUFFIX = 10 };

/* Name limits, found by experiment with Open MPI 4.1's MPI-IO (ompio),
 * which HDF5 hands the names of OUTPUT.tmp, OUTPUT.ckpt.tmp, OUTPUT.ckpt
 * and OUTPUT.ckpt.prev.  From each name it builds companion names:
 *   "NAME.locktest.RANK" in a 256-byte stack buffer (sharedfp/lockedfile):
 *     a NAME of 245 characters or more overflows it ("buffer overflow
 *     detected", exit 134; a segfault for very long names);
 *   "SESSION_DIR/BASE_cid-CID-PID.sm" (sharedfp/sm, one node) and
 *   "NAME-JOBID-PID.lock" (sharedfp/lockedfile, several nodes), BASE the last
 *     component: over 255 bytes the open fails after NAME was created (a
 *     stray OUTPUT.tmp that blocks the next run).
 * With ranks and pids of up to 7 digits and job ids of 10: */
enum {
  MPIIO_NAME_MAX = 255 - 10 - 7, /* 238: NAME + ".locktest." + RANK */
  OUTPUT_NAME_MAX = MPIIO_NAME_MAX - LONGEST_SUFFIX, /* 228: output.file */
  MPIIO_BASE_EXTRA = 1 + 10 + 1 + 7 + 5, /* 24: "-JOBID-PID.lock" */
};

/* A name for a message: long ones shortened to their ends and length. */
static const char *shown(const char *s, char *buf, size_t len) {
  size_t n = strlen(s);
  if (n <= 72) return s;
  snprintf(buf, len, "%.40s...%s (%zu characters)", s, s + n - 16, n);
  return buf;
}

/* The first leading component of `dir` that exists and is not a directory
 * (the path goes through a regular file), malloc'd, or NULL. */
static char *first_non_directory(const char *dir) {
  char *s = copy_string(dir);
  for (char *q = s + 1;; q++) {
    if (*q != '/' && *q) continue;
    char c = *q;
    *q = 0;
    struct stat st;
    if (stat(s, &st) == 0 && !S_ISDIR(st.st_mode)) return s;
    if (!c) break;
    *q = c;
  }
  free(s);
  return NULL;
}

#define BAD(...)                                                               \
  do {                                                                         \
    snprintf(msg, len, "key 'output.file': " __VA_ARGS__);                     \
    goto done;                                                                 \
  } while (0)

/* output.file is a name the run can use: a file name (not a directory), of
 * a length MPI-IO handles, in an existing writable directory, not ending in
 * a companion's suffix; no companion that exists is a directory, a device,
 * a symbolic link or another companion.  Rank 0, local. */
static int check_name(const char *out, char *msg, size_t len) {
  char b1[128], b2[128];
  char *dir = NULL, *bad = NULL;
  size_t n = strlen(out);
  const char *base = strrchr(out, '/') ? strrchr(out, '/') + 1 : out;
  if (n > OUTPUT_NAME_MAX)
    BAD("the name '%s' is too long: at most %d characters (MPI-IO, Open "
        "MPI's at least, fails or overflows a buffer on longer names once "
        "nrdiff adds '.ckpt.prev')",
        shown(out, b1, sizeof b1), OUTPUT_NAME_MAX);
  if (!*base)
    BAD("'%s' ends with '/': it names a directory; give a file name in it, "
        "e.g. '%snrdiff.h5'",
        out, out);
  if (strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
    BAD("'%s' names a directory; give a file name, e.g. '%s/nrdiff.h5'", out,
        out);
  for (int i = 0; i < N_FAMILY; i++) {
    size_t k = strlen(FAMILY[i].suffix);
    if (k && n > k && strcmp(out + n - k, FAMILY[i].suffix) == 0)
      BAD("'%s' ends in '%s': nrdiff names so the %s of a run writing "
          "'%.*s' (the two runs' files would be confused); choose a name "
          "without it",
          out, FAMILY[i].suffix, FAMILY[i].what + 4, (int)(n - k), out);
  }
  dir = output_dir_of(out);
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    int e = errno;
    if ((bad = first_non_directory(dir)))
      BAD("'%s' is not a directory, so '%s' cannot be created", bad, out);
    if (e == ENOENT)
      BAD("directory '%s' does not exist (create it first), so '%s' cannot "
          "be created",
          dir, out);
    BAD("cannot use directory '%s': %s", dir, strerror(e));
  }
  if (access(dir, W_OK | X_OK) != 0)
    BAD("cannot write in directory '%s': %s", dir, strerror(errno));
  long name_max = pathconf(dir, _PC_NAME_MAX);
  if (name_max <= 0) name_max = 255;
  long base_max = name_max - LONGEST_SUFFIX - MPIIO_BASE_EXTRA;
  if ((long)strlen(base) > base_max)
    BAD("its last component '%s' is too long: at most %ld characters in "
        "'%s' (file names there have at most %ld bytes, and nrdiff and "
        "MPI-IO add up to %d: '.ckpt.prev', then '-JOBID-PID.lock')",
        shown(base, b1, sizeof b1), base_max, dir, name_max,
        LONGEST_SUFFIX + MPIIO_BASE_EXTRA);
  /* the companions that exist: files, and distinct */
  for (int i = 0; i < N_FAMILY && !msg[0]; i++) {
    char *f = output_companion(out, FAMILY[i].suffix);
    struct stat ls;
    if (lstat(f, &ls) == 0) {
      const char *why = NULL;
      /* a checkpoint is only read (the restart rejects one that is not a
       * checkpoint file, and uses the other) and replaced by rename, which
       * replaces a link, not its target: only a directory is in the way */
      int checkpoint = !strcmp(FAMILY[i].suffix, ".ckpt") ||
                       !strcmp(FAMILY[i].suffix, ".ckpt.prev");
      int reader_decides =
          checkpoint && !S_ISDIR(ls.st_mode) && !S_ISREG(ls.st_mode);
      if (reader_decides)
        why = NULL;
      else if (S_ISLNK(ls.st_mode))
        why = "is a symbolic link (nrdiff writes its files in place: remove "
              "the link, or choose another output.file)";
      else if (S_ISDIR(ls.st_mode))
        why = "is a directory";
      else if (!S_ISREG(ls.st_mode))
        why = "exists and is not a regular file";
      if (why && !FAMILY[i].suffix[0] && S_ISDIR(ls.st_mode))
        snprintf(msg, len,
                 "key 'output.file': '%s' is an existing directory; give a "
                 "file name in it, e.g. '%s/nrdiff.h5'",
                 out, out);
      else if (why)
        snprintf(msg, len, "key 'output.file': '%s' (%s) %s",
                 shown(f, b1, sizeof b1), FAMILY[i].what, why);
      for (int j = i + 1; !why && j < N_FAMILY && !msg[0]; j++) {
        char *g = output_companion(out, FAMILY[j].suffix);
        struct stat gs;
        if (lstat(g, &gs) == 0 && gs.st_dev == ls.st_dev &&
            gs.st_ino == ls.st_ino)
          snprintf(msg, len,
                   "key 'output.file': '%s' (%s) and '%s' (%s) are the same "
                   "file (hard links): writing one would destroy the other; "
                   "remove one",
                   shown(f, b1, sizeof b1), FAMILY[i].what,
                   shown(g, b2, sizeof b2), FAMILY[j].what);
        free(g);
      }
    }
    free(f);
  }
done:
  free(dir);
  free(bad);
  return msg[0] ? NRD_ERR_INPUT : NRD_OK;
}

/* ------------------------------------------------------------ inputs */

/* `path` resolved: its directory through realpath, then its last
 * component; malloc'd (the path itself if the directory cannot be). */
static char *resolved(const char *path) {
  char *dir = output_dir_of(path), *real = realpath(dir, NULL);
  const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
  char *s = NULL;
  if (real) {
    size_t n = strlen(real) + strlen(base) + 2;
    s = NRD_XCALLOC(n, 1);
    snprintf(s, n, "%s/%s", real, base);
  }
  free(dir);
  free(real);
  return s ? s : copy_string(path);
}

/* Whether `a` and `b` are one file: by device and inode where both exist,
 * else by their resolved paths. */
static int same_file(const char *a, const char *b) {
  struct stat sa, sb;
  if (stat(a, &sa) == 0 && stat(b, &sb) == 0)
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  char *ra = resolved(a), *rb = resolved(b);
  int same = ra && rb && strcmp(ra, rb) == 0;
  free(ra);
  free(rb);
  return same;
}

/* No file the run writes or removes is one of its inputs. Rank 0. */
static int check_inputs(const nrd_params *p, char *msg, size_t len) {
  const struct {
    const char *path, *what;
  } in[] = {{p->source_file, "the parameter file"},
            {p->forward.u_file, "forward.u_file"},
            {p->forward.q_file, "forward.q_file"},
            {p->data.file, "data.file"}};
  char b1[128], b2[128];
  for (int i = 0; i < N_FAMILY; i++) {
    char *f = output_companion(p->output.file, FAMILY[i].suffix);
    for (size_t j = 0; j < sizeof in / sizeof in[0]; j++)
      if (in[j].path && in[j].path[0] && same_file(f, in[j].path)) {
        snprintf(msg, len,
                 "key 'output.file': '%s' (%s) is %s '%s': the run would "
                 "replace or remove it; choose another output.file",
                 shown(f, b1, sizeof b1), FAMILY[i].what, in[j].what,
                 shown(in[j].path, b2, sizeof b2));
        free(f);
        return NRD_ERR_INPUT;
      }
    free(f);
  }
  return NRD_OK;
}

/* -------------------------------------------------------------- lock */

/* The lock: rank 0 holds an exclusive open-file-description lock (fcntl
 * F_OFD_SETLK: per open file, not per process, released by the kernel when
 * the process ends however it ends, and honoured over NFS) on OUTPUT.lock
 * from before the run looks at or removes anything until OUTPUT and
 * OUTPUT.done are complete.  The file holds "nrdiff pid PID host HOST
 * started DATE" for the message of a run that finds it locked.  The holder
 * removes it before unlocking, and a run that locks a file checks that it
 * is still the one at that name (else its holder just removed it, and it
 * tries again): so a lock is never held on two files at once.  A lock
 * file left by a killed run is not locked: the next run takes it over. */
static struct {
  int fd, created;
  char *path;
  char old[512]; /* a lock file taken over: what it said (for a refusal) */
  ssize_t n_old;
} lk = {-1, 0, NULL, "", 0};

/* The holder's identity for a message (who); returns 1 if it is a process
 * of this host that is on its way out: gone, a zombie, or orphaned (parent
 * 1), as the ranks of an mpirun killed with SIGKILL are for up to a second
 * or so before they notice and exit.  Such a lock is waited for. */
static int read_holder(int fd, char *who, size_t len) {
  char buf[512];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  long pid;
  char host[256], since[64], me[256] = "";
  if (n > 0) {
    buf[n] = 0;
    if (sscanf(buf, "nrdiff pid %ld host %255s started %63s", &pid, host,
               since) == 3) {
      snprintf(who, len, "pid %ld on host %s, started %s", pid, host, since);
      gethostname(me, sizeof me - 1);
      for (char *c = me; *c; c++)
        if (*c == ' ') *c = '_';
      if (strcmp(host, me) != 0 || pid <= 0) return 0;
      char stat_path[64], state = 0;
      long ppid = 0;
      snprintf(stat_path, sizeof stat_path, "/proc/%ld/stat", pid);
      FILE *f = fopen(stat_path, "r");
      if (!f) return 1;
      /* pid (comm) state ppid: comm may hold spaces and parentheses */
      char line[1024];
      char *end = fgets(line, sizeof line, f) ? strrchr(line, ')') : NULL;
      fclose(f);
      if (!end || sscanf(end + 1, " %c %ld", &state, &ppid) != 2) return 0;
      return state == 'Z' || state == 'X' || ppid == 1;
    }
  }
  snprintf(who, len, "which has not recorded its pid and host yet");
  return 0;
}

/* completed: the run is over, remove the lock file; else remove it only if
 * this run created it, and after a refusal (restore) give a lock file that
 * was there back its old content: a refused run changes nothing. */
static void lock_release(int completed, int restore) {
  if (lk.fd < 0) return;
  struct stat a, b;
  if ((completed || lk.created) && fstat(lk.fd, &a) == 0 &&
      stat(lk.path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
    unlink(lk.path);
  else if (restore && !lk.created && lk.n_old >= 0 &&
           (ftruncate(lk.fd, 0) != 0 ||
            pwrite(lk.fd, lk.old, (size_t)lk.n_old, 0) != lk.n_old))
    nrd_warn("cannot restore the lock file '%s': %s", lk.path, strerror(errno));
  close(lk.fd);
  lk.fd = -1;
  free(lk.path);
  lk.path = NULL;
}

static void lock_release_on_fatal(void) {
  lock_release(0, 0);
}

/* 0: locked; 1: another run holds it (who); -1: cannot create it (*err);
 * -2: the file system cannot lock (*err). */
static int lock_take(const char *path, char *who, size_t len, int *err) {
  int waited = 0;
  for (int attempt = 0; attempt < 100; attempt++) {
    int created = 1;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EEXIST) {
      created = 0;
      fd = open(path, O_RDWR | O_CLOEXEC);
      if (fd < 0 && errno == ENOENT) continue; /* removed meanwhile */
    }
    if (fd < 0) {
      *err = errno;
      return -1;
    }
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
      int e = errno;
      int dying = (e == EAGAIN || e == EACCES) && read_holder(fd, who, len);
      close(fd);
      if (dying && waited < 200) { /* up to 10 s */
        if (!waited++)
          nrd_info("'%s' is held by %s, which is ending: waiting for it", path,
                   who);
        nanosleep(&(struct timespec){0, 50000000}, NULL);
        attempt--;
        continue;
      }
      if (e == EAGAIN || e == EACCES) return 1;
      if (created) unlink(path);
      *err = e;
      return -2;
    }
    struct stat a, b;
    if (fstat(fd, &a) != 0 || stat(path, &b) != 0 || a.st_dev != b.st_dev ||
        a.st_ino != b.st_ino) {
      close(fd);
      continue;
    }
    lk.n_old = created ? 0 : pread(fd, lk.old, sizeof lk.old, 0);
    char host[256] = "unknown", date[64] = "", line[400];
    gethostname(host, sizeof host - 1);
    for (char *c = host; *c; c++)
      if (*c == ' ') *c = '_';
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int n = snprintf(line, sizeof line, "nrdiff pid %ld host %s started %s\n",
                     (long)getpid(), host, date);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)n, 0) != n)
      nrd_warn("cannot record this run in the lock file '%s': %s", path,
               strerror(errno));
    lk.fd = fd;
    lk.created = created;
    lk.path = copy_string(path);
    nrd_at_fatal(lock_release_on_fatal);
    return 0;
  }
  *err = EAGAIN;
  return -1;
}

/* Whether another run holds the lock (who), without taking it: a dry run
 * writes nothing. */
static int lock_held(const char *path, char *who, size_t len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
  int held = fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
  if (held) read_holder(fd, who, len); /* a dry run does not wait */
  close(fd);
  return held;
}

static void check_lock(const char *out, int dry_run, char *msg, size_t len) {
  char *path = output_companion(out, ".lock"), who[400] = "";
  int err = 0;
  int st = dry_run ? lock_held(path, who, sizeof who)
                   : lock_take(path, who, sizeof who, &err);
  if (st == 1)
    snprintf(msg, len,
             "key 'output.file': '%s' is being written by another nrdiff run "
             "(%s; lock '%s'): wait for it to end, or choose another "
             "output.file",
             out, who, path);
  else if (st == -1)
    snprintf(msg, len,
             "key 'output.file': cannot create the lock file '%s': %s", path,
             strerror(err));
  else if (st == -2)
    nrd_warn("cannot lock '%s' (%s): a second run writing output.file '%s' "
             "at the same time would not be detected",
             path, strerror(err), out);
  free(path);
}

/* ----------------------------------------------- what a run may find */

/* Whether path is a complete nrdiff output: its format attribute and the
 * wall time written when it was closed (rank 0, serial HDF5). */
static int complete_output(const char *path) {
  nrd_h5_quiet();
  if (H5Fis_hdf5(path) <= 0) return 0;
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return 0;
  int ok = 0;
  if (H5Aexists(f, "file_format") > 0) {
    hid_t a = H5Aopen(f, "file_format", H5P_DEFAULT);
    hid_t t = a >= 0 ? H5Aget_type(a) : -1;
    char *v = NULL;
    ok = t >= 0 && H5Tis_variable_str(t) > 0 && H5Aread(a, t, &v) >= 0 && v &&
         !strcmp(v, "nrdiff-output");
    if (v) H5free_memory(v);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
  }
  ok = ok && H5Lexists(f, "code", H5P_DEFAULT) > 0 &&
       H5Aexists_by_name(f, "code", "wall_seconds", H5P_DEFAULT) > 0;
  H5Fclose(f);
  return ok;
}

int h5out_prepare_target(const nrd_params *p, int restart, int dry_run,
                         int *unmarked, char *err, size_t errlen) {
  char msg[1400] = "";
  *unmarked = 0;
  if (nrd_log_rank() == 0) {
    const char *out = p->output.file;
    /* a refusal gives back only a lock taken here (a second call of this
     * process, as in a test, leaves the first call's lock alone) */
    int held_before = lk.fd >= 0;
    if (check_name(out, msg, sizeof msg) == NRD_OK &&
        check_inputs(p, msg, sizeof msg) == NRD_OK)
      check_lock(out, dry_run, msg, sizeof msg);
    /* a restart finds OUTPUT: complete (it only ever appears whole); its
     * marker may be missing if the run was killed just before writing it */
    if (restart && !msg[0] && access(out, F_OK) == 0) {
      char *done = output_companion(out, ".done");
      if (access(done, F_OK) == 0)
        snprintf(msg, sizeof msg,
                 "key 'output.file': '%s' exists: this run is already "
                 "complete, nothing to restart",
                 out);
      else if (complete_output(out))
        *unmarked = 1;
      else
        snprintf(msg, sizeof msg,
                 "key 'output.file': '%s' exists and is not a complete "
                 "nrdiff output: nothing to restart into it (move it away, "
                 "or choose another output.file)",
                 out);
      free(done);
    }
    /* a fresh run owns none of these; a restart owns the checkpoints and
     * an interrupted OUTPUT.tmp */
    const char *fresh[] = {"", ".tmp", ".ckpt", ".ckpt.prev"};
    for (int i = 0; !restart && i < 4 && !msg[0]; i++) {
      char *f = output_companion(out, fresh[i]);
      if (access(f, F_OK) == 0 && !p->output.overwrite)
        snprintf(msg, sizeof msg,
                 "key 'output.file': '%s' exists; nrdiff does not overwrite "
                 "results or checkpoints (continue it with --restart, choose "
                 "another output.file, or give --overwrite)",
                 f);
      free(f);
    }
    if (!msg[0] && !dry_run && !*unmarked) {
      /* leftovers this run replaces: stale marker, partial output, and for
       * a fresh run with --overwrite the old checkpoints (OUTPUT itself is
       * replaced only when the new one is complete) */
      const char *stale[] = {".done", ".tmp", ".ckpt", ".ckpt.prev"};
      for (int i = 0; i < (restart ? 2 : 4); i++) {
        char *f = output_companion(out, stale[i]);
        unlink(f);
        free(f);
      }
    }
    if (msg[0] && !held_before) lock_release(0, 1);
  }
  NRD_MPI_CHECK(MPI_Bcast(msg, sizeof msg, MPI_CHAR, 0, MPI_COMM_WORLD));
  NRD_MPI_CHECK(MPI_Bcast(unmarked, 1, MPI_INT, 0, MPI_COMM_WORLD));
  if (!msg[0]) return NRD_OK;
  snprintf(err, errlen, "%s", msg);
  return NRD_ERR_INPUT;
}

void h5out_release_target(void) {
  lock_release(1, 0);
}
