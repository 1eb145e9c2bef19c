#include "gunzip.h"

#include <archive.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

enum { IN_BYTES = 1 << 20, OUT_BYTES = 1 << 20 };

typedef struct {
    int fd;
    int eof;        /* no more bytes in the file */
    int done;       /* the last member ended and nothing follows */
    z_stream z;
    unsigned char in[IN_BYTES];
    unsigned char out[OUT_BYTES];
} gunzip_state;

/* Reads more compressed bytes behind those not consumed yet; returns -1 on a read error. */
static int refill(gunzip_state *s) {
    if (s->eof) return 0;
    if (s->z.avail_in > 0 && s->z.next_in != s->in) memmove(s->in, s->z.next_in, s->z.avail_in);
    s->z.next_in = s->in;
    ssize_t n;
    do { n = read(s->fd, s->in + s->z.avail_in, IN_BYTES - s->z.avail_in); } while (n < 0 && errno == EINTR);
    if (n < 0) return -1;
    if (n == 0) s->eof = 1;
    s->z.avail_in += (uInt)n;
    return 0;
}

static la_ssize_t gunzip_read(struct archive *a, void *data, const void **buffer) {
    gunzip_state *s = data;
    *buffer = s->out;
    if (s->done) return 0;
    s->z.next_out = s->out;
    s->z.avail_out = OUT_BYTES;
    while (s->z.avail_out == OUT_BYTES) {
        if (s->z.avail_in == 0 && refill(s) < 0) {
            archive_set_error(a, errno, "cannot read the gzip file: %s", strerror(errno));
            return ARCHIVE_FATAL;
        }
        if (s->z.avail_in == 0 && s->eof) {
            archive_set_error(a, EIO, "gzip data is cut off (the file ends inside a member)");
            return ARCHIVE_FATAL;
        }
        int r = inflate(&s->z, Z_NO_FLUSH);
        if (r == Z_STREAM_END) {
            /* Another member may follow (as `cat a.gz b.gz` makes), or zero bytes of padding (as
               gzip and Python's gzip module accept); anything else is an error, as in Python (GNU
               gzip warns and exits 2), never text silently cut short. */
            int next = 0;
            for (;;) {
                while (s->z.avail_in > 0 && s->z.next_in[0] == 0) { s->z.next_in++; s->z.avail_in--; }
                if (s->z.avail_in < 2 && !s->eof) {
                    if (refill(s) < 0) {
                        archive_set_error(a, errno, "cannot read the gzip file: %s", strerror(errno));
                        return ARCHIVE_FATAL;
                    }
                    continue;
                }
                if (s->z.avail_in == 0) break;                       /* the end: padding only */
                if (s->z.avail_in >= 2 && s->z.next_in[0] == 0x1f && s->z.next_in[1] == 0x8b) { next = 1; break; }
                archive_set_error(a, EILSEQ, "gzip data is followed by bytes that are not gzip (trailing garbage)");
                return ARCHIVE_FATAL;
            }
            if (next) {
                inflateReset(&s->z);
            } else {
                s->done = 1;
                break;
            }
        } else if (r == Z_BUF_ERROR && s->z.avail_in == 0) {
            continue;   /* needs more input: the loop reads it, or reports the cut */
        } else if (r != Z_OK) {
            archive_set_error(a, EILSEQ, "gzip data is corrupt (%s)",
                              s->z.msg ? s->z.msg : "zlib error");
            return ARCHIVE_FATAL;
        }
    }
    return (la_ssize_t)(OUT_BYTES - s->z.avail_out);
}

static int gunzip_close(struct archive *a, void *data) {
    (void)a;
    gunzip_state *s = data;
    inflateEnd(&s->z);
    close(s->fd);
    free(s);
    return ARCHIVE_OK;
}

int rd_archive_gunzip_finish(struct archive *a, void *state) {
    const void *buffer;
    for (;;) {
        la_ssize_t n = gunzip_read(a, state, &buffer);
        if (n < 0) return -1;
        if (n == 0) return 0;
    }
}

int rd_archive_open_gunzip(struct archive *a, const char *path, void **state) {
    int fd;
    do { fd = open(path, O_RDONLY | O_CLOEXEC); } while (fd < 0 && errno == EINTR);
    if (fd < 0) return -1;
    unsigned char magic[2];
    ssize_t n;
    do { n = pread(fd, magic, 2, 0); } while (n < 0 && errno == EINTR);
    if (n != 2 || magic[0] != 0x1f || magic[1] != 0x8b) { close(fd); return 1; }
    gunzip_state *s = calloc(1, sizeof *s);
    if (!s) { close(fd); errno = ENOMEM; return -1; }
    s->fd = fd;
    if (inflateInit2(&s->z, 15 + 16) != Z_OK) { close(fd); free(s); errno = ENOMEM; return -1; }
    /* archive_read_open calls the close callback itself when it fails. */
    if (archive_read_open(a, s, NULL, gunzip_read, gunzip_close) != ARCHIVE_OK) return -1;
    *state = s;
    return 0;
}
