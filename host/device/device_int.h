/* device_int.h — the OpenCL layer: platform/device choice, one context and in-order queue
 * per device, program builds with the build log surfaced, an on-disk binary cache, buffers.
 * Knows nothing of operators. Device calls are made from one thread at a time (the driver);
 * nothing here is thread-safe unless stated. */
#ifndef SPATE_DEVICE_INT_H
#define SPATE_DEVICE_INT_H

#include "util/diag_int.h"
#include "util/mem_int.h"

#include <CL/cl.h>
#include <stdint.h>
#include <stdio.h>

/** Kernel shape a program is built for (-D SP_STRATEGY_CPU=1 or -D SP_STRATEGY_GPU=1). */
enum dev_strategy { DEV_STRATEGY_CPU = 1, DEV_STRATEGY_GPU = 2 };

/** What `spate devices` prints about one device. */
typedef struct dev_info {
    int index; /* global index over all platforms, as --device N takes it */
    int platform_index;
    char platform[128];
    char platform_version[128];
    char name[256];
    char vendor[128];
    char driver[128];     /* CL_DRIVER_VERSION */
    char version[128];    /* CL_DEVICE_VERSION */
    char clc_version[64]; /* CL_DEVICE_OPENCL_C_VERSION */
    cl_device_type type;
    unsigned compute_units;
    uint64_t global_mem;
    uint64_t local_mem;
    uint64_t max_alloc;
    size_t max_wg;
    int int64_atomics;   /* cl_khr_int64_base_atomics and extended reported */
    int fp64;            /* cl_khr_fp64 reported */
    int host_unified;    /* CL_DEVICE_HOST_UNIFIED_MEMORY (zero-copy wrap pays) */
    char pci_bus_id[32]; /* "0000:65:00.0" when the driver tells (cl_khr_pci_bus_info or
                            NV/AMD extensions), else "" */
} dev_info;

/** Lists all devices of all platforms. *out is allocated with a's hook (mem_free it).
 *  No platform at all: SP_ENODEV with a message naming the package that provides the CPU
 *  device (pocl-opencl-icd). */
int dev_enumerate(const sp_allocator *a, dev_info **out, size_t *n, sp_diag *d);

typedef struct sp_dev sp_dev;

typedef struct dev_opts {
    const char *selector;  /* "cpu", "gpu", an index, or a platform/device name substring;
                              NULL: $SPATE_DEVICE, else device 0 */
    int use_cache;         /* on-disk program binary cache */
    const char *cache_dir; /* NULL: $SPATE_CACHE_DIR, else $XDG_CACHE_HOME/spate, else
                              $HOME/.cache/spate */
    int strategy;          /* 0 follow the device type; DEV_STRATEGY_CPU/GPU to force */
    FILE *log;             /* where build logs and warnings go (stderr if NULL) */
    const sp_allocator *alloc;
} dev_opts;

/** Opens the selected device: context and in-order queue. Unknown selector: SP_ENODEV naming
 *  the selector and listing the devices there are. */
int dev_open(const dev_opts *o, sp_dev **out, sp_diag *d);
void dev_close(sp_dev *dev);

const dev_info *dev_get_info(const sp_dev *dev);
cl_context dev_context(const sp_dev *dev);
cl_command_queue dev_queue(const sp_dev *dev);
cl_device_id dev_id(const sp_dev *dev);
int dev_strategy(const sp_dev *dev);
/** Work-group size kernels should use (a power of two <= max_wg; 64..256). */
size_t dev_wg_size(const sp_dev *dev);
/** Number of work-groups that fills the device (e.g. compute units x 4 on CPU). */
size_t dev_groups(const sp_dev *dev);

/** Maps a CL error to an Spate status (allocation failures become SP_EDEVMEM, the rest
 *  SP_ECL) with a message "WHAT: CL_ERROR_NAME". Returns SP_OK for CL_SUCCESS. */
int dev_check(cl_int err, const char *what, sp_diag *d);
const char *dev_clerr_name(cl_int err);

/** Source of an embedded kernels/NAME file (e.g. "reduce.cl", "common.h"), or NULL. */
const char *dev_kernel_source(const char *name);

/** Builds a program. The source is prefixed with kernels/common.h and the strategy define.
 *  With the cache on, the binary is stored under the cache dir keyed by a hash of
 *  (source, options, device name, driver version) and loaded on the next start.
 *  On failure: SP_EBUILD whose message names `name`, the first error line of the build log,
 *  and the path the full source and log were written to; the whole log goes to o->log.
 *  `name` identifies the program in messages ("reduce.cl", "stage 3 (generated)"). */
int dev_build(sp_dev *dev, const char *name, const char *src, const char *opts, cl_program *out,
              sp_diag *d);

/** Kernel `kernel` of embedded program `file` (built once per device and kept). The kernel
 *  object belongs to the device; set its arguments and launch it from the driver thread. */
int dev_kernel(sp_dev *dev, const char *file, const char *kernel, cl_kernel *out, sp_diag *d);

/** Counters for tests and `--metrics`: builds compiled, builds loaded from cache. */
void dev_build_stats(const sp_dev *dev, unsigned *compiled, unsigned *cached);

/** A device buffer. For host memory on a unified-memory device the buffer wraps the host
 *  pointer (CL_MEM_USE_HOST_PTR, zero-copy); otherwise it is device memory filled from the
 *  host (through pinned staging on discrete GPUs). */
typedef struct dev_buf {
    cl_mem mem;
    void *host; /* host memory it mirrors, or NULL for scratch */
    size_t bytes;
    int zero_copy;
} dev_buf;

enum { DEV_BUF_READ = 1, DEV_BUF_WRITE = 2, DEV_BUF_RW = 3 };

/** Wraps host memory (page aligned for zero-copy). DEV_BUF_READ contents are uploaded. */
int dev_buf_wrap(sp_dev *dev, void *host, size_t bytes, int access, dev_buf *b, sp_diag *d);
/** Device scratch memory of `bytes` (at least 1). Checks bytes against max_alloc and
 *  global memory itself (POCL does not enforce them): SP_EDEVMEM when it cannot fit. */
int dev_buf_alloc(sp_dev *dev, size_t bytes, dev_buf *b, sp_diag *d);
/** Makes the device's writes visible in b->host (zero-copy: map/unmap; else a read). */
int dev_buf_sync_host(sp_dev *dev, dev_buf *b, sp_diag *d);
/** Reads `bytes` at `offset` of any buffer into dst (blocking). */
int dev_buf_read(sp_dev *dev, const dev_buf *b, size_t offset, void *dst, size_t bytes, sp_diag *d);
int dev_buf_write(sp_dev *dev, dev_buf *b, size_t offset, const void *src, size_t bytes,
                  sp_diag *d);
int dev_buf_fill_zero(sp_dev *dev, dev_buf *b, sp_diag *d);
void dev_buf_release(dev_buf *b);

/** Enqueues a 1-D NDRange (gws rounded up to a multiple of lws by the caller). */
int dev_launch(sp_dev *dev, cl_kernel k, size_t gws, size_t lws, const char *what, sp_diag *d);
int dev_finish(sp_dev *dev, sp_diag *d);

/** What a device has done since dev_open: kernel launches, and the rows operators handed to
 *  kernels or kept on the host (an operator below its size threshold runs on the host). The
 *  driver reports per-batch differences in --metrics, so a test can tell that the device
 *  path really ran. Updated from any thread. */
typedef struct dev_counters {
    uint64_t launches, rows_device, rows_host;
} dev_counters;
void dev_counters_get(const sp_dev *dev, dev_counters *out);
/** Records that an operator processed n rows on the device (on_device) or on the host. NULL
 *  dev: nothing (operators without a device count nowhere). */
void dev_count_rows(sp_dev *dev, size_t n, int on_device);

/** Settings that operators keep per device (the device layer only stores them). */
typedef enum dev_tunable {
    DEV_TUNE_DENSE_KEYS,    /* keyed aggregation: largest key domain for the dense path */
    DEV_TUNE_EW_HOST_BELOW, /* element-wise stages: batches under this many rows run on the host */
    DEV_TUNE_KREDUCE_HOST_BELOW, /* keyed/global aggregation: inputs under this many rows: host */
    DEV_TUNABLE_COUNT
} dev_tunable;
void dev_set_tunable(sp_dev *dev, dev_tunable key, size_t value);
/** 0 when never set (the operator's default applies). */
size_t dev_get_tunable(const sp_dev *dev, dev_tunable key);

/** Make the next dev_build fail as if the compiler had rejected the source (tests), or make
 *  buffers above `bytes` fail with SP_EDEVMEM (0 disables): tests, and sp_config's
 *  device_mem_limit for sharing a device. */
void dev_test_fail_next_build(sp_dev *dev);
void dev_test_set_mem_limit(sp_dev *dev, uint64_t bytes);

#endif
