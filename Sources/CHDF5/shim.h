// HDF5's type and property handles are macros that call H5open() and read a global
// (e.g. H5T_NATIVE_FLOAT), and H5P_DEFAULT / H5S_ALL are bare 0s that import as Int32:
// Swift cannot use them as hid_t, so they are re-exported here as functions.
#ifndef RNN_DIST_CHDF5_SHIM_H
#define RNN_DIST_CHDF5_SHIM_H
#include <hdf5.h>

static inline hid_t rd_h5p_default(void) { return H5P_DEFAULT; }
static inline hid_t rd_h5s_all(void) { return H5S_ALL; }
static inline hid_t rd_h5e_default(void) { return H5E_DEFAULT; }

static inline hid_t rd_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t rd_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t rd_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t rd_h5t_native_int32(void) { return H5T_NATIVE_INT32; }
static inline hid_t rd_h5t_native_int8(void) { return H5T_NATIVE_INT8; }
static inline hid_t rd_h5t_native_uint8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t rd_h5t_c_s1(void) { return H5T_C_S1; }
static inline hid_t rd_h5t_std_i64le(void) { return H5T_STD_I64LE; }
static inline hid_t rd_h5t_std_i32le(void) { return H5T_STD_I32LE; }
static inline hid_t rd_h5t_std_i8le(void) { return H5T_STD_I8LE; }
static inline hid_t rd_h5t_std_u8le(void) { return H5T_STD_U8LE; }
static inline hid_t rd_h5t_ieee_f32le(void) { return H5T_IEEE_F32LE; }
static inline hid_t rd_h5t_ieee_f64le(void) { return H5T_IEEE_F64LE; }

static inline hid_t rd_h5p_file_access(void) { return H5P_FILE_ACCESS; }
static inline hid_t rd_h5p_dataset_create(void) { return H5P_DATASET_CREATE; }
static inline hid_t rd_h5p_link_create(void) { return H5P_LINK_CREATE; }
static inline hid_t rd_h5p_group_create(void) { return H5P_GROUP_CREATE; }
static inline hid_t rd_h5p_file_create(void) { return H5P_FILE_CREATE; }

static inline unsigned rd_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline unsigned rd_h5f_acc_rdwr(void) { return H5F_ACC_RDWR; }
static inline unsigned rd_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline unsigned rd_h5f_acc_excl(void) { return H5F_ACC_EXCL; }

/// Silences HDF5's automatic error printing for the default stack.
static inline herr_t rd_h5_silence_errors(void) { return H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/// Collects the error stack's messages into `buf` as "a; b; c" (innermost last), NUL-terminated.
typedef struct { char *buf; size_t cap; size_t len; } rd_h5_errbuf;
static herr_t rd_h5_walk_cb(unsigned n, const H5E_error2_t *err, void *data) {
    rd_h5_errbuf *b = (rd_h5_errbuf *)data;
    if (!err || !err->desc || b->len + 4 >= b->cap) return 0;
    const char *sep = b->len ? "; " : "";
    int w = snprintf(b->buf + b->len, b->cap - b->len, "%s%s", sep, err->desc);
    if (w > 0) { b->len += (size_t)w; if (b->len >= b->cap) b->len = b->cap - 1; }
    (void)n;
    return 0;
}
static inline void rd_h5_error_message(char *buf, size_t cap) {
    if (cap == 0) return;
    buf[0] = 0;
    rd_h5_errbuf b = { buf, cap, 0 };
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, rd_h5_walk_cb, &b);
    H5Eclear2(H5E_DEFAULT);
}

#endif
