/* topo.c — the machine's topology through hwloc 2: counts, core→NUMA node map, thread binding,
 * NUMA-bound memory and device locality.
 *
 * Invariants: after topo_open the hwloc topology is never modified, so every function here
 * only reads it and may be called from any thread (hwloc's read-only calls are thread-safe);
 * the only mutable state is the two atomic flags below. Core and node numbers are hwloc
 * logical indexes (the order lstopo prints), never OS indexes. */
#include "exec/topo_int.h"
#include "util/mem_int.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sp_topo {
    hwloc_topology_t h;
    sp_allocator alloc;
    FILE *log;
    int this_system;
    unsigned packages;
    unsigned nodes;
    unsigned cores;
    hwloc_obj_type_t core_type; /* HWLOC_OBJ_CORE, or HWLOC_OBJ_PU where cores are unknown */
    unsigned *core_node;        /* [cores]: logical NUMA node of each core */
    size_t page;                /* alignment of topo_alloc_mem, >= 4096 */
    atomic_int bind_warned;     /* the one "cannot bind" warning was printed */
    atomic_int strict_refused;  /* HWLOC_MEMBIND_STRICT failed once: stop asking */
};

/* Logical index of the first NUMA node whose cpuset intersects `set`; 0 when none does
 * (a core with no NUMA information belongs to the single implicit node). */
static unsigned topo_node_of_cpuset(hwloc_topology_t h, hwloc_const_cpuset_t set)
{
    hwloc_obj_t n = NULL;
    while ((n = hwloc_get_next_obj_by_type(h, HWLOC_OBJ_NUMANODE, n)) != NULL)
        if (n->cpuset && hwloc_bitmap_intersects(n->cpuset, set)) return n->logical_index;
    return 0;
}

/* Logical NUMA node for a nodeset of a device's locality: the first node it names, or -1
 * when it is empty or spans the whole machine while there are several nodes (the device is
 * attached above the nodes, so no node is local). */
static int topo_node_of_nodeset(const sp_topo *t, hwloc_const_nodeset_t ns)
{
    if (!ns || hwloc_bitmap_iszero(ns)) return -1;
    if (t->nodes > 1 && hwloc_bitmap_isincluded(hwloc_topology_get_topology_nodeset(t->h), ns))
        return -1;
    hwloc_obj_t n = NULL;
    while ((n = hwloc_get_next_obj_by_type(t->h, HWLOC_OBJ_NUMANODE, n)) != NULL)
        if (hwloc_bitmap_isset(ns, n->os_index)) return (int)n->logical_index;
    return -1;
}

int topo_open(const topo_opts *o, sp_topo **out, sp_diag *d)
{
    SP_CHECK(d, o && out, SP_EINVAL, "topo_open: NULL argument");
    SP_CHECK(d, !(o->synthetic && o->xml), SP_EINVAL,
             "topo_open: give a synthetic description or an XML file, not both");
    *out = NULL;
    int rc;
    sp_topo *t = mem_calloc(o->alloc, 1, sizeof *t);
    if (!t) return diag_set(d, SP_ENOMEM, "topo_open: out of memory");
    if (o->alloc) t->alloc = *o->alloc;
    t->log = o->log ? o->log : stderr;
    long ps = sysconf(_SC_PAGESIZE);
    t->page = ps > 4096 ? (size_t)ps : 4096;
    atomic_init(&t->bind_warned, 0);
    atomic_init(&t->strict_refused, 0);

    if (hwloc_topology_init(&t->h) != 0) {
        rc = diag_set(d, SP_ENOMEM, "topo_open: hwloc_topology_init failed");
        goto fail_free;
    }
    if (o->synthetic && hwloc_topology_set_synthetic(t->h, o->synthetic) != 0) {
        rc = diag_set(d, SP_EINVAL, "topo_open: invalid synthetic topology \"%s\"", o->synthetic);
        goto fail_destroy;
    }
    if (o->xml && hwloc_topology_set_xml(t->h, o->xml) != 0) {
        int e = errno;
        rc = diag_set(d, e == ENOENT ? SP_ENOENT : SP_EPARSE,
                      "topo_open: cannot use topology XML %s: %s", o->xml, strerror(e));
        goto fail_destroy;
    }
    /* PCI devices and OS devices (OpenCL, when hwloc's plugin is installed) give device
     * locality; bridges are kept only where they lead to them. */
    hwloc_topology_set_io_types_filter(t->h, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
    if (hwloc_topology_load(t->h) != 0) {
        int e = errno;
        rc = diag_set(d, o->xml ? SP_EPARSE : SP_ERUNTIME, "topo_open: hwloc cannot load %s: %s",
                      o->xml         ? o->xml
                      : o->synthetic ? "the synthetic topology"
                                     : "this machine",
                      strerror(e));
        goto fail_destroy;
    }

    t->this_system = hwloc_topology_is_thissystem(t->h) ? 1 : 0;
    int np = hwloc_get_nbobjs_by_type(t->h, HWLOC_OBJ_PACKAGE);
    int nn = hwloc_get_nbobjs_by_type(t->h, HWLOC_OBJ_NUMANODE);
    int nc = hwloc_get_nbobjs_by_type(t->h, HWLOC_OBJ_CORE);
    t->core_type = HWLOC_OBJ_CORE;
    if (nc <= 0) {
        t->core_type = HWLOC_OBJ_PU;
        nc = hwloc_get_nbobjs_by_type(t->h, HWLOC_OBJ_PU);
    }
    t->packages = np > 0 ? (unsigned)np : 1;
    t->nodes = nn > 0 ? (unsigned)nn : 1;
    t->cores = nc > 0 ? (unsigned)nc : 1;

    t->core_node = mem_calloc(o->alloc, t->cores, sizeof *t->core_node);
    if (!t->core_node) {
        rc = diag_set(d, SP_ENOMEM, "topo_open: out of memory");
        goto fail_destroy;
    }
    for (unsigned c = 0; c < t->cores; c++) {
        hwloc_obj_t core = hwloc_get_obj_by_type(t->h, t->core_type, c);
        t->core_node[c] = core && core->cpuset ? topo_node_of_cpuset(t->h, core->cpuset) : 0;
    }
    *out = t;
    return SP_OK;

fail_destroy:
    hwloc_topology_destroy(t->h);
fail_free:
    mem_free(o->alloc, t);
    return rc;
}

void topo_close(sp_topo *t)
{
    if (!t) return;
    sp_allocator a = t->alloc;
    mem_free(&a, t->core_node);
    hwloc_topology_destroy(t->h);
    mem_free(&a, t);
}

int topo_is_this_system(const sp_topo *t)
{
    return t->this_system;
}

unsigned topo_packages(const sp_topo *t)
{
    return t->packages;
}

unsigned topo_numa_nodes(const sp_topo *t)
{
    return t->nodes;
}

unsigned topo_cores(const sp_topo *t)
{
    return t->cores;
}

unsigned topo_core_node(const sp_topo *t, unsigned core)
{
    return t->core_node[core % t->cores];
}

hwloc_topology_t topo_hwloc(sp_topo *t)
{
    return t->h;
}

/* Prints the binding warning once per topology, whichever thread fails first. */
static void topo_warn_bind(sp_topo *t, const char *why)
{
    if (atomic_exchange(&t->bind_warned, 1) == 0)
        fprintf(t->log,
                "spate: warning: cannot bind executor threads to cores (%s); "
                "continuing unbound\n",
                why);
}

int topo_bind_thread(sp_topo *t, unsigned core)
{
    if (!t->this_system) return 0;
    hwloc_obj_t obj = hwloc_get_obj_by_type(t->h, t->core_type, core % t->cores);
    if (!obj || !obj->cpuset) {
        topo_warn_bind(t, "core not found in the topology"); /* defensive */
        return 0;
    }
    hwloc_bitmap_t set = hwloc_bitmap_dup(obj->cpuset);
    if (!set) {
        topo_warn_bind(t, "out of memory");
        return 0;
    }
    /* One PU of the core: the thread does not migrate between hyperthreads either. */
    hwloc_bitmap_singlify(set);
    int r = hwloc_set_cpubind(t->h, set, HWLOC_CPUBIND_THREAD);
    int e = errno;
    hwloc_bitmap_free(set);
    if (r != 0) {
        topo_warn_bind(t, strerror(e));
        return 0;
    }
    return 1;
}

/* Strategy: a fake topology gets plain page-aligned heap memory (free()); the real machine
 * always goes through hwloc_alloc_membind (hwloc_free), first STRICT, and, once STRICT has
 * been refused, without it — hwloc then falls back by itself to unbound page-aligned memory.
 * One path per topology, so topo_free_mem knows which deallocator to call. */
void *topo_alloc_mem(sp_topo *t, unsigned node, size_t bytes)
{
    if (bytes == 0) bytes = 1;
    if (!t->this_system) {
        void *p = NULL;
        size_t rounded = (bytes + t->page - 1) / t->page * t->page;
        if (rounded < bytes || posix_memalign(&p, t->page, rounded) != 0) return NULL;
        return p;
    }
    hwloc_obj_t n = hwloc_get_obj_by_type(t->h, HWLOC_OBJ_NUMANODE, node);
    hwloc_const_nodeset_t ns =
        n && n->nodeset ? n->nodeset : hwloc_topology_get_topology_nodeset(t->h);
    const int flags = HWLOC_MEMBIND_BYNODESET;
    void *p = NULL;
    if (!atomic_load_explicit(&t->strict_refused, memory_order_relaxed)) {
        p = hwloc_alloc_membind(t->h, bytes, ns, HWLOC_MEMBIND_BIND, flags | HWLOC_MEMBIND_STRICT);
        if (!p && errno != ENOMEM)
            atomic_store_explicit(&t->strict_refused, 1, memory_order_relaxed);
    }
    if (!p) p = hwloc_alloc_membind(t->h, bytes, ns, HWLOC_MEMBIND_BIND, flags);
    if (p && ((uintptr_t)p & 4095u) != 0) {
        hwloc_free(t->h, p, bytes); /* defensive: hwloc always returns page-aligned memory */
        return NULL;
    }
    return p;
}

void topo_free_mem(sp_topo *t, void *p, size_t bytes)
{
    if (!p) return;
    if (!t->this_system)
        free(p);
    else
        hwloc_free(t->h, p, bytes ? bytes : 1);
}

/* The OpenCL OS device hwloc's plugin created for this device ("openclXdY"), if any:
 * matched by platform index and device name. */
static hwloc_obj_t topo_find_opencl_osdev(sp_topo *t, const dev_info *info)
{
    hwloc_obj_t os = NULL;
    while ((os = hwloc_get_next_osdev(t->h, os)) != NULL) {
        if (!os->subtype || strcmp(os->subtype, "OpenCL") != 0) continue;
        const char *pi = hwloc_obj_get_info_by_name(os, "OpenCLPlatformIndex");
        const char *model = hwloc_obj_get_info_by_name(os, "GPUModel");
        if (pi && atoi(pi) != info->platform_index) continue;
        if (model && info->name[0] && strcmp(model, info->name) != 0) continue;
        if (!pi && !model) continue;
        return os;
    }
    return NULL;
}

/* Parses "dddd:bb:dd.f" or "bb:dd.f" (hex, nothing after). Returns 1 on success. */
static int topo_parse_busid(const char *s, unsigned *dom, unsigned *bus, unsigned *slot,
                            unsigned *fn)
{
    char tail;
    if (sscanf(s, "%x:%x:%x.%x%c", dom, bus, slot, fn, &tail) == 4) return 1;
    *dom = 0;
    return sscanf(s, "%x:%x.%x%c", bus, slot, fn, &tail) == 3;
}

int topo_device_node(sp_topo *t, const dev_info *info)
{
    if (!t || !info) return -1;
    hwloc_obj_t dev = NULL;
    unsigned dom, bus, slot, fn;
    if (topo_parse_busid(info->pci_bus_id, &dom, &bus, &slot, &fn))
        dev = hwloc_get_pcidev_by_busid(t->h, dom, bus, slot, fn);
    if (!dev) dev = topo_find_opencl_osdev(t, info);
    if (!dev) return -1;
    hwloc_obj_t anc = hwloc_get_non_io_ancestor_obj(t->h, dev);
    return anc ? topo_node_of_nodeset(t, anc->nodeset) : -1;
}

/* Appends "a-b" ranges of the cores of `node` to buf, e.g. "0-3,8". */
static void topo_core_ranges(const sp_topo *t, unsigned node, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (unsigned c = 0; c < t->cores && len + 1 < cap; c++) {
        if (t->core_node[c] != node) continue;
        unsigned e = c;
        while (e + 1 < t->cores && t->core_node[e + 1] == node)
            e++;
        int w = e > c ? snprintf(buf + len, cap - len, "%s%u-%u", len ? "," : "", c, e)
                      : snprintf(buf + len, cap - len, "%s%u", len ? "," : "", c);
        if (w < 0 || (size_t)w >= cap - len) {
            buf[len] = '\0';
            break;
        }
        len += (size_t)w;
        c = e;
    }
    if (!buf[0]) snprintf(buf, cap, "none");
}

int topo_summary(sp_topo *t, FILE *f)
{
    const char *bind;
    if (!t->this_system)
        bind = "no (not this system)";
    else if (atomic_load(&t->bind_warned))
        bind = "no (refused)";
    else {
        const struct hwloc_topology_support *s = hwloc_topology_get_support(t->h);
        bind = s && s->cpubind && s->cpubind->set_thread_cpubind ? "yes" : "no (unsupported)";
    }
    if (fprintf(f, "topology: %u package%s, %u NUMA node%s, %u core%s (binding: %s)\n", t->packages,
                t->packages == 1 ? "" : "s", t->nodes, t->nodes == 1 ? "" : "s", t->cores,
                t->cores == 1 ? "" : "s", bind) < 0)
        return SP_EIO;
    char cores[256];
    for (unsigned i = 0; i < t->nodes; i++) {
        hwloc_obj_t n = hwloc_get_obj_by_type(t->h, HWLOC_OBJ_NUMANODE, i);
        double gib = n ? (double)n->attr->numanode.local_memory / (1024.0 * 1024 * 1024) : 0;
        topo_core_ranges(t, i, cores, sizeof cores);
        if (fprintf(f, "  node %u: cores %s, %.1f GiB\n", i, cores, gib) < 0) return SP_EIO;
    }
    return SP_OK;
}
