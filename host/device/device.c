/* device.c — OpenCL platform/device choice, context and queue, program builds with an on-disk
 * binary cache, kernels kept per device, buffers. See device_int.h for the contracts. */
#include "device/device_int.h"
#include "util/strbuf_int.h"

#include <CL/cl_ext.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

/* The table embed_kernels.cmake generates from kernels/ (.cl and .h files), NULL-terminated. */
struct spate_embedded {
    const char *name;
    const char *src;
    size_t len;
};
extern const struct spate_embedded spate_embedded_kernels[];

/* Vendor device queries, spelled out because older headers lack some of them. */
#define DEV_PCI_BUS_INFO_KHR 0x410F /* cl_khr_pci_bus_info */
#define DEV_PCI_BUS_ID_NV 0x4008    /* cl_nv_device_attribute_query */
#define DEV_PCI_SLOT_ID_NV 0x4009
#define DEV_PCI_DOMAIN_ID_NV 0x400A
#define DEV_TOPOLOGY_AMD 0x4037 /* cl_amd_device_attribute_query */

#define DEV_NO_PLATFORM_MSG                                                                  \
    "no OpenCL platform found: install pocl-opencl-icd for the CPU device (or a GPU "        \
    "vendor's ICD)"

/* Uploads at least this big go through a pinned staging buffer on discrete GPUs; smaller ones
 * are not worth the extra buffer. */
#define DEV_STAGING_MIN ((size_t)256 << 10)

/* Cache file: magic, key, payload length, payload (the driver's program binary). */
#define DEV_CACHE_MAGIC "SPBIN001"

typedef struct dev_prog {
    char *file;
    cl_program prog;
} dev_prog;

typedef struct dev_kern {
    char *file;
    char *name;
    cl_kernel kernel;
} dev_kern;

struct sp_dev {
    sp_allocator alloc;
    FILE *log;
    dev_info info;
    cl_platform_id platform;
    cl_device_id id;
    cl_context ctx;
    cl_command_queue queue;
    int strategy;
    size_t base_align; /* CL_DEVICE_MEM_BASE_ADDR_ALIGN in bytes: zero-copy wants this */
    char *cache_dir;   /* NULL: no binary cache */
    unsigned n_compiled, n_cached;
    int fail_next_build;
    uint64_t mem_limit; /* test hook, 0: none */
    size_t tunables[DEV_TUNABLE_COUNT]; /* operator settings kept per device, 0: default */
    atomic_uint_fast64_t launches, rows_device, rows_host; /* dev_counters */
    /* Embedded programs and their kernels, built on first use. A handful per device, so a
     * linear search is the right structure. */
    dev_prog *progs;
    size_t nprogs, capprogs;
    dev_kern *kerns;
    size_t nkerns, capkerns;
};

/* ---------------------------------------------------------------------------------------- */
/* Enumeration */

static void dev_trim(char *s)
{
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    size_t i = 0;
    while (s[i] && isspace((unsigned char)s[i]))
        i++;
    if (i)
        memmove(s, s + i, n - i + 1);
}

/* A string query into a fixed buffer, truncated when the value is longer. Info is best effort:
 * a failed query (or allocation) leaves the field empty rather than failing the listing. */
static void dev_query_str(const sp_allocator *a, cl_device_id id, cl_platform_id plat,
                          cl_uint param, char *buf, size_t cap)
{
    size_t need = 0;
    cl_int err = id ? clGetDeviceInfo(id, param, 0, NULL, &need)
                    : clGetPlatformInfo(plat, param, 0, NULL, &need);
    buf[0] = '\0';
    if (err != CL_SUCCESS || need == 0)
        return;
    char *tmp = mem_alloc(a, need + 1);
    if (!tmp)
        return;
    err = id ? clGetDeviceInfo(id, param, need, tmp, NULL)
             : clGetPlatformInfo(plat, param, need, tmp, NULL);
    if (err == CL_SUCCESS) {
        tmp[need] = '\0';
        snprintf(buf, cap, "%s", tmp);
        dev_trim(buf);
    }
    mem_free(a, tmp);
}

/* Whole-word match in a space-separated extension list. */
static int dev_has_ext(const char *exts, const char *ext)
{
    size_t n = strlen(ext);
    for (const char *p = exts; p && (p = strstr(p, ext)) != NULL; p += n) {
        int start = p == exts || p[-1] == ' ';
        int end = p[n] == '\0' || p[n] == ' ';
        if (start && end)
            return 1;
    }
    return 0;
}

/* Best effort: "dddd:bb:dd.f", or "" when no extension tells. */
static void dev_query_pci(cl_device_id id, const char *exts, char *out, size_t cap)
{
    out[0] = '\0';
    if (dev_has_ext(exts, "cl_khr_pci_bus_info")) {
        cl_device_pci_bus_info_khr pi;
        if (clGetDeviceInfo(id, DEV_PCI_BUS_INFO_KHR, sizeof pi, &pi, NULL) == CL_SUCCESS) {
            snprintf(out, cap, "%04x:%02x:%02x.%x", pi.pci_domain, pi.pci_bus, pi.pci_device,
                     pi.pci_function);
            return;
        }
    }
    if (dev_has_ext(exts, "cl_nv_device_attribute_query")) {
        cl_uint bus = 0, slot = 0, domain = 0;
        if (clGetDeviceInfo(id, DEV_PCI_BUS_ID_NV, sizeof bus, &bus, NULL) == CL_SUCCESS &&
            clGetDeviceInfo(id, DEV_PCI_SLOT_ID_NV, sizeof slot, &slot, NULL) == CL_SUCCESS) {
            /* The domain query is newer than the other two; absent means domain 0. */
            if (clGetDeviceInfo(id, DEV_PCI_DOMAIN_ID_NV, sizeof domain, &domain, NULL) !=
                CL_SUCCESS)
                domain = 0;
            /* NVIDIA packs device and function into the slot id as (device << 3) | function. */
            snprintf(out, cap, "%04x:%02x:%02x.%x", domain, bus & 0xff, (slot >> 3) & 0x1f,
                     slot & 7);
            return;
        }
    }
    if (dev_has_ext(exts, "cl_amd_device_attribute_query")) {
        cl_device_topology_amd t;
        memset(&t, 0, sizeof t);
        if (clGetDeviceInfo(id, DEV_TOPOLOGY_AMD, sizeof t, &t, NULL) == CL_SUCCESS &&
            t.raw.type == CL_DEVICE_TOPOLOGY_TYPE_PCIE_AMD)
            snprintf(out, cap, "0000:%02x:%02x.%x", (unsigned char)t.pcie.bus,
                     (unsigned char)t.pcie.device, (unsigned char)t.pcie.function);
    }
}

static void dev_query_info(const sp_allocator *a, cl_platform_id plat, int pidx, cl_device_id id,
                           int idx, dev_info *in)
{
    memset(in, 0, sizeof *in);
    in->index = idx;
    in->platform_index = pidx;
    dev_query_str(a, NULL, plat, CL_PLATFORM_NAME, in->platform, sizeof in->platform);
    dev_query_str(a, NULL, plat, CL_PLATFORM_VERSION, in->platform_version,
                  sizeof in->platform_version);
    dev_query_str(a, id, NULL, CL_DEVICE_NAME, in->name, sizeof in->name);
    dev_query_str(a, id, NULL, CL_DEVICE_VENDOR, in->vendor, sizeof in->vendor);
    dev_query_str(a, id, NULL, CL_DRIVER_VERSION, in->driver, sizeof in->driver);
    dev_query_str(a, id, NULL, CL_DEVICE_VERSION, in->version, sizeof in->version);
    dev_query_str(a, id, NULL, CL_DEVICE_OPENCL_C_VERSION, in->clc_version,
                  sizeof in->clc_version);

    cl_uint cu = 0;
    cl_ulong gmem = 0, lmem = 0, maxalloc = 0;
    cl_bool unified = CL_FALSE;
    size_t maxwg = 0;
    /* Failed queries leave zeros: a device that cannot answer these is reported as small. */
    (void)clGetDeviceInfo(id, CL_DEVICE_TYPE, sizeof in->type, &in->type, NULL);
    (void)clGetDeviceInfo(id, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
    (void)clGetDeviceInfo(id, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof gmem, &gmem, NULL);
    (void)clGetDeviceInfo(id, CL_DEVICE_LOCAL_MEM_SIZE, sizeof lmem, &lmem, NULL);
    (void)clGetDeviceInfo(id, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof maxalloc, &maxalloc, NULL);
    (void)clGetDeviceInfo(id, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof maxwg, &maxwg, NULL);
    (void)clGetDeviceInfo(id, CL_DEVICE_HOST_UNIFIED_MEMORY, sizeof unified, &unified, NULL);
    in->compute_units = cu;
    in->global_mem = gmem;
    in->local_mem = lmem;
    in->max_alloc = maxalloc;
    in->max_wg = maxwg;
    in->host_unified = unified == CL_TRUE;

    size_t elen = 0;
    char *exts = NULL;
    if (clGetDeviceInfo(id, CL_DEVICE_EXTENSIONS, 0, NULL, &elen) == CL_SUCCESS &&
        (exts = mem_alloc(a, elen + 1)) != NULL) {
        if (clGetDeviceInfo(id, CL_DEVICE_EXTENSIONS, elen, exts, NULL) == CL_SUCCESS)
            exts[elen] = '\0';
        else
            exts[0] = '\0';
    }
    if (exts) {
        in->int64_atomics = dev_has_ext(exts, "cl_khr_int64_base_atomics") &&
                            dev_has_ext(exts, "cl_khr_int64_extended_atomics");
        in->fp64 = dev_has_ext(exts, "cl_khr_fp64");
        dev_query_pci(id, exts, in->pci_bus_id, sizeof in->pci_bus_id);
    }
    mem_free(a, exts);
}

/* All devices of all platforms, in platform order: infos, ids and their platforms. */
static int dev_list_all(const sp_allocator *a, dev_info **pinfo, cl_device_id **pids,
                        cl_platform_id **pplat, size_t *pn, sp_diag *d)
{
    cl_uint np = 0;
    cl_platform_id *plats = NULL;
    cl_device_id *ids = NULL, *pdevs = NULL;
    cl_platform_id *owners = NULL;
    dev_info *infos = NULL;
    size_t n = 0;
    int rc;

    cl_int err = clGetPlatformIDs(0, NULL, &np);
    if (err == CL_PLATFORM_NOT_FOUND_KHR || (err == CL_SUCCESS && np == 0))
        return diag_set(d, SP_ENODEV, DEV_NO_PLATFORM_MSG);
    if ((rc = dev_check(err, "clGetPlatformIDs", d)))
        return rc;
    plats = mem_calloc(a, np, sizeof *plats);
    if (!plats)
        return diag_set(d, SP_ENOMEM, "listing OpenCL platforms: out of memory");
    if ((rc = dev_check(clGetPlatformIDs(np, plats, NULL), "clGetPlatformIDs", d)))
        goto fail;

    for (cl_uint p = 0; p < np; p++) {
        cl_uint nd = 0;
        /* CL_DEVICE_TYPE_ALL: POCL answers CL_DEVICE_NOT_FOUND to a GPU-only query. A platform
         * that fails here (a broken ICD) is skipped so that the others stay usable. */
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || !nd)
            continue;
        pdevs = mem_calloc(a, nd, sizeof *pdevs);
        cl_device_id *nids = mem_realloc(a, ids, (n + nd) * sizeof *ids);
        if (nids)
            ids = nids;
        cl_platform_id *nown = mem_realloc(a, owners, (n + nd) * sizeof *owners);
        if (nown)
            owners = nown;
        dev_info *ninf = mem_realloc(a, infos, (n + nd) * sizeof *infos);
        if (ninf)
            infos = ninf;
        if (!pdevs || !nids || !nown || !ninf) {
            rc = diag_set(d, SP_ENOMEM, "listing OpenCL devices: out of memory");
            goto fail;
        }
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, nd, pdevs, NULL) != CL_SUCCESS) {
            mem_free(a, pdevs);
            pdevs = NULL;
            continue;
        }
        for (cl_uint i = 0; i < nd; i++) {
            ids[n] = pdevs[i];
            owners[n] = plats[p];
            dev_query_info(a, plats[p], (int)p, pdevs[i], (int)n, &infos[n]);
            n++;
        }
        mem_free(a, pdevs);
        pdevs = NULL;
    }
    if (n == 0) {
        rc = diag_set(d, SP_ENODEV,
                      "no OpenCL device found on %u platform(s): install pocl-opencl-icd for "
                      "the CPU device (or a GPU vendor's ICD)",
                      np);
        goto fail;
    }
    mem_free(a, plats);
    *pinfo = infos;
    *pn = n;
    if (pids)
        *pids = ids;
    else
        mem_free(a, ids);
    if (pplat)
        *pplat = owners;
    else
        mem_free(a, owners);
    return SP_OK;

fail:
    mem_free(a, pdevs);
    mem_free(a, infos);
    mem_free(a, owners);
    mem_free(a, ids);
    mem_free(a, plats);
    return rc;
}

int dev_enumerate(const sp_allocator *a, dev_info **out, size_t *n, sp_diag *d)
{
    SP_CHECK(d, out && n, SP_EINVAL, "dev_enumerate: NULL argument");
    *out = NULL;
    *n = 0;
    return dev_list_all(a, out, NULL, NULL, n, d);
}

static const char *dev_type_name(cl_device_type t)
{
    if (t & CL_DEVICE_TYPE_GPU)
        return "gpu";
    if (t & CL_DEVICE_TYPE_CPU)
        return "cpu";
    if (t & CL_DEVICE_TYPE_ACCELERATOR)
        return "accelerator";
    return "other";
}

/* Selector grammar: "cpu" | "gpu" | "accelerator" (first device of that type), a decimal
 * index, or a case-insensitive substring of the device or platform name (first match). */
static int dev_select(const dev_info *in, size_t n, const char *sel, size_t *pick, sp_diag *d)
{
    const char *from = "selector";
    if (!sel || !*sel) {
        sel = getenv("SPATE_DEVICE");
        from = "SPATE_DEVICE";
    }
    if (!sel || !*sel) {
        *pick = 0;
        return SP_OK;
    }
    cl_device_type want = 0;
    if (!strcasecmp(sel, "cpu"))
        want = CL_DEVICE_TYPE_CPU;
    else if (!strcasecmp(sel, "gpu"))
        want = CL_DEVICE_TYPE_GPU;
    else if (!strcasecmp(sel, "accelerator"))
        want = CL_DEVICE_TYPE_ACCELERATOR;
    size_t digits = strspn(sel, "0123456789");
    for (size_t i = 0; i < n; i++) {
        int hit;
        if (want)
            hit = (in[i].type & want) != 0;
        else if (sel[digits] == '\0')
            hit = strtoull(sel, NULL, 10) == i && digits < 10;
        else
            hit = strcasestr(in[i].name, sel) || strcasestr(in[i].platform, sel);
        if (hit) {
            *pick = i;
            return SP_OK;
        }
    }
    char list[768];
    size_t used = 0;
    list[0] = '\0';
    for (size_t i = 0; i < n && used < sizeof list; i++) {
        int w = snprintf(list + used, sizeof list - used, "%s%zu: %s (%s, %s)", i ? "; " : "", i,
                         in[i].name, in[i].platform, dev_type_name(in[i].type));
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return diag_set(d, SP_ENODEV, "no OpenCL device matches %s '%s'; devices: %s", from, sel,
                    list);
}

/* ---------------------------------------------------------------------------------------- */
/* Open / close */

static char *dev_path_join(const sp_allocator *a, const char *dir, const char *leaf)
{
    size_t n = strlen(dir) + strlen(leaf) + 2;
    char *p = mem_alloc(a, n);
    if (p)
        snprintf(p, n, "%s/%s", dir, leaf);
    return p;
}

/* mkdir -p. Returns 0 or an errno value. */
static int dev_mkdir_p(const sp_allocator *a, const char *path)
{
    char *p = mem_strdup(a, path);
    if (!p)
        return ENOMEM;
    int err = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            err = errno;
            break;
        }
        *s = c;
        if (c == '\0')
            break;
    }
    struct stat st;
    if (!err && (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)))
        err = ENOTDIR;
    mem_free(a, p);
    return err;
}

/* Cache dir: the option, else $SPATE_CACHE_DIR, $XDG_CACHE_HOME/spate, $HOME/.cache/spate.
 * Any failure turns the cache off with one warning; the device still opens. */
static void dev_cache_setup(sp_dev *dev, const char *dir)
{
    const sp_allocator *a = &dev->alloc;
    const char *env;
    char *path = NULL;
    if (dir && *dir)
        path = mem_strdup(a, dir);
    else if ((env = getenv("SPATE_CACHE_DIR")) && *env)
        path = mem_strdup(a, env);
    else if ((env = getenv("XDG_CACHE_HOME")) && *env)
        path = dev_path_join(a, env, "spate");
    else if ((env = getenv("HOME")) && *env)
        path = dev_path_join(a, env, ".cache/spate");
    else {
        fprintf(dev->log, "spate: warning: no cache directory (set SPATE_CACHE_DIR or HOME); "
                          "program binary cache off\n");
        return;
    }
    if (!path) {
        fprintf(dev->log, "spate: warning: out of memory; program binary cache off\n");
        return;
    }
    int err = dev_mkdir_p(a, path);
    if (err) {
        fprintf(dev->log,
                "spate: warning: cannot create program cache directory %s: %s; binary cache "
                "off\n",
                path, strerror(err));
        mem_free(a, path);
        return;
    }
    dev->cache_dir = path;
}

int dev_open(const dev_opts *o, sp_dev **out, sp_diag *d)
{
    SP_CHECK(d, o && out, SP_EINVAL, "dev_open: NULL argument");
    SP_CHECK(d, o->strategy >= 0 && o->strategy <= DEV_STRATEGY_GPU, SP_EINVAL,
             "dev_open: strategy %d is not 0, DEV_STRATEGY_CPU or DEV_STRATEGY_GPU", o->strategy);
    *out = NULL;
    const sp_allocator *a = o->alloc;
    dev_info *infos = NULL;
    cl_device_id *ids = NULL;
    cl_platform_id *plats = NULL;
    size_t n = 0, pick = 0;
    sp_dev *dev = NULL;
    cl_int err;
    int rc;

    if ((rc = dev_list_all(a, &infos, &ids, &plats, &n, d)))
        return rc;
    if ((rc = dev_select(infos, n, o->selector, &pick, d)))
        goto fail_list;
    dev = mem_calloc(a, 1, sizeof *dev);
    if (!dev) {
        rc = diag_set(d, SP_ENOMEM, "opening OpenCL device: out of memory");
        goto fail_list;
    }
    if (a)
        dev->alloc = *a;
    dev->log = o->log ? o->log : stderr;
    dev->info = infos[pick];
    dev->id = ids[pick];
    dev->platform = plats[pick];
    if (o->strategy)
        dev->strategy = o->strategy;
    else
        dev->strategy =
            (dev->info.type & CL_DEVICE_TYPE_CPU) ? DEV_STRATEGY_CPU : DEV_STRATEGY_GPU;
    cl_uint align_bits = 0;
    if (clGetDeviceInfo(dev->id, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof align_bits, &align_bits,
                        NULL) != CL_SUCCESS ||
        align_bits < 8)
        align_bits = 4096 * 8; /* defensive: assume a page */
    dev->base_align = align_bits / 8;

    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)dev->platform,
                                     0};
    dev->ctx = clCreateContext(props, 1, &dev->id, NULL, NULL, &err);
    if ((rc = dev_check(err, "clCreateContext", d)))
        goto fail_dev;
    dev->queue = clCreateCommandQueue(dev->ctx, dev->id, 0, &err);
    if ((rc = dev_check(err, "clCreateCommandQueue", d)))
        goto fail_ctx;
    if (o->use_cache)
        dev_cache_setup(dev, o->cache_dir);

    mem_free(a, plats);
    mem_free(a, ids);
    mem_free(a, infos);
    *out = dev;
    return SP_OK;

fail_ctx:
    clReleaseContext(dev->ctx);
fail_dev:
    diag_prefix(d, "opening %s", dev->info.name);
    mem_free(a, dev);
fail_list:
    mem_free(a, plats);
    mem_free(a, ids);
    mem_free(a, infos);
    return rc;
}

void dev_close(sp_dev *dev)
{
    if (!dev)
        return;
    const sp_allocator *a = &dev->alloc;
    /* Commands may still read host memory the caller is about to free. */
    clFinish(dev->queue);
    for (size_t i = 0; i < dev->nkerns; i++) {
        clReleaseKernel(dev->kerns[i].kernel);
        mem_free(a, dev->kerns[i].file);
        mem_free(a, dev->kerns[i].name);
    }
    for (size_t i = 0; i < dev->nprogs; i++) {
        clReleaseProgram(dev->progs[i].prog);
        mem_free(a, dev->progs[i].file);
    }
    mem_free(a, dev->kerns);
    mem_free(a, dev->progs);
    clReleaseCommandQueue(dev->queue);
    clReleaseContext(dev->ctx);
    mem_free(a, dev->cache_dir);
    sp_allocator copy = dev->alloc;
    mem_free(&copy, dev);
}

const dev_info *dev_get_info(const sp_dev *dev)
{
    return &dev->info;
}

cl_context dev_context(const sp_dev *dev)
{
    return dev->ctx;
}

cl_command_queue dev_queue(const sp_dev *dev)
{
    return dev->queue;
}

cl_device_id dev_id(const sp_dev *dev)
{
    return dev->id;
}

int dev_strategy(const sp_dev *dev)
{
    return dev->strategy;
}

size_t dev_wg_size(const sp_dev *dev)
{
    /* CPU (POCL): a work-group is one thread's loop, 64 keeps local arrays small; GPU: 256 is
     * 8 warps / 4 wavefronts, a good default for occupancy. */
    size_t want = dev->strategy == DEV_STRATEGY_CPU ? 64 : 256;
    size_t cap = dev->info.max_wg ? dev->info.max_wg : 1;
    if (want > cap)
        want = cap;
    size_t p = 1;
    while (p * 2 <= want)
        p *= 2;
    return p;
}

size_t dev_groups(const sp_dev *dev)
{
    size_t cu = dev->info.compute_units ? dev->info.compute_units : 1;
    return cu * (dev->strategy == DEV_STRATEGY_CPU ? 4 : 8);
}

void dev_build_stats(const sp_dev *dev, unsigned *compiled, unsigned *cached)
{
    if (compiled)
        *compiled = dev->n_compiled;
    if (cached)
        *cached = dev->n_cached;
}

void dev_test_fail_next_build(sp_dev *dev)
{
    dev->fail_next_build = 1;
}

void dev_test_set_mem_limit(sp_dev *dev, uint64_t bytes)
{
    dev->mem_limit = bytes;
}

const char *dev_kernel_source(const char *name)
{
    if (!name)
        return NULL;
    for (const struct spate_embedded *e = spate_embedded_kernels; e->name; e++)
        if (!strcmp(e->name, name))
            return e->src;
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Builds and the binary cache */

/* Key over everything that changes the binary: generated source, options, device and the
 * driver stack. Each field seeds the next, so field boundaries count. */
static uint64_t dev_cache_key(const sp_dev *dev, const char *src, size_t len, const char *opts)
{
    uint64_t h = XXH3_64bits(src, len);
    h = XXH3_64bits_withSeed(opts, strlen(opts), h);
    h = XXH3_64bits_withSeed(dev->info.name, strlen(dev->info.name), h);
    h = XXH3_64bits_withSeed(dev->info.version, strlen(dev->info.version), h);
    h = XXH3_64bits_withSeed(dev->info.driver, strlen(dev->info.driver), h);
    h = XXH3_64bits_withSeed(dev->info.platform_version, strlen(dev->info.platform_version), h);
    return h;
}

static char *dev_cache_path(const sp_dev *dev, uint64_t key)
{
    char leaf[32];
    snprintf(leaf, sizeof leaf, "%016" PRIx64 ".bin", key);
    return dev_path_join(&dev->alloc, dev->cache_dir, leaf);
}

/* Reads a cached binary and builds it. Returns the program, or NULL when there is no usable
 * entry (missing, truncated, or refused by the driver: then the caller compiles and
 * overwrites it). */
static cl_program dev_cache_load(sp_dev *dev, uint64_t key, const char *opts)
{
    const sp_allocator *a = &dev->alloc;
    cl_program prog = NULL;
    unsigned char *bin = NULL;
    char *path = dev_cache_path(dev, key);
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f)
        goto done;
    char magic[8];
    uint64_t fkey = 0, len = 0;
    struct stat st;
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, DEV_CACHE_MAGIC, 8) ||
        fread(&fkey, sizeof fkey, 1, f) != 1 || fread(&len, sizeof len, 1, f) != 1 ||
        fkey != key || fstat(fileno(f), &st) != 0 || len == 0 ||
        (uint64_t)st.st_size != 24 + len)
        goto bad;
    bin = mem_alloc(a, (size_t)len);
    if (!bin) {
        fprintf(dev->log, "spate: out of memory reading cached program %s; rebuilding\n", path);
        goto done;
    }
    if (fread(bin, 1, (size_t)len, f) != len)
        goto bad;
    size_t blen = (size_t)len;
    const unsigned char *bins[1] = {bin};
    cl_int status = CL_SUCCESS, err;
    prog = clCreateProgramWithBinary(dev->ctx, 1, &dev->id, &blen, bins, &status, &err);
    if (err != CL_SUCCESS || status != CL_SUCCESS) {
        if (prog)
            clReleaseProgram(prog);
        prog = NULL;
        fprintf(dev->log, "spate: cached program %s refused (%s); rebuilding\n", path,
                dev_clerr_name(err != CL_SUCCESS ? err : status));
        goto done;
    }
    err = clBuildProgram(prog, 1, &dev->id, opts, NULL, NULL);
    if (err != CL_SUCCESS) {
        clReleaseProgram(prog);
        prog = NULL;
        fprintf(dev->log, "spate: cached program %s does not build (%s); rebuilding\n", path,
                dev_clerr_name(err));
    }
    goto done;
bad:
    fprintf(dev->log, "spate: cached program %s is damaged; rebuilding\n", path);
done:
    if (f)
        fclose(f);
    mem_free(a, bin);
    mem_free(a, path);
    return prog;
}

/* Stores the program's binary: written to a temporary name, then renamed, so that a reader
 * never sees half a file. Failures only warn: the cache is an optimisation. */
static void dev_cache_store(sp_dev *dev, uint64_t key, cl_program prog)
{
    const sp_allocator *a = &dev->alloc;
    size_t len = 0;
    unsigned char *bin = NULL;
    char *path = NULL, *tmp = NULL;
    FILE *f = NULL;
    const char *why = NULL;

    if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof len, &len, NULL) != CL_SUCCESS ||
        len == 0) {
        why = "the driver gives no binary";
        goto done;
    }
    bin = mem_alloc(a, len);
    path = dev_cache_path(dev, key);
    size_t tlen = path ? strlen(path) + 48 : 0;
    tmp = path ? mem_alloc(a, tlen) : NULL;
    if (!bin || !tmp) {
        why = "out of memory";
        goto done;
    }
    unsigned char *bins[1] = {bin};
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) != CL_SUCCESS) {
        why = "the driver gives no binary";
        goto done;
    }
    /* Unique per process and per device, so concurrent writers never share a temporary. */
    snprintf(tmp, tlen, "%s.tmp%ld.%p", path, (long)getpid(), (void *)dev);
    f = fopen(tmp, "wb");
    if (!f) {
        why = strerror(errno);
        goto done;
    }
    uint64_t k = key, l = len;
    int ok = fwrite(DEV_CACHE_MAGIC, 1, 8, f) == 8 && fwrite(&k, sizeof k, 1, f) == 1 &&
             fwrite(&l, sizeof l, 1, f) == 1 && fwrite(bin, 1, len, f) == len;
    ok = (fclose(f) == 0) && ok;
    f = NULL;
    if (!ok || rename(tmp, path) != 0) {
        why = strerror(errno);
        remove(tmp);
    }
done:
    if (why)
        fprintf(dev->log, "spate: warning: cannot store program binary in %s: %s\n",
                dev->cache_dir, why);
    mem_free(a, tmp);
    mem_free(a, path);
    mem_free(a, bin);
}

static char *dev_build_log(sp_dev *dev, cl_program prog)
{
    size_t n = 0;
    char *log = NULL;
    if (clGetProgramBuildInfo(prog, dev->id, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) == CL_SUCCESS &&
        (log = mem_alloc(&dev->alloc, n + 1)) != NULL) {
        if (clGetProgramBuildInfo(prog, dev->id, CL_PROGRAM_BUILD_LOG, n, log, NULL) !=
            CL_SUCCESS)
            n = 0;
        log[n] = '\0';
    }
    return log;
}

/* The line of a build log to put in a one-line message: the first that says "error", else the
 * first non-blank one. */
static void dev_first_error(const char *log, char *out, size_t cap)
{
    const char *pick = NULL, *first = NULL;
    for (const char *p = log; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        int blank = 1;
        for (size_t i = 0; i < n; i++)
            blank &= isspace((unsigned char)p[i]) != 0;
        if (!blank && !first)
            first = p;
        for (size_t i = 0; !blank && i + 5 <= n; i++)
            if (!strncasecmp(p + i, "error", 5)) {
                pick = p;
                break;
            }
        if (pick)
            break;
        p = e ? e + 1 : p + n;
    }
    if (!pick)
        pick = first;
    if (!pick) {
        snprintf(out, cap, "(empty build log)");
        return;
    }
    size_t n = strcspn(pick, "\n");
    if (n >= cap)
        n = cap - 1;
    memcpy(out, pick, n);
    out[n] = '\0';
    dev_trim(out);
}

static int dev_write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fwrite(text, 1, len, f) == len;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* Saves the generated source and the log where a person can find them: a
 * spate-build-failures/ folder in the cache dir, else in $TMPDIR (or /tmp). The names are
 * stable per source, so a failure that repeats overwrites its own files. */
static int dev_build_failed(sp_dev *dev, const char *name, const char *src, size_t len,
                            const char *log, sp_diag *d)
{
    const sp_allocator *a = &dev->alloc;
    char first[300], stem[80];
    dev_first_error(log, first, sizeof first);
    size_t i = 0;
    for (; i < 48 && name[i]; i++)
        stem[i] = (isalnum((unsigned char)name[i]) || strchr("._-", name[i])) ? name[i] : '_';
    snprintf(stem + i, sizeof stem - i, "-%08x", (unsigned)XXH3_64bits(src, len));

    fprintf(dev->log, "spate: %s: kernel build failed on %s; build log:\n%s\n", name,
            dev->info.name, log);

    const char *tmpdir = getenv("TMPDIR");
    if (!tmpdir || !*tmpdir)
        tmpdir = "/tmp";
    char *dir = dev_path_join(a, dev->cache_dir ? dev->cache_dir : tmpdir,
                              "spate-build-failures");
    if (dir && dev_mkdir_p(a, dir) != 0) {
        mem_free(a, dir);
        dir = mem_strdup(a, tmpdir);
    }
    char *base = dir ? dev_path_join(a, dir, stem) : NULL;
    size_t blen = base ? strlen(base) + 8 : 0;
    char *spath = base ? mem_alloc(a, blen) : NULL;
    char *lpath = base ? mem_alloc(a, blen) : NULL;
    int saved = 0;
    if (spath && lpath) {
        snprintf(spath, blen, "%s.cl", base);
        snprintf(lpath, blen, "%s.log", base);
        saved = dev_write_file(spath, src, len) == 0 &&
                dev_write_file(lpath, log, strlen(log)) == 0;
    }
    int rc;
    if (saved)
        rc = diag_set(d, SP_EBUILD, "%s: kernel build failed: %s (source and log: %s, %s)", name,
                      first, spath, lpath);
    else
        rc = diag_set(d, SP_EBUILD,
                      "%s: kernel build failed: %s (source and log not saved; log written to "
                      "the log stream)",
                      name, first);
    mem_free(a, lpath);
    mem_free(a, spath);
    mem_free(a, base);
    mem_free(a, dir);
    return rc;
}

int dev_build(sp_dev *dev, const char *name, const char *src, const char *opts, cl_program *out,
              sp_diag *d)
{
    SP_CHECK(d, dev && name && src && out, SP_EINVAL, "dev_build: NULL argument");
    *out = NULL;
    const char *common = dev_kernel_source("common.h");
    SP_CHECK(d, common, SP_EINVAL, "%s: kernels/common.h is not embedded", name);
    const sp_allocator *a = &dev->alloc;
    cl_program prog = NULL;
    char *log = NULL;
    cl_int err;
    int rc = SP_OK;

    /* Generated source: common.h, then the program with line numbers restarted so that the
     * compiler's messages point into the caller's text ("name:LINE:COL: error: ..."). */
    strbuf full, options;
    sb_init(&full, a);
    sb_init(&options, a);
    sb_adds(&full, common);
    sb_adds(&full, "\n#line 1 \"");
    for (const char *p = name; *p; p++)
        sb_addc(&full, (*p == '"' || *p == '\\' || *p == '\n') ? '_' : *p);
    sb_adds(&full, "\"\n");
    sb_adds(&full, src);
    sb_addc(&full, '\n');
    sb_printf(&options, "-D SP_STRATEGY_%s=1 -cl-std=CL1.2",
              dev->strategy == DEV_STRATEGY_CPU ? "CPU" : "GPU");
    if (opts && *opts)
        sb_printf(&options, " %s", opts);
    if (full.oom || options.oom) {
        rc = diag_set(d, SP_ENOMEM, "%s: building: out of memory", name);
        goto done;
    }

    if (dev->fail_next_build) {
        dev->fail_next_build = 0;
        rc = dev_build_failed(dev, name, full.s, full.len,
                              "error: build failure injected by dev_test_fail_next_build\n", d);
        goto done;
    }

    uint64_t key = dev_cache_key(dev, full.s, full.len, options.s);
    if (dev->cache_dir && (prog = dev_cache_load(dev, key, options.s)) != NULL) {
        dev->n_cached++;
        goto done;
    }

    const char *s = full.s;
    size_t slen = full.len;
    prog = clCreateProgramWithSource(dev->ctx, 1, &s, &slen, &err);
    if ((rc = dev_check(err, "clCreateProgramWithSource", d))) {
        diag_prefix(d, "%s", name);
        goto done;
    }
    err = clBuildProgram(prog, 1, &dev->id, options.s, NULL, NULL);
    if (err == CL_BUILD_PROGRAM_FAILURE || err == CL_INVALID_BUILD_OPTIONS ||
        err == CL_COMPILER_NOT_AVAILABLE) {
        log = dev_build_log(dev, prog);
        if (err != CL_BUILD_PROGRAM_FAILURE || !log || !*log) {
            /* No compiler log (bad options, no compiler): the CL error is the message. */
            char tmp[512];
            snprintf(tmp, sizeof tmp, "error: %s (options: %s)\n%s", dev_clerr_name(err),
                     options.s, log ? log : "");
            rc = dev_build_failed(dev, name, full.s, full.len, tmp, d);
        } else {
            rc = dev_build_failed(dev, name, full.s, full.len, log, d);
        }
        goto done;
    }
    if ((rc = dev_check(err, "clBuildProgram", d))) {
        diag_prefix(d, "%s", name);
        goto done;
    }
    dev->n_compiled++;
    if (dev->cache_dir)
        dev_cache_store(dev, key, prog);

done:
    if (rc && prog) {
        clReleaseProgram(prog);
        prog = NULL;
    }
    *out = prog;
    mem_free(a, log);
    sb_free(&options);
    sb_free(&full);
    return rc;
}

int dev_kernel(sp_dev *dev, const char *file, const char *kernel, cl_kernel *out, sp_diag *d)
{
    SP_CHECK(d, dev && file && kernel && out, SP_EINVAL, "dev_kernel: NULL argument");
    *out = NULL;
    const sp_allocator *a = &dev->alloc;
    for (size_t i = 0; i < dev->nkerns; i++)
        if (!strcmp(dev->kerns[i].file, file) && !strcmp(dev->kerns[i].name, kernel)) {
            *out = dev->kerns[i].kernel;
            return SP_OK;
        }

    /* Room first, so that nothing built below has to be undone for want of a slot. */
    if (dev->nkerns == dev->capkerns) {
        size_t cap = dev->capkerns ? dev->capkerns * 2 : 8;
        dev_kern *k = mem_realloc(a, dev->kerns, cap * sizeof *k);
        if (!k)
            return diag_set(d, SP_ENOMEM, "%s: kernel %s: out of memory", file, kernel);
        dev->kerns = k;
        dev->capkerns = cap;
    }
    if (dev->nprogs == dev->capprogs) {
        size_t cap = dev->capprogs ? dev->capprogs * 2 : 8;
        dev_prog *p = mem_realloc(a, dev->progs, cap * sizeof *p);
        if (!p)
            return diag_set(d, SP_ENOMEM, "%s: kernel %s: out of memory", file, kernel);
        dev->progs = p;
        dev->capprogs = cap;
    }

    cl_program prog = NULL;
    for (size_t i = 0; i < dev->nprogs && !prog; i++)
        if (!strcmp(dev->progs[i].file, file))
            prog = dev->progs[i].prog;
    if (!prog) {
        const char *src = dev_kernel_source(file);
        SP_CHECK(d, src, SP_EINVAL, "unknown kernel file '%s' (not among the embedded kernels/)",
                 file);
        char *fcopy = mem_strdup(a, file);
        if (!fcopy)
            return diag_set(d, SP_ENOMEM, "%s: out of memory", file);
        int rc = dev_build(dev, file, src, NULL, &prog, d);
        if (rc) {
            mem_free(a, fcopy);
            return rc;
        }
        dev->progs[dev->nprogs].file = fcopy;
        dev->progs[dev->nprogs].prog = prog;
        dev->nprogs++;
    }

    cl_int err;
    cl_kernel k = clCreateKernel(prog, kernel, &err);
    if (err == CL_INVALID_KERNEL_NAME)
        return diag_set(d, SP_EINVAL, "%s: no kernel named '%s'", file, kernel);
    if (err != CL_SUCCESS) {
        dev_check(err, "clCreateKernel", d);
        return diag_prefix(d, "%s: kernel %s", file, kernel);
    }
    char *fcopy = mem_strdup(a, file), *kcopy = mem_strdup(a, kernel);
    if (!fcopy || !kcopy) {
        mem_free(a, fcopy);
        mem_free(a, kcopy);
        clReleaseKernel(k);
        return diag_set(d, SP_ENOMEM, "%s: kernel %s: out of memory", file, kernel);
    }
    dev->kerns[dev->nkerns].file = fcopy;
    dev->kerns[dev->nkerns].name = kcopy;
    dev->kerns[dev->nkerns].kernel = k;
    dev->nkerns++;
    *out = k;
    return SP_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Buffers */

static void dev_fmt_size(uint64_t bytes, int round_up, char *out, size_t cap)
{
    const uint64_t mib = (uint64_t)1 << 20;
    if (bytes < mib)
        snprintf(out, cap, "%" PRIu64 " bytes", bytes);
    else
        snprintf(out, cap, "%" PRIu64 " MiB", (bytes + (round_up ? mib - 1 : 0)) / mib);
}

/* The limits POCL does not enforce itself: one allocation against max_alloc, a device copy
 * against global memory, and the test limit. */
static int dev_mem_check(const sp_dev *dev, const char *what, size_t bytes, int device_copy,
                         sp_diag *d)
{
    uint64_t allow = dev->info.max_alloc ? dev->info.max_alloc : UINT64_MAX;
    if (device_copy && dev->info.global_mem && dev->info.global_mem < allow)
        allow = dev->info.global_mem;
    if (dev->mem_limit && dev->mem_limit < allow)
        allow = dev->mem_limit;
    if ((uint64_t)bytes <= allow)
        return SP_OK;
    char need[48], have[48];
    dev_fmt_size(bytes, 1, need, sizeof need);
    dev_fmt_size(allow, 0, have, sizeof have);
    return diag_set(d, SP_EDEVMEM, "device out of memory: %s needs %s, device allows %s", what,
                    need, have);
}

/* A discrete GPU: transfers cross a bus and pageable host memory would be copied twice. */
static int dev_is_discrete(const sp_dev *dev)
{
    return !dev->info.host_unified && !(dev->info.type & CL_DEVICE_TYPE_CPU);
}

/* Host-to-device copy into `dst` at `off`. On a discrete GPU a large copy goes through a
 * pinned staging buffer (CL_MEM_ALLOC_HOST_PTR): the DMA engine reads pinned pages directly,
 * pageable memory would first be copied by the driver. The staging buffer is created per call
 * (a persistent staging ring reused across batches would save that; not done yet) and
 * released at once: OpenCL keeps it alive until the queued copy has run. Returns when `src`
 * may be reused. */
static int dev_upload(sp_dev *dev, cl_mem dst, size_t off, const void *src, size_t bytes,
                      const char *what, sp_diag *d)
{
    cl_int err;
    if (bytes >= DEV_STAGING_MIN && dev_is_discrete(dev)) {
        cl_mem stage = clCreateBuffer(dev->ctx, CL_MEM_READ_ONLY | CL_MEM_ALLOC_HOST_PTR, bytes,
                                      NULL, &err);
        if (err == CL_SUCCESS) {
            void *p = clEnqueueMapBuffer(dev->queue, stage, CL_TRUE, CL_MAP_WRITE_INVALIDATE_REGION,
                                         0, bytes, 0, NULL, NULL, &err);
            if (err == CL_SUCCESS) {
                memcpy(p, src, bytes);
                err = clEnqueueUnmapMemObject(dev->queue, stage, p, 0, NULL, NULL);
                if (err == CL_SUCCESS)
                    err = clEnqueueCopyBuffer(dev->queue, stage, dst, 0, off, bytes, 0, NULL,
                                              NULL);
            }
            clReleaseMemObject(stage);
            return dev_check(err, what, d);
        }
        /* No pinned memory to spare: fall through to the plain (driver-staged) write. */
    }
    err = clEnqueueWriteBuffer(dev->queue, dst, CL_TRUE, off, bytes, src, 0, NULL, NULL);
    return dev_check(err, what, d);
}

int dev_buf_wrap(sp_dev *dev, void *host, size_t bytes, int access, dev_buf *b, sp_diag *d)
{
    SP_CHECK(d, dev && b, SP_EINVAL, "dev_buf_wrap: NULL argument");
    memset(b, 0, sizeof *b);
    SP_CHECK(d, host || bytes == 0, SP_EINVAL, "dev_buf_wrap: NULL host memory");
    SP_CHECK(d, access >= DEV_BUF_READ && access <= DEV_BUF_RW, SP_EINVAL,
             "dev_buf_wrap: access %d is not DEV_BUF_READ/WRITE/RW", access);
    cl_mem_flags flags = access == DEV_BUF_READ    ? CL_MEM_READ_ONLY
                         : access == DEV_BUF_WRITE ? CL_MEM_WRITE_ONLY
                                                   : CL_MEM_READ_WRITE;
    /* Zero-copy where device and host share memory and the pointer meets the device's base
     * alignment (POCL: 128 bytes; page-aligned arena memory always does). */
    int zero_copy = bytes > 0 &&
                    ((dev->info.type & CL_DEVICE_TYPE_CPU) || dev->info.host_unified) &&
                    (uintptr_t)host % dev->base_align == 0;
    int rc = dev_mem_check(dev, "a wrapped host buffer", bytes, !zero_copy, d);
    if (rc)
        return rc;
    cl_int err;
    cl_mem m;
    if (zero_copy)
        m = clCreateBuffer(dev->ctx, flags | CL_MEM_USE_HOST_PTR, bytes, host, &err);
    else
        m = clCreateBuffer(dev->ctx, flags, bytes ? bytes : 1, NULL, &err);
    if ((rc = dev_check(err, "clCreateBuffer (wrap)", d)))
        return rc;
    if (!zero_copy && (access & DEV_BUF_READ) && bytes) {
        if ((rc = dev_upload(dev, m, 0, host, bytes, "uploading a wrapped buffer", d))) {
            clReleaseMemObject(m);
            return rc;
        }
    }
    b->mem = m;
    b->host = host;
    b->bytes = bytes;
    b->zero_copy = zero_copy;
    return SP_OK;
}

int dev_buf_alloc(sp_dev *dev, size_t bytes, dev_buf *b, sp_diag *d)
{
    SP_CHECK(d, dev && b, SP_EINVAL, "dev_buf_alloc: NULL argument");
    memset(b, 0, sizeof *b);
    int rc = dev_mem_check(dev, "a scratch buffer", bytes, 1, d);
    if (rc)
        return rc;
    cl_int err;
    /* OpenCL refuses zero-sized buffers; an empty one still gets a valid handle. */
    cl_mem m = clCreateBuffer(dev->ctx, CL_MEM_READ_WRITE, bytes ? bytes : 1, NULL, &err);
    if ((rc = dev_check(err, "clCreateBuffer (scratch)", d)))
        return rc;
    b->mem = m;
    b->bytes = bytes;
    return SP_OK;
}

int dev_buf_sync_host(sp_dev *dev, dev_buf *b, sp_diag *d)
{
    SP_CHECK(d, dev && b && b->mem, SP_EINVAL, "dev_buf_sync_host: no buffer");
    SP_CHECK(d, b->host, SP_EINVAL, "dev_buf_sync_host: a scratch buffer has no host memory");
    if (b->bytes == 0)
        return SP_OK;
    cl_int err;
    if (!b->zero_copy) {
        err = clEnqueueReadBuffer(dev->queue, b->mem, CL_TRUE, 0, b->bytes, b->host, 0, NULL,
                                  NULL);
        return dev_check(err, "reading a buffer back to the host", d);
    }
    /* OpenCL 1.2 5.4.3: with CL_MEM_USE_HOST_PTR the host memory holds the device's writes
     * only between a map and its unmap; a blocking map then unmap is the synchronisation. On
     * POCL the map is free (same pointer). */
    void *p = clEnqueueMapBuffer(dev->queue, b->mem, CL_TRUE, CL_MAP_READ, 0, b->bytes, 0, NULL,
                                 NULL, &err);
    int rc = dev_check(err, "mapping a zero-copy buffer", d);
    if (rc)
        return rc;
    cl_event ev = NULL;
    err = clEnqueueUnmapMemObject(dev->queue, b->mem, p, 0, NULL, &ev);
    if (err == CL_SUCCESS) {
        err = clWaitForEvents(1, &ev);
        clReleaseEvent(ev);
    }
    return dev_check(err, "unmapping a zero-copy buffer", d);
}

int dev_buf_read(sp_dev *dev, const dev_buf *b, size_t offset, void *dst, size_t bytes,
                 sp_diag *d)
{
    SP_CHECK(d, dev && b && b->mem && (dst || !bytes), SP_EINVAL, "dev_buf_read: NULL argument");
    SP_CHECK(d, offset <= b->bytes && bytes <= b->bytes - offset, SP_EINVAL,
             "dev_buf_read: %zu bytes at %zu are outside a buffer of %zu bytes", bytes, offset,
             b->bytes);
    if (!bytes)
        return SP_OK;
    cl_int err =
        clEnqueueReadBuffer(dev->queue, b->mem, CL_TRUE, offset, bytes, dst, 0, NULL, NULL);
    return dev_check(err, "clEnqueueReadBuffer", d);
}

int dev_buf_write(sp_dev *dev, dev_buf *b, size_t offset, const void *src, size_t bytes,
                  sp_diag *d)
{
    SP_CHECK(d, dev && b && b->mem && (src || !bytes), SP_EINVAL, "dev_buf_write: NULL argument");
    SP_CHECK(d, offset <= b->bytes && bytes <= b->bytes - offset, SP_EINVAL,
             "dev_buf_write: %zu bytes at %zu are outside a buffer of %zu bytes", bytes, offset,
             b->bytes);
    if (!bytes)
        return SP_OK;
    return dev_upload(dev, b->mem, offset, src, bytes, "clEnqueueWriteBuffer", d);
}

int dev_buf_fill_zero(sp_dev *dev, dev_buf *b, sp_diag *d)
{
    SP_CHECK(d, dev && b && b->mem, SP_EINVAL, "dev_buf_fill_zero: no buffer");
    if (!b->bytes)
        return SP_OK;
    const cl_uchar zero = 0;
    cl_int err = clEnqueueFillBuffer(dev->queue, b->mem, &zero, 1, 0, b->bytes, 0, NULL, NULL);
    return dev_check(err, "clEnqueueFillBuffer", d);
}

void dev_buf_release(dev_buf *b)
{
    if (!b)
        return;
    if (b->mem)
        clReleaseMemObject(b->mem);
    memset(b, 0, sizeof *b);
}

/* ---------------------------------------------------------------------------------------- */
/* Launches */

int dev_launch(sp_dev *dev, cl_kernel k, size_t gws, size_t lws, const char *what, sp_diag *d)
{
    SP_CHECK(d, dev && k, SP_EINVAL, "dev_launch: NULL argument");
    if (gws == 0)
        return SP_OK; /* OpenCL 1.2 refuses an empty range; there is nothing to run */
    SP_CHECK(d, lws == 0 || gws % lws == 0, SP_EINVAL,
             "%s: global size %zu is not a multiple of the work-group size %zu",
             what ? what : "launch", gws, lws);
    cl_int err =
        clEnqueueNDRangeKernel(dev->queue, k, 1, NULL, &gws, lws ? &lws : NULL, 0, NULL, NULL);
    if (err == CL_SUCCESS)
        atomic_fetch_add_explicit(&dev->launches, 1, memory_order_relaxed);
    return dev_check(err, what ? what : "clEnqueueNDRangeKernel", d);
}

void dev_count_rows(sp_dev *dev, size_t n, int on_device)
{
    if (dev && n)
        atomic_fetch_add_explicit(on_device ? &dev->rows_device : &dev->rows_host, n,
                                  memory_order_relaxed);
}

void dev_counters_get(const sp_dev *dev, dev_counters *out)
{
    memset(out, 0, sizeof *out);
    if (!dev)
        return;
    /* atomic_load takes a pointer to non-const in C11; the loads only read */
    sp_dev *m = (sp_dev *)dev;
    out->launches = atomic_load_explicit(&m->launches, memory_order_relaxed);
    out->rows_device = atomic_load_explicit(&m->rows_device, memory_order_relaxed);
    out->rows_host = atomic_load_explicit(&m->rows_host, memory_order_relaxed);
}

int dev_finish(sp_dev *dev, sp_diag *d)
{
    SP_CHECK(d, dev, SP_EINVAL, "dev_finish: NULL device");
    return dev_check(clFinish(dev->queue), "clFinish", d);
}

void dev_set_tunable(sp_dev *dev, dev_tunable key, size_t value)
{
    if (dev && (unsigned)key < DEV_TUNABLE_COUNT)
        dev->tunables[key] = value;
}

size_t dev_get_tunable(const sp_dev *dev, dev_tunable key)
{
    return dev && (unsigned)key < DEV_TUNABLE_COUNT ? dev->tunables[key] : 0;
}
