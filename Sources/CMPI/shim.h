// Open MPI's handles are macros that take the address of a global (e.g. MPI_COMM_WORLD is
// `(MPI_Comm)&ompi_mpi_comm_world`): Swift cannot import them, so they are re-exported here.
#ifndef RNN_DIST_CMPI_SHIM_H
#define RNN_DIST_CMPI_SHIM_H
#include <mpi.h>

static inline MPI_Comm rd_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype rd_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype rd_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype rd_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype rd_mpi_int32(void) { return MPI_INT32_T; }
static inline MPI_Datatype rd_mpi_uint8(void) { return MPI_UINT8_T; }
static inline MPI_Datatype rd_mpi_uint16(void) { return MPI_UINT16_T; }
static inline MPI_Op rd_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op rd_mpi_max(void) { return MPI_MAX; }
static inline MPI_Op rd_mpi_min(void) { return MPI_MIN; }
static inline void *rd_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Errhandler rd_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline int rd_mpi_success(void) { return MPI_SUCCESS; }
static inline int rd_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
static inline int rd_mpi_thread_single(void) { return MPI_THREAD_SINGLE; }
static inline int rd_mpi_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }
static inline MPI_Info rd_mpi_info_null(void) { return MPI_INFO_NULL; }
static inline MPI_Status *rd_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Request rd_mpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Win rd_mpi_win_null(void) { return MPI_WIN_NULL; }

#endif
