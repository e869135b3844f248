/* HDF5 output (see h5out.h and doc/file-format.md).
 *
 * Who writes what: values that every rank holds identically (parameters,
 * provenance, step/time axes) and rank 0's reductions are written by rank 0
 * with the others selecting nothing; per-block sums and sampled
 * trajectories are written by the ranks that computed them, each selecting
 * its own rows.  Transfers are collective; attributes are metadata, so
 * every rank passes the same value (rank 0's, broadcast where it differs). */
#define _GNU_SOURCE /* F_OFD_SETLK; open_memstream, gethostname, gmtime_r */
#include "config.h"

#include "io/h5out.h"
#include "core/analysis.h"
#include "util/error.h"
#include "io/h5check.h"
#include "io/h5util.h"
#include "util/log.h"
#include "util/version.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define H5 NRD_H5_CHECK

/* ------------------------------------------------------------- target */

static char *with_suffix(const char *path, const char *suffix) {
  size_t n = strlen(path) + strlen(suffix) + 1;
  char *s = malloc(n);
  if (!s) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  snprintf(s, n, "%s%s", path, suffix);
  return s;
}

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
  MPIIO_NAME_MAX = 255 - 10 - 7,            /* 238: NAME + ".locktest." + RANK */
  OUTPUT_NAME_MAX = MPIIO_NAME_MAX - LONGEST_SUFFIX, /* 228: output.file */
  MPIIO_BASE_EXTRA = 1 + 10 + 1 + 7 + 5,    /* 24: "-JOBID-PID.lock" */
};

/* A name for a message: long ones shortened to their ends and length. */
static const char *shown(const char *s, char *buf, size_t len) {
  size_t n = strlen(s);
  if (n <= 72) return s;
  snprintf(buf, len, "%.40s...%s (%zu characters)", s, s + n - 16, n);
  return buf;
}

/* The directory part of `path` ("." if none), malloc'd. */
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return strdup(".");
  size_t n = slash == path ? 1 : (size_t)(slash - path);
  char *d = malloc(n + 1);
  if (d) {
    memcpy(d, path, n);
    d[n] = 0;
  }
  return d;
}

/* The first leading component of `dir` that exists and is not a directory
 * (the path goes through a regular file), malloc'd, or NULL. */
static char *first_non_directory(const char *dir) {
  char *s = strdup(dir);
  if (!s) return NULL;
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
  if (!(dir = dir_of(out))) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
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
    char *f = with_suffix(out, FAMILY[i].suffix);
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
        char *g = with_suffix(out, FAMILY[j].suffix);
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

/* `path` resolved: its directory through realpath, then its last
 * component; malloc'd (the path itself if the directory cannot be). */
static char *resolved(const char *path) {
  char *dir = dir_of(path), *real = dir ? realpath(dir, NULL) : NULL;
  const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
  char *s = NULL;
  if (real) {
    s = malloc(strlen(real) + strlen(base) + 2);
    if (s) sprintf(s, "%s/%s", real, base);
  }
  free(dir);
  free(real);
  return s ? s : strdup(path);
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
            {p->forward.q_file, "forward.q_file"}};
  char b1[128], b2[128];
  for (int i = 0; i < N_FAMILY; i++) {
    char *f = with_suffix(p->output.file, FAMILY[i].suffix);
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
    nrd_warn("cannot restore the lock file '%s': %s", lk.path,
             strerror(errno));
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
    lk.path = strdup(path);
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
  char *path = with_suffix(out, ".lock"), who[400] = "";
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
    snprintf(msg, len, "key 'output.file': cannot create the lock file '%s': %s",
             path, strerror(err));
  else if (st == -2)
    nrd_warn("cannot lock '%s' (%s): a second run writing output.file '%s' "
             "at the same time would not be detected",
             path, strerror(err), out);
  free(path);
}

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
    if (check_name(out, msg, sizeof msg) == NRD_OK &&
        check_inputs(p, msg, sizeof msg) == NRD_OK)
      check_lock(out, dry_run, msg, sizeof msg);
    /* a restart finds OUTPUT: complete (it only ever appears whole); its
     * marker may be missing if the run was killed just before writing it */
    if (restart && !msg[0] && access(out, F_OK) == 0) {
      char *done = with_suffix(out, ".done");
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
      char *f = with_suffix(out, fresh[i]);
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
        char *f = with_suffix(out, stale[i]);
        unlink(f);
        free(f);
      }
    }
    if (msg[0]) lock_release(0, 1);
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

/* --------------------------------------------------------------- open */

static void write_code(hid_t file, const char *command_line) {
  hid_t g = h5u_group(file, "code");
  char host[256] = "unknown", date[64] = "";
  h5u_attr_string(g, "package_version", version_nrdiff());
  version_field f[VERSION_FIELDS];
  version_fields(f);
  for (int i = 0; i < VERSION_FIELDS; i++)
    h5u_attr_string(g, f[i].key, f[i].value);
  if (h5u_root()) {
    gethostname(host, sizeof host - 1);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
  }
  char *s = h5u_bcast_string(command_line);
  h5u_attr_string(g, "command_line", s);
  free(s);
  s = h5u_bcast_string(host);
  h5u_attr_string(g, "hostname", s);
  free(s);
  s = h5u_bcast_string(date);
  h5u_attr_string(g, "date_utc", s);
  free(s);
  h5u_attr_long(g, "mpi_size", nrd_log_size());
  /* the batch job, if any (rank 0's environment; "" outside Slurm) */
  static const char *const slurm[] = {"SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID",
                                      "SLURM_ARRAY_TASK_ID",
                                      "SLURM_JOB_NODELIST",
                                      "SLURM_RESTART_COUNT"};
  static const char *const names[] = {"slurm_job_id", "slurm_array_job_id",
                                      "slurm_array_task_id",
                                      "slurm_job_nodelist",
                                      "slurm_restart_count"};
  for (int i = 0; i < 5; i++) {
    const char *v = getenv(slurm[i]);
    s = h5u_bcast_string(v ? v : "");
    h5u_attr_string(g, names[i], s);
    free(s);
  }
  H5(H5Gclose(g));
}

static void write_parameters(h5out *h, const nrd_params *p) {
  hid_t g = h5u_group(h->file, "parameters");
  h5u_attr_string(g, "parameter_file", p->source_file ? p->source_file : "");
  int n = params_schema_size();
  char **key = calloc((size_t)n, sizeof *key);
  char **val = calloc((size_t)n, sizeof *val);
  char **src = calloc((size_t)n, sizeof *src);
  if (!key || !val || !src) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  static const char *const names[] = {"default", "file", "override"};
  for (int i = 0; i < n; i++) {
    key[i] = (char *)params_schema_name(i);
    val[i] = params_value_yaml(p, i);
    src[i] = (char *)names[p->sources ? p->sources[i] : PSRC_DEFAULT];
    if (!val[i]) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  }
  h5u_dataset_strings(h->dxpl, g, "key", (size_t)n, key, 0);
  h5u_dataset_strings(h->dxpl, g, "value", (size_t)n, val, 0);
  h5u_dataset_strings(h->dxpl, g, "source", (size_t)n, src, 0);
  char *text = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  if (!mem) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  params_write_resolved(p, mem);
  fclose(mem);
  h5u_dataset_strings(h->dxpl, g, "resolved", 1, &text, 1);
  free(text);
  for (int i = 0; i < n; i++)
    free(val[i]);
  free(key);
  free(val);
  free(src);
  H5(H5Gclose(g));
}

static void write_grid(h5out *h, const run_plan *plan) {
  hid_t g = h5u_group(h->file, "grid");
  long P = plan->n_points;
  long *li = malloc((size_t)P * sizeof *li);
  double *dv = malloc((size_t)P * sizeof *dv);
  if (!li || !dv) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  for (long i = 0; i < P; i++)
    li[i] = plan->points[i].dimension;
  h5u_dataset_1d(h->dxpl, g, "dimension", 1, P, li);
  for (long i = 0; i < P; i++)
    dv[i] = plan->points[i].separation;
  h5u_dataset_1d(h->dxpl, g, "separation", 0, P, dv);
  for (long i = 0; i < P; i++)
    dv[i] = plan->points[i].strength;
  h5u_dataset_1d(h->dxpl, g, "strength", 0, P, dv);
  for (long i = 0; i < P; i++)
    li[i] = plan->points[i].n_train;
  h5u_dataset_1d(h->dxpl, g, "n_train", 1, P, li);
  free(li);
  free(dv);
  H5(H5Gclose(g));
}

/* Why `path` cannot be created: the system's reason, by creating it. */
static int create_error(const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  close(fd);
  return nrd_h5_write_error(path);
}

void h5out_open(h5out *h, const nrd_params *p, const run_plan *plan,
                const char *command_line) {
  nrd_h5_quiet();
  size_t n = strlen(p->output.file) + 5;
  h->path = strdup(p->output.file);
  h->tmp_path = malloc(n);
  if (!h->path || !h->tmp_path) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  snprintf(h->tmp_path, n, "%s.tmp", p->output.file);
  hid_t fapl = H5(H5Pcreate(H5P_FILE_ACCESS));
  H5(H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL));
  nrd_h5_writing(h->tmp_path); /* removed on a fatal error from here on */
  /* the file's own format, not the library's newest: readable by any
   * HDF5 >= 1.8 and h5py */
  h->file = H5Fcreate(h->tmp_path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  /* agree: a rank that could not create it must not leave the others
   * waiting in the next collective call */
  int bad[2] = {h->file < 0, h->file >= 0};
  NRD_MPI_CHECK(
      MPI_Allreduce(MPI_IN_PLACE, bad, 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
  if (bad[0]) {
    char msg[512] = "";
    int e = 0;
    if (h->file < 0) {
      nrd_h5_last_error(msg, sizeof msg);
      e = create_error(h->tmp_path);
    }
    if (!bad[1]) /* every rank failed */
      nrd_fatal(NRD_EXIT_RUNTIME,
                "cannot create the output file '%s': %s (HDF5: %s)",
                h->tmp_path, e ? strerror(e) : "reason unknown", msg);
    if (h->file < 0)
      NRD_ABORT(NRD_EXIT_RUNTIME,
                "cannot create the output file '%s': %s (HDF5: %s)",
                h->tmp_path, e ? strerror(e) : "reason unknown", msg);
    NRD_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD)); /* until that rank aborts */
  }
  H5(H5Pclose(fapl));
  h->dxpl = H5(H5Pcreate(H5P_DATASET_XFER));
  H5(H5Pset_dxpl_mpio(h->dxpl, H5FD_MPIO_COLLECTIVE));

  h5u_attr_string(h->file, "file_format", "nrdiff-output");
  h5u_attr_long(h->file, "file_format_version", 1);
  hid_t g = h5u_group(h->file, "h5md");
  long version[2] = {1, 1};
  h5u_attr_numbers(g, "version", H5T_NATIVE_LONG, 2, version);
  hid_t a = h5u_group(g, "author");
  const char *user = getenv("USER");
  char *u = h5u_bcast_string(user ? user : "unknown");
  h5u_attr_string(a, "name", u);
  free(u);
  H5(H5Gclose(a));
  hid_t c = h5u_group(g, "creator");
  h5u_attr_string(c, "name", "nrdiff");
  h5u_attr_string(c, "version", version_nrdiff());
  H5(H5Gclose(c));
  H5(H5Gclose(g));
  write_code(h->file, command_line);
  write_parameters(h, p);
  write_grid(h, plan);
  /* what the physics checks said of the parameters (diagnose.h), kept with
   * the results they qualify */
  hid_t pg = H5(H5Gopen2(h->file, "parameters", H5P_DEFAULT));
  h5u_attr_string(pg, "warnings", plan->warnings ? plan->warnings : "");
  H5(H5Gclose(pg));
  hid_t pts = h5u_group(h->file, "points");
  H5(H5Gclose(pts));
}

/* --------------------------------------------------------------- points */

/* dims (n_out, n_blocks[, m]); each rank writes the rows of its blocks. */
static void write_block_sums(h5out *h, hid_t parent, const h5out_point *pt,
                             int o) {
  const obs_layout *L = pt->layout;
  int m = L->width[o];
  hsize_t dims[3] = {(hsize_t)pt->n_out, (hsize_t)pt->n_blocks, (hsize_t)m};
  long nlb = pt->n_local_blocks;
  size_t n = (size_t)pt->n_out * nlb * m;
  double *buf = malloc((n ? n : 1) * sizeof *buf);
  if (!buf) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  for (long i = 0; i < pt->n_out; i++)
    for (long b = 0; b < nlb; b++)
      memcpy(buf + ((size_t)i * nlb + b) * m,
             pt->local_records + ((size_t)i * nlb + b) * L->record +
                 L->offset[o],
             (size_t)m * sizeof *buf);
  h5u_write_rows(h->dxpl, parent, "block_sum", H5T_NATIVE_DOUBLE,
                 m > 1 ? 3 : 2, dims, nlb, pt->local_blocks, buf);
  free(buf);
}

/* The error dataset's description. */
static const char *const ERROR_DESCRIPTION =
    "jackknife error of value over the particle blocks: value_b from the block "
    "sums without block b, error = sqrt((B-1)/B sum_b (value_b - mean_b "
    "value_b)^2) (an_jackknife); NaN where value is NaN or with one block";

static void write_observable(h5out *h, hid_t obs, const h5out_point *pt,
                             int o) {
  const obs_layout *L = pt->layout;
  const obs_info *info = obs_describe(o);
  int m = L->width[o];
  hid_t g = h5u_group(obs, info->name);
  h5u_attr_string(g, "description", info->description);
  h5u_attr_string(g, "unit", info->unit);
  h5u_dataset_1d(h->dxpl, g, "step", 1, pt->n_out, pt->out_step);
  h5u_dataset_1d(h->dxpl, g, "time", 0, pt->n_out, pt->out_time);
  /* value = block sums' total / particle count at every output time, and
   * its jackknife error (analysis.h, as nrdiff-post and the report); the
   * count itself is a total (no error) */
  double *v = NULL, *e = NULL;
  long n = pt->n_out, B = pt->n_blocks, R = L->record;
  if (h5u_root()) {
    v = malloc((size_t)(n * m + 1) * sizeof *v);
    e = malloc((size_t)(n * m + 1) * sizeof *e);
    double *num = malloc((size_t)(n * B + 1) * sizeof *num);
    double *cnt = malloc((size_t)(n * B + 1) * sizeof *cnt);
    double *cv = malloc((size_t)(n + 1) * sizeof *cv);
    double *ce = malloc((size_t)(n + 1) * sizeof *ce);
    if (!v || !e || !num || !cnt || !cv || !ce)
      NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
    for (long i = 0; i < n; i++)
      for (long b = 0; b < B; b++)
        cnt[b * n + i] = pt->blocks[((size_t)i * B + b) * R +
                                    L->offset[OBS_COUNT]];
    for (int j = 0; j < m; j++) {
      if (o == OBS_COUNT) {
        for (long i = 0; i < n; i++) {
          double total = 0;
          for (long b = 0; b < B; b++) /* block order */
            total += cnt[b * n + i];
          v[i * m + j] = total;
        }
        continue;
      }
      for (long i = 0; i < n; i++)
        for (long b = 0; b < B; b++)
          num[b * n + i] = pt->blocks[((size_t)i * B + b) * R +
                                      L->offset[o] + j];
      an_ratio_curve(n, B, num, cnt, cv, ce);
      for (long i = 0; i < n; i++)
        v[i * m + j] = cv[i], e[i * m + j] = ce[i];
    }
    free(num);
    free(cnt);
    free(cv);
    free(ce);
  }
  hsize_t dims[2] = {(hsize_t)pt->n_out, (hsize_t)m};
  h5u_dataset_root(h->dxpl, g, "value", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, m > 1 ? 2 : 1,
               dims, v);
  if (o != OBS_COUNT) {
    h5u_dataset_root(h->dxpl, g, "error", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                     m > 1 ? 2 : 1, dims, e);
    hid_t d = H5(H5Dopen2(g, "error", H5P_DEFAULT));
    h5u_attr_string(d, "description", ERROR_DESCRIPTION);
    H5(H5Dclose(d));
  }
  free(v);
  free(e);
  write_block_sums(h, g, pt, o);
  H5(H5Gclose(g));
}

static void write_trajectories(h5out *h, hid_t parent, const h5out_point *pt) {
  if (pt->n_traj == 0) return; /* output.trajectories = 0: no /particles */
  hid_t parts = h5u_group(parent, "particles");
  hid_t tr = h5u_group(parts, "trajectory");
  h5u_dataset_1d(h->dxpl, tr, "id", 1, pt->n_traj, pt->traj_ids);
  hid_t pos = h5u_group(tr, "position");
  h5u_dataset_1d(h->dxpl, pos, "step", 1, pt->n_frames, pt->frame_step);
  h5u_dataset_1d(h->dxpl, pos, "time", 0, pt->n_frames, pt->frame_time);
  hsize_t dims[3] = {(hsize_t)pt->n_frames, (hsize_t)pt->n_traj,
                     (hsize_t)pt->dimension};
  h5u_write_rows(h->dxpl, pos, "value", H5T_NATIVE_DOUBLE, 3, dims,
                 pt->n_local_traj, pt->local_traj, pt->local_positions);
  H5(H5Gclose(pos));
  H5(H5Gclose(tr));
  H5(H5Gclose(parts));
}

/* The protocols' end-of-run block sums (the OBS_FINAL slice of the last
 * output time), for errors of any function of them offline. */
static void write_final_sums(h5out *h, hid_t point, const h5out_point *pt) {
  const obs_layout *L = pt->layout;
  const proto_layout *X = pt->protocols;
  int m = L->width[OBS_FINAL];
  if (m == 0 || !X) return;
  hid_t g = h5u_group(point, "final");
  h5u_attr_string(g, "description",
                  "per-block end-of-run sums of the protocols: count, clone "
                  "pairs in the same class [n_branch], clone pairs at the "
                  "same nearest training point [n_branch], freezing time sum "
                  "and square sum [2], U-turn sums [n_uturn][uturn_stride]; "
                  "absent parts have zero width (offsets in the attributes)");
  long attrs[8] = {X->f_count,      X->f_class, X->f_nearest, X->f_freeze,
                   X->f_uturn,      X->uturn_stride, X->n_branch,
                   X->n_uturn};
  static const char *const names[8] = {"f_count",  "f_class",       "f_nearest",
                                       "f_freeze", "f_uturn",       "uturn_stride",
                                       "n_branch", "n_uturn"};
  for (int i = 0; i < 8; i++)
    h5u_attr_long(g, names[i], attrs[i]);
  hsize_t dims[3] = {1, (hsize_t)pt->n_blocks, (hsize_t)m};
  long nlb = pt->n_local_blocks;
  double *buf = malloc((size_t)(nlb ? nlb : 1) * m * sizeof *buf);
  if (!buf) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  for (long b = 0; b < nlb; b++)
    memcpy(buf + (size_t)b * m,
           pt->local_records + ((size_t)(pt->n_out - 1) * nlb + b) * L->record +
               L->offset[OBS_FINAL],
           (size_t)m * sizeof *buf);
  h5u_write_rows(h->dxpl, g, "block_sum", H5T_NATIVE_DOUBLE, 3, dims, nlb,
                 pt->local_blocks, buf);
  free(buf);
  H5(H5Gclose(g));
}

/* The protocols' results: /points/IIII/<protocol>/<name>, rank 0's data. */
static void write_results(h5out *h, hid_t point, const proto_results *r) {
  for (int i = 0; r && i < r->n; i++) {
    const proto_dataset *ds = &r->v[i];
    hid_t g = H5Lexists(point, ds->group, H5P_DEFAULT) > 0
                  ? H5(H5Gopen2(point, ds->group, H5P_DEFAULT))
                  : h5u_group(point, ds->group);
    hsize_t dims[2] = {(hsize_t)ds->dims[0], (hsize_t)ds->dims[1]};
    h5u_dataset_root(h->dxpl, g, ds->name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                     ds->rank, dims, ds->data);
    hid_t d = H5(H5Dopen2(g, ds->name, H5P_DEFAULT));
    h5u_attr_string(d, "description", ds->description);
    H5(H5Dclose(d));
    H5(H5Gclose(g));
  }
}

void h5out_write_point(h5out *h, const nrd_params *p, const h5out_point *pt) {
  (void)p;
  char name[64];
  snprintf(name, sizeof name, "points/%04d", pt->index);
  hid_t g = h5u_group(h->file, name);
  /* rank 0's report values, identical on every rank for the attributes */
  double v[7] = {pt->critical_theory,  pt->critical_measured,
                 pt->critical_error,   pt->relaxation_rate,
                 pt->entropy_production, pt->critical_cloning,
                 pt->critical_cloning_error};
  NRD_MPI_CHECK(MPI_Bcast(v, 7, MPI_DOUBLE, 0, MPI_COMM_WORLD));
  h5u_attr_long(g, "index", pt->index);
  h5u_attr_long(g, "dimension", pt->dimension);
  h5u_attr_double(g, "separation", pt->separation);
  h5u_attr_double(g, "strength", pt->strength);
  h5u_attr_long(g, "n_train", pt->n_train);
  h5u_attr_long(g, "particles", p->ensemble.particles);
  h5u_attr_long(g, "block_size", p->ensemble.block_size);
  h5u_attr_long(g, "n_blocks", pt->n_blocks);
  h5u_attr_long(g, "classes", pt->classes);
  h5u_attr_double(g, "relaxation_rate", v[3]);
  h5u_attr_double(g, "entropy_production", v[4]);
  h5u_attr_string(g, "critical_time_kind", pt->critical_kind);
  h5u_attr_double(g, "critical_time_theory", v[0]);
  h5u_attr_double(g, "critical_time_measured", v[1]);
  h5u_attr_double(g, "critical_time_error", v[2]);
  if (pt->has_cloning) { /* the same on every rank (the layout) */
    h5u_attr_double(g, "critical_time_cloning", v[5]);
    h5u_attr_double(g, "critical_time_cloning_error", v[6]);
  }
  h5u_attr_string(g, "status", pt->status ? pt->status : "ok");
  h5u_attr_string(g, "warnings", pt->warnings ? pt->warnings : "");
  if (pt->failed) {
    H5(H5Gclose(g));
    return;
  }
  hid_t obs = h5u_group(g, "observables");
  for (int o = 0; o < OBS_N; o++)
    if (pt->layout->width[o] > 0 && o != OBS_FINAL)
      write_observable(h, obs, pt, o);
  H5(H5Gclose(obs));
  write_trajectories(h, g, pt);
  write_results(h, g, pt->results);
  write_final_sums(h, g, pt);
  H5(H5Gclose(g));
}

void h5out_abandon(h5out *h) {
  H5Pclose(h->dxpl);
  H5Fclose(h->file);
  NRD_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
  if (h5u_root()) unlink(h->tmp_path);
  nrd_h5_written(h->tmp_path);
  free(h->path);
  free(h->tmp_path);
}

/* fsync `path` (rank 0, local): 0 or the errno. */
static int sync_path(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  int e = fsync(fd) == 0 ? 0 : errno;
  close(fd);
  return e;
}

void h5out_close(h5out *h, double wall_seconds) {
  NRD_MPI_CHECK(
      MPI_Bcast(&wall_seconds, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD));
  hid_t g = H5(H5Gopen2(h->file, "code", H5P_DEFAULT));
  h5u_attr_double(g, "wall_seconds", wall_seconds);
  H5(H5Gclose(g));
  H5(H5Pclose(h->dxpl));
  H5(H5Fclose(h->file));
  /* FILE.tmp is complete only once every rank has closed it without error
   * (a rank that failed aborts and never gets here; the others wait here
   * until they are stopped, so nothing incomplete is renamed) and it is on
   * disk (fsync: a delayed write error, such as a full disk, shows there) */
  NRD_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
  int st[2] = {0, 0}; /* step that failed (1 fsync, 2 rename), errno */
  if (h5u_root()) {
    if ((st[1] = sync_path(h->tmp_path)) != 0)
      st[0] = 1;
    else if (rename(h->tmp_path, h->path) != 0)
      st[0] = 2, st[1] = errno;
    else {
      char *dir = dir_of(h->path);
      if (dir) sync_path(dir); /* the rename itself */
      free(dir);
    }
  }
  NRD_MPI_CHECK(MPI_Bcast(st, 2, MPI_INT, 0, MPI_COMM_WORLD));
  if (st[0] == 1) /* the cleanup removes FILE.tmp */
    nrd_fatal(NRD_EXIT_RUNTIME,
              "writing '%s' failed: %s; the partial file is removed, '%s' is "
              "untouched",
              h->tmp_path, strerror(st[1]), h->path);
  nrd_h5_written(h->tmp_path);
  if (st[0] == 2)
    nrd_fatal(NRD_EXIT_RUNTIME,
              "cannot rename '%s' to '%s': %s (the output is complete in '%s': "
              "rename it yourself)",
              h->tmp_path, h->path, strerror(st[1]), h->tmp_path);
  free(h->path);
  free(h->tmp_path);
}
