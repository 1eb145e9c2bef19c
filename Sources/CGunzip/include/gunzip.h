// gzip input for libarchive, inflated by zlib so that every member's CRC-32 and length are checked.
// libarchive's own gzip filter (3.6) skips that check ("XXX TODO: Verify the length and CRC"), so a
// corrupted .gz whose deflate stream still decodes (a stored block, a damaged trailer) read as good.
#ifndef RNN_DIST_GUNZIP_H
#define RNN_DIST_GUNZIP_H

struct archive;

/// Opens `path` as the data of the libarchive reader `a` (`archive_read_open`) when the file starts
/// with the gzip magic: libarchive then reads the decompressed bytes. Concatenated members are read
/// one after the other, as gzip does. Returns 1 when the file is not gzip (nothing is opened: the
/// caller opens it as before), 0 when opened, and -1 when the file cannot be opened (errno set).
/// A corrupt member (a bad CRC or length, a broken deflate stream, a cut-off file) makes a later
/// `archive_read_*` call fail with a message that says so. When opened, `*state` is the reader's
/// state, for `rd_archive_gunzip_finish` (freed with `a`).
int rd_archive_open_gunzip(struct archive *a, const char *path, void **state);

/// Inflates whatever gzip data is left once libarchive has stopped reading (a tar's end-of-archive
/// marker comes before the last member's end and its CRC-32 and length): 0 when every member ends
/// intact, followed by nothing but members or zero padding; else -1, the error set on `a`.
int rd_archive_gunzip_finish(struct archive *a, void *state);

#endif
