// See include/fault_guard.h.
#define _GNU_SOURCE
#include "fault_guard.h"

#include <execinfo.h>
#include <errno.h>
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

enum { SLOTS = 32, PATH_BYTES = 1024, RANGES = 16, FRAMES = 128 };

static char paths[SLOTS][PATH_BYTES];
static atomic_int used[SLOTS];
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;

static uintptr_t lo[RANGES], hi[RANGES];
static int ranges;
static struct sigaction previous_segv, previous_bus;
static atomic_int installed;
/// Under a launcher, a rank other than 0 says it 2 s later: every rank reads the same files, and
/// rank 0's exit makes mpirun end the others (SIGTERM) first, so the job mostly prints one line; a
/// rank that faults alone still says it. (A rank that took mpirun's SIGTERM as a stop request before
/// it faulted says it too: two identical lines.)
static int later_seconds;

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

static void put(const char *s) {
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, s, n);
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

static void on_fault(int sig, siginfo_t *info, void *context) {
    (void)context;
    // A fault the CPU raised (si_code > 0) while a file opened for reading is open, with a frame of
    // the library on the faulting thread's stack.
    int ours = 0, open_files = 0;
    for (int i = 0; i < SLOTS; i++) open_files += atomic_load(&used[i]) != 0;
    if (info && info->si_code > 0 && open_files > 0) {
        void *frames[FRAMES];
        const int n = backtrace(frames, FRAMES);
        for (int i = 0; i < n && !ours; i++) ours = in_library(frames[i]);
    }
    if (ours) {
        if (later_seconds > 0) {
            // mpirun ends the other ranks with SIGTERM: while waiting, that ends this one at once
            // (rnn-dist's own handler would only note it, for a clean stop after the batch).
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
        put(program_invocation_short_name);
        put(": error: ");
        int named = 0;
        for (int i = 0; i < SLOTS; i++) {
            if (!atomic_load(&used[i])) continue;
            put(named ? " or " : "");
            put(paths[i]);
            named = 1;
        }
        put(": ");
        put(sig == SIGBUS ? "the HDF5 library crashed (SIGBUS) reading it"
                          : "the HDF5 library crashed (SIGSEGV) reading it");
        put(": the file is damaged (its metadata point outside it or at other data); use a good copy\n");
        _exit(2);
    }
    // Not ours: the previous handler (or the default action) takes the same signal. A fault repeats
    // when this handler returns; a signal sent by another process is raised again.
    sigaction(sig, sig == SIGBUS ? &previous_bus : &previous_segv, NULL);
    if (!info || info->si_code <= 0) raise(sig);
}

int rd_fault_guard_install(const char *library) {
    int expected = 0;
    if (!atomic_compare_exchange_strong(&installed, &expected, 1)) return 0;
    dl_iterate_phdr(find_ranges, (void *)library);
    if (ranges == 0) return -1;
    static const char *const rank_variables[] = { "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID" };
    for (int i = 0; i < 4; i++) {
        const char *r = getenv(rank_variables[i]);
        if (r) { later_seconds = strcmp(r, "0") == 0 ? 0 : 2; break; }
    }
    // backtrace() loads libgcc_s on its first call: not something to do inside a signal handler.
    void *warm[2];
    (void)backtrace(warm, 2);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &previous_segv);
    sigaction(SIGBUS, &sa, &previous_bus);
    return 0;
}

int rd_fault_guard_file_opened(const char *path) {
    pthread_mutex_lock(&slots_lock);
    int slot = -1;
    for (int i = 0; i < SLOTS; i++) {
        if (atomic_load(&used[i])) continue;
        snprintf(paths[i], PATH_BYTES, "%s", path);
        atomic_store(&used[i], 1);
        slot = i;
        break;
    }
    pthread_mutex_unlock(&slots_lock);
    return slot;
}

void rd_fault_guard_file_closed(int slot) {
    if (slot < 0 || slot >= SLOTS) return;
    pthread_mutex_lock(&slots_lock);
    atomic_store(&used[slot], 0);
    pthread_mutex_unlock(&slots_lock);
}
