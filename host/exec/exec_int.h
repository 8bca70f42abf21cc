/* exec_int.h — executor threads: one per core by default, each bound to its core with hwloc
 * and knowing its NUMA node. The driver hands them tasks (a batch's partitions) and waits. */
#ifndef SPATE_EXEC_INT_H
#define SPATE_EXEC_INT_H

#include "exec/topo_int.h"

#include <stddef.h>

typedef struct sp_exec sp_exec;

/** Starts n executor threads (0: one per core of t), executor i on core i % cores. */
int exec_new(sp_topo *t, unsigned n, const sp_allocator *a, sp_exec **out, sp_diag *d);
void exec_free(sp_exec *x);

unsigned exec_count(const sp_exec *x);
/** NUMA node of executor w. */
unsigned exec_node(const sp_exec *x, unsigned w);
/** Core of executor w. */
unsigned exec_core(const sp_exec *x, unsigned w);

/** Executor that should run partition `part` whose memory lies on `node`: the executors of
 *  that node taken round-robin by part; any executor if the node has none. Pure function of
 *  (x's placement, node, part): tests check it on synthetic topologies. */
unsigned exec_place(const sp_exec *x, unsigned node, size_t part);

/** Task function: runs on executor `worker`. Non-zero return is the task's failure. */
typedef int (*exec_fn)(void *ud, size_t task, unsigned worker);

/** Runs tasks 0..ntasks-1 and waits for all of them. Task t runs on
 *  exec_place(x, node[t], t) when node is non-NULL, else any executor (dynamic). Returns 0 or
 *  the first non-zero task return (all tasks are still finished or skipped before return).
 *  Called from one thread at a time. With ntasks == 1 the task may run on the caller. */
int exec_run(sp_exec *x, size_t ntasks, const unsigned *node, exec_fn fn, void *ud);

#endif
