// See include/fault_guard.h.
#define _GNU_SOURCE
#include "fault_guard.h"

#include <errno.h>
#include <execinfo.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { SLOTS = 32, PATH_BYTES = 4096, RANGES = 16, FRAMES = 128, LINE_BYTES = 16384 };

/// Each slot: 0 free, 1 open for reading, 2 being written.
static char paths[SLOTS][PATH_BYTES];
static atomic_int state[SLOTS];
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;

static uintptr_t lo[RANGES], hi[RANGES];
static int ranges;
static struct sigaction previous_segv, previous_bus;
static atomic_int installed, handling;
/// Under a launcher, a rank other than 0 waits before it says it: every rank reads the same files.
/// After rank 0's exit mpirun sends the others SIGTERM after `odls_base_sigkill_timeout` seconds
/// (T: 1 by default, 2 with Launch/mpi-env), then SIGKILL T seconds later. A rank that faulted first
/// dies of the SIGTERM while it waits; one that was waiting for rank 0 in a collective takes the
/// SIGTERM as a stop request, goes on, faults, and dies of the SIGKILL while it waits (T + 2 s): the
/// job prints one line. A rank that faults alone still says it, T + 2 seconds later.
static int later_seconds;
static char line[LINE_BYTES];
static size_t line_length;

/// The executable segments of the library whose file name contains `data`.
static int find_ranges(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    if (!info->dlpi_name || !strstr(info->dlpi_name, (const char *)data)) return 0;
    for (int i = 0; i < info->dlpi_phnum && ranges < RANGES; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        if (p->p_type != PT_LOAD || !(p->p_flags & PF_X)) continue;
        lo[ranges] = (uintptr_t)(info->dlpi_addr + p->p_vaddr);
        hi[ranges] = lo[ranges] + (uintptr_t)p->p_memsz;
        ranges++;
    }
    return 0;
}

static int in_library(void *pc) {
    const uintptr_t a = (uintptr_t)pc;
    for (int i = 0; i < ranges; i++)
        if (a >= lo[i] && a < hi[i]) return 1;
    return 0;
}

/// Appends to `line` (async-signal-safe: no formatting functions), cut at its end.
static void add(const char *s) {
    while (*s && line_length + 1 < LINE_BYTES) line[line_length++] = *s++;
}

/// Hands the signal back: the previous handler (or the default action) takes the same fault when
/// this handler returns; a signal sent by another process is raised again.
static void decline(int sig, const siginfo_t *info) {
    sigaction(sig, sig == SIGBUS ? &previous_bus : &previous_segv, NULL);
    if (!info || info->si_code <= 0) raise(sig);
}

static void on_fault(int sig, siginfo_t *info, void *context) {
    (void)context;
    // A fault inside this handler (SA_NODEFER lets it in): to the previous handler.
    if (atomic_exchange(&handling, 1)) { decline(sig, info); return; }
    // Ours: a fault the CPU raised (si_code > 0) while a file is open for reading and none is being
    // written (a fault there would be rnn-dist's or HDF5's own, not a damaged input), with a frame
    // of the library on the faulting thread's stack.
    int reading = 0, writing = 0;
    for (int i = 0; i < SLOTS; i++) {
        const int s = atomic_load(&state[i]);
        reading += s == 1;
        writing += s == 2;
    }
    int ours = 0;
    if (info && info->si_code > 0 && reading > 0 && writing == 0) {
        void *frames[FRAMES];
        const int n = backtrace(frames, FRAMES);
        for (int i = 0; i < n && !ours; i++) ours = in_library(frames[i]);
    }
    if (!ours) { atomic_store(&handling, 0); decline(sig, info); return; }
    if (later_seconds > 0) {
        // mpirun's SIGTERM ends this rank at once while it waits (rnn-dist's own handler would only
        // note it, for a clean stop after the batch).
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigaction(SIGTERM, &dfl, NULL);
        sigaction(SIGINT, &dfl, NULL);
        sigset_t ends;
        sigemptyset(&ends);
        sigaddset(&ends, SIGTERM);
        sigaddset(&ends, SIGINT);
        pthread_sigmask(SIG_UNBLOCK, &ends, NULL);
        struct timespec t = { later_seconds, 0 };
        while (nanosleep(&t, &t) != 0 && errno == EINTR) {}
    }
    // Every distinct path open for reading (a file opened twice is named once).
    const char *named[SLOTS];
    int count = 0;
    for (int i = 0; i < SLOTS; i++) {
        if (atomic_load(&state[i]) != 1) continue;
        int seen = 0;
        for (int k = 0; k < count && !seen; k++) seen = strcmp(named[k], paths[i]) == 0;
        if (!seen) named[count++] = paths[i];
    }
    const char *what = sig == SIGBUS ? "SIGBUS" : "SIGSEGV";
    line_length = 0;
    add("rnn-dist: error: ");
    if (count == 1) {
        add(named[0]);
        add(": the HDF5 library crashed (");
        add(what);
        add(") reading it: the file is damaged (metadata that point outside it or at other data); use a good copy");
    } else {
        add("the HDF5 library crashed (");
        add(what);
        add(") reading one of ");
        for (int k = 0; k < count; k++) {
            add(k == 0 ? "" : k + 1 == count ? " and " : ", ");
            add(named[k]);
        }
        add(": that file is damaged (metadata that point outside it or at other data; `rnn-dist inspect FILE` tells which)");
    }
    add("; if it is a good copy, report it with the backtrace RNN_DIST_FAULT_GUARD=0 gives\n");
    if (line_length + 1 >= LINE_BYTES) line[line_length - 1] = '\n';   // cut: still one line
    for (size_t off = 0; off < line_length;) {   // one write unless the pipe takes less
        const ssize_t w = write(STDERR_FILENO, line + off, line_length - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
    _exit(2);
}

int rd_fault_guard_install(const char *library) {
    int expected = 0;
    if (!atomic_compare_exchange_strong(&installed, &expected, 1)) return 0;
    const char *off = getenv("RNN_DIST_FAULT_GUARD");
    if (off && strcmp(off, "0") == 0) return -1;
    dl_iterate_phdr(find_ranges, (void *)library);
    if (ranges == 0) return -1;
    // The list of Communicator.launcherRankVariables (Sources/MPI), in the same order.
    static const char *const rank_variables[] = { "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID" };
    for (int i = 0; i < 4; i++) {
        const char *r = getenv(rank_variables[i]);
        if (!r) continue;
        if (strcmp(r, "0") != 0) {
            const char *t = getenv("OMPI_MCA_odls_base_sigkill_timeout");
            const int timeout = t ? atoi(t) : 1;
            later_seconds = (timeout >= 0 && timeout <= 60 ? timeout : 1) + 2;
        }
        break;
    }
    // backtrace() loads libgcc_s on its first call: not something to do inside a signal handler.
    void *warm[2];
    (void)backtrace(warm, 2);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &previous_segv);
    sigaction(SIGBUS, &sa, &previous_bus);
    return 0;
}

int rd_fault_guard_file_opened(const char *path, int writing) {
    pthread_mutex_lock(&slots_lock);
    int slot = -1;
    for (int i = 0; i < SLOTS; i++) {
        if (atomic_load(&state[i])) continue;
        snprintf(paths[i], PATH_BYTES, "%s", path);
        // One line whatever the name holds, as the other error lines (a line break is a space).
        for (char *c = paths[i]; *c; c++)
            if (*c == '\n' || *c == '\r') *c = ' ';
        atomic_store(&state[i], writing ? 2 : 1);
        slot = i;
        break;
    }
    pthread_mutex_unlock(&slots_lock);
    return slot;
}

void rd_fault_guard_file_closed(int slot) {
    if (slot < 0 || slot >= SLOTS) return;
    pthread_mutex_lock(&slots_lock);
    atomic_store(&state[slot], 0);
    pthread_mutex_unlock(&slots_lock);
}
