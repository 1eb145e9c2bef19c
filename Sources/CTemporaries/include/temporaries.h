// Temporaries of atomic writes removed when a stop signal ends the process (prepare, export, plot):
// Ctrl-C or SIGTERM during `prepare` left `.NAME.tmp-PID-…` (up to a 100 MB dataset) behind until the
// next write of the same file. The handler only calls unlink(2) and re-raises: async-signal-safe.
#pragma once

/// Remembers `path` (up to 4,096 bytes) as a temporary being written; the slot to forget it by, or
/// -1 when every slot is taken (the file is then left to the next write's clean-up, as before).
int rd_temporary_register(const char *path);

/// Forgets the temporary of `slot` (renamed into place or removed): a signal no longer removes it.
void rd_temporary_unregister(int slot);

/// SIGINT, SIGTERM and SIGHUP remove the remembered temporaries, then end the process by the same
/// signal (the default action). For commands without signal handling of their own.
void rd_temporaries_remove_on_signals(void);
