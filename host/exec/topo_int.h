/* topo_int.h — the machine's topology (hwloc), discovered once per context: NUMA nodes,
 * cores, binding, NUMA-local memory. Loads synthetic or XML topologies for tests; on those,
 * binding calls do nothing and placement logic can be checked safely. */
#ifndef SPATE_TOPO_INT_H
#define SPATE_TOPO_INT_H

#include "device/device_int.h"
#include "util/diag_int.h"

#include <hwloc.h>
#include <stdio.h>

typedef struct sp_topo sp_topo;

typedef struct topo_opts {
    const char *synthetic; /* hwloc synthetic description, e.g. "pack:2 numa:2 core:4 pu:1" */
    const char *xml;       /* hwloc XML file */
    FILE *log;             /* warnings (stderr if NULL) */
    const sp_allocator *alloc;
} topo_opts;

int topo_open(const topo_opts *o, sp_topo **out, sp_diag *d);
void topo_close(sp_topo *t);

/** 1 when this is the machine we run on (binding has effect), 0 for a fake topology. */
int topo_is_this_system(const sp_topo *t);
unsigned topo_packages(const sp_topo *t);
/** NUMA nodes (at least 1: a machine without NUMA info counts as one node). */
unsigned topo_numa_nodes(const sp_topo *t);
/** Cores (at least 1), in hwloc's logical order. */
unsigned topo_cores(const sp_topo *t);
/** Logical index of the NUMA node holding core `core`. */
unsigned topo_core_node(const sp_topo *t, unsigned core);

/** Binds the calling thread to core `core`. Refusal (or a fake topology) is not an error:
 *  the first refusal warns once on the log, later ones are silent; returns 1 if bound,
 *  0 if not. */
int topo_bind_thread(sp_topo *t, unsigned core);

/** Memory bound to NUMA node `node` (hwloc_alloc_membind, strict where allowed, falling back
 *  to page-aligned plain memory when refused), page aligned. Free with topo_free_mem. */
void *topo_alloc_mem(sp_topo *t, unsigned node, size_t bytes);
void topo_free_mem(sp_topo *t, void *p, size_t bytes);

/** NUMA node local to an OpenCL device where hwloc knows (by PCI bus id), else -1. */
int topo_device_node(sp_topo *t, const dev_info *info);

/** One-paragraph summary for `spate devices`: packages, NUMA nodes with their cores and
 *  memory, whether binding works. */
int topo_summary(sp_topo *t, FILE *f);

hwloc_topology_t topo_hwloc(sp_topo *t);

#endif
