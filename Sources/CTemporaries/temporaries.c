// See include/temporaries.h.
#include "temporaries.h"

#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#define SLOTS 8
#define PATH_BYTES 4097

static char paths[SLOTS][PATH_BYTES];
static atomic_int used[SLOTS];

int rd_temporary_register(const char *path) {
    size_t n = strlen(path);
    if (n >= PATH_BYTES) return -1;
    for (int i = 0; i < SLOTS; i++) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&used[i], &expected, 2)) {   // 2: being filled
            memcpy(paths[i], path, n + 1);
            atomic_store(&used[i], 1);                                   // 1: a signal removes it
            return i;
        }
    }
    return -1;
}

void rd_temporary_unregister(int slot) {
    if (slot >= 0 && slot < SLOTS) atomic_store(&used[slot], 0);
}

static void remove_and_reraise(int sig) {
    for (int i = 0; i < SLOTS; i++)
        if (atomic_load(&used[i]) == 1) unlink(paths[i]);
    raise(sig);     // SA_RESETHAND: the default action, once this handler returns
}

void rd_temporaries_remove_on_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = remove_and_reraise;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    const int signals[] = { SIGINT, SIGTERM, SIGHUP };
    for (int k = 0; k < 3; k++) {
        struct sigaction old;
        // A signal ignored by the parent (nohup, a shell's background job) stays ignored.
        if (sigaction(signals[k], 0, &old) == 0 && old.sa_handler == SIG_IGN) continue;
        sigaction(signals[k], &sa, 0);
    }
}
