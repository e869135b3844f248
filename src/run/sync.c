/* Stops and the per-step agreement of every rank (runctx.h): the stop
 * signals (run.h), and run_sync, where all ranks meet once per step to
 * agree on checkpoints, stops and failures. */
#define _POSIX_C_SOURCE 200809L /* sigaction */
#include "run/checkpoint.h"
#include "run/run.h"
#include "run/runctx.h"
#include "util/error.h"
#include "util/log.h"

#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The stop signal received (SIGTERM, SIGUSR1: what Slurm and scancel send
 * before the time limit; SIGINT: Ctrl-C), 0 if none.  A second SIGINT
 * while the first is being honoured ends the process at once. */
static volatile sig_atomic_t stop_signal = 0;

static void on_stop_signal(int sig) {
  if (sig == SIGINT && stop_signal == SIGINT) {
    signal(SIGINT, SIG_DFL);
    raise(SIGINT);
  }
  stop_signal = sig;
}

static const int STOP_SIGNALS[] = {SIGTERM, SIGUSR1, SIGINT};
enum { N_STOP_SIGNALS = 3 };

void run_catch_stop_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigset_t set;
  sigemptyset(&set);
  for (int i = 0; i < N_STOP_SIGNALS; i++) {
    sigaction(STOP_SIGNALS[i], &sa, NULL);
    sigaddset(&set, STOP_SIGNALS[i]);
  }
  /* blocked across a re-execution (blaskernel.c), which resets handlers
   * but keeps the mask and pending signals: deliver them now */
  sigprocmask(SIG_UNBLOCK, &set, NULL);
}

void run_block_stop_signals(void) {
  sigset_t set;
  sigemptyset(&set);
  for (int i = 0; i < N_STOP_SIGNALS; i++)
    sigaddset(&set, STOP_SIGNALS[i]);
  sigprocmask(SIG_BLOCK, &set, NULL);
}

static const char *signal_name(int sig) {
  return sig == SIGTERM ? "SIGTERM" : sig == SIGUSR1 ? "SIGUSR1" : "SIGINT";
}

/* The agreed reasons of run_sync: the largest stop signal seen, the stop
 * file, the wall time, a periodic checkpoint, work left, a failure. */
enum { W_SIGNAL, W_FILE, W_WALL, W_PERIODIC, W_WORK, W_FAILED, W_N };

/* Why the run stops, from the agreed reasons (the same on every rank). */
static void agree_stop_reason(run_ctx *c, const int *want) {
  const nrd_params *p = c->p;
  if (want[W_SIGNAL])
    snprintf(c->stop_reason, sizeof c->stop_reason, "%s",
             signal_name(want[W_SIGNAL]));
  else if (want[W_FILE])
    snprintf(c->stop_reason, sizeof c->stop_reason, "stop file %.200s",
             p->checkpoint.stop_file);
  else
    snprintf(c->stop_reason, sizeof c->stop_reason, "run.max_wall_time = %g s",
             p->run.max_wall_time);
}

int run_sync(run_ctx *c, int finished) {
  const nrd_params *p = c->p;
  /* agreed, so every rank reports the same reason */
  int want[W_N] = {(int)stop_signal, 0, 0, 0, !finished, c->failed};
  if (nrd_log_rank() == 0) {
    double now = nrd_log_elapsed();
    want[W_FILE] = access(p->checkpoint.stop_file, F_OK) == 0;
    /* a segment always makes one step: a budget smaller than the set-up
     * time must not leave a job chain restarting forever */
    want[W_WALL] = p->run.max_wall_time > 0 && now >= p->run.max_wall_time &&
                   c->rounds > 0;
    want[W_PERIODIC] = (p->checkpoint.every > 0 && c->rounds > 0 &&
                        c->rounds % p->checkpoint.every == 0) ||
                       (p->checkpoint.interval > 0 &&
                        now - c->last_checkpoint >= p->checkpoint.interval);
  }
  NRD_MPI_CHECK(
      MPI_Allreduce(MPI_IN_PLACE, want, W_N, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
  c->rounds++;
  if (want[W_FAILED]) return SYNC_FAILED;
  if (!want[W_WORK]) return SYNC_ALL_DONE;
  int stop = want[W_SIGNAL] || want[W_FILE] || want[W_WALL];
  if (stop || want[W_PERIODIC]) {
    checkpoint_write(p, &c->shape, c->state);
    c->last_checkpoint = nrd_log_elapsed();
  }
  if (!stop) return SYNC_CONTINUE;
  c->stopped = 1;
  agree_stop_reason(c, want);
  /* an honoured stop file goes, or every restart would stop again (its
   * checkpoint is written: nothing is lost) */
  if (want[W_FILE] && nrd_log_rank() == 0 &&
      unlink(p->checkpoint.stop_file) != 0)
    nrd_warn("cannot remove the stop file '%s': remove it before restarting",
             p->checkpoint.stop_file);
  return SYNC_STOPPED;
}

int run_sync_until_done(run_ctx *c) {
  while (!c->stopped && !c->peer_failed) {
    int sync = run_sync(c, 1);
    if (sync == SYNC_ALL_DONE) break;
    if (sync == SYNC_FAILED) c->peer_failed = 1;
  }
  return !c->peer_failed;
}
