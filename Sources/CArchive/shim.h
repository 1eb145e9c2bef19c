// libarchive: reads the IMDB .tar.gz as a stream. ARCHIVE_OK etc. are plain #defines Swift imports.
#ifndef RNN_DIST_CARCHIVE_SHIM_H
#define RNN_DIST_CARCHIVE_SHIM_H
#include <archive.h>
#include <archive_entry.h>
#endif
