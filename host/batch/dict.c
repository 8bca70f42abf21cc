/* dict.c — the stream-lifetime string dictionary, with reclaiming.
 *
 * Invariants that make dict_get lock-free:
 *  - String bytes never move while their id is in use: each string has a slot of its size
 *    class (16 << c bytes) carved from chunks that are freed only by dict_free, or, when
 *    longer than DICT_BIG, a block of its own.
 *  - The id -> entry table is a fixed array of DICT_SEGS segment pointers; segment k holds
 *    DICT_SEG0 << k entries and is allocated once, never reallocated. An entry and its segment
 *    pointer are written (release) before the id is published (the count, and the return of
 *    dict_intern), so a reader holding an id sees a complete entry.
 *  - The hash index (open addressing, linear probing, load <= 1/2, backward-shift deletion)
 *    is only touched under the rwlock: lookups share it, inserts and sweeps take it
 *    exclusively.
 *
 * Reclaiming (epochs). Ids are stable for as long as anything refers to them, not for the
 * life of the stream. A reclaim cycle runs on the driver between two batch times, when no
 * executor task, source or sink is running (core/reclaim.c): dict_mark_begin starts epoch E;
 * every structure that keeps ids past the batch time (window panes and remembered batches,
 * updateStateByKey's state, keymaps' string columns, ...) marks them (entry.mark = E);
 * dict_sweep then frees every entry whose mark is not E and that is not pinned: its index
 * slot is deleted, its string slot goes back to its class's free list and its id onto the
 * free-id stack, from which later interns take ids before growing `count`. So:
 *  - an id is recycled only after a sweep found no holder marking it, and a sweep happens
 *    only when no batch is in flight (batches of the ended batch time are all released;
 *    ids a structure keeps are marked by that structure);
 *  - ids interned before the first batch (expression literals, kernels' string constants)
 *    and those pinned with dict_pin are never reclaimed;
 *  - caches of id lookups outside the dictionary (parsers' string -> id caches, the
 *    generator's key ids) compare dict_generation, which changes at every sweep that frees
 *    something, and drop their entries when it did.
 * dict_size stays the high-water mark of ids (the dense key domain of keyed kernels), which
 * with recycling follows the peak of live strings, not the strings ever seen.
 * Cost: dict_intern of a present string is one XXH3 hash and a shared-lock probe; a new string
 * adds an exclusive-lock insert and, rarely, an O(size) index doubling. A sweep is O(ids
 * below the high-water mark); core/reclaim.c runs one only after as many new strings as were
 * live after the previous one (at least DICT_SWEEP_MIN), so its cost is O(1) amortised per
 * new string and the entries held stay below twice the peak live set plus DICT_SWEEP_MIN. */
#include "batch/batch_int.h"

#include <pthread.h>
#include <string.h>
#include <xxhash.h>

enum {
    DICT_SEG0_LOG = 10,
    DICT_SEG0 = 1 << DICT_SEG0_LOG,
    DICT_SEGS = 33 - DICT_SEG0_LOG, /* covers ids up to 2^32 - 1 */
    DICT_CHUNK = 64 * 1024,         /* slots of the size classes are carved from chunks */
    DICT_CLASSES = 11,              /* slot sizes 16 << c, c < DICT_CLASSES: up to 16 KiB */
    DICT_BIG = 16 << (DICT_CLASSES - 1),
};

#define DICT_PINNED UINT32_MAX /* entry.mark of an entry never reclaimed */

typedef struct dict_entry {
    const char *s; /* NULL: free id */
    uint32_t len;
    uint32_t mark; /* epoch of the last mark, or DICT_PINNED */
} dict_entry;

typedef struct dict_slot {
    uint32_t id; /* UINT32_MAX: empty */
    uint32_t h;  /* low 32 bits of the hash; also picks the home slot */
} dict_slot;

typedef struct dict_chunk {
    struct dict_chunk *next;
    size_t size, used;
    _Alignas(16) char data[];
} dict_chunk;

typedef struct dict_free_slot {
    struct dict_free_slot *next;
} dict_free_slot;

struct sp_dict {
    const sp_allocator *alloc;
    pthread_rwlock_t lock;
    _Atomic(dict_entry *) seg[DICT_SEGS];
    atomic_uint count; /* high-water mark of ids */
    dict_slot *index;
    size_t mask; /* index has mask + 1 slots */
    dict_chunk *chunks;
    dict_free_slot *freeslot[DICT_CLASSES];
    uint32_t *freeid; /* recycled ids, a stack */
    size_t nfreeid, freeid_cap;
    uint32_t live;  /* ids in use */
    uint32_t epoch; /* current mark epoch (starts at 1) */
    uint32_t live_after_sweep;
    uint32_t added_since_sweep;
    uint64_t generation; /* sweeps that freed something */
    uint64_t reclaimed;  /* entries freed, in total */
    size_t bytes;        /* strings, entries and index, under the lock */
};

static dict_slot *dict_index_new(const sp_allocator *a, size_t n)
{
    dict_slot *ix = mem_alloc(a, n * sizeof *ix);
    if (ix)
        for (size_t i = 0; i < n; i++)
            ix[i].id = UINT32_MAX;
    return ix;
}

int dict_new(const sp_allocator *a, sp_dict **out)
{
    *out = NULL;
    sp_dict *dict = mem_calloc(a, 1, sizeof *dict);
    if (!dict) return SP_ENOMEM;
    dict->alloc = a;
    dict->mask = 1023;
    dict->index = dict_index_new(a, dict->mask + 1);
    if (!dict->index) {
        mem_free(a, dict);
        return SP_ENOMEM;
    }
    if (pthread_rwlock_init(&dict->lock, NULL) != 0) {
        mem_free(a, dict->index);
        mem_free(a, dict);
        return SP_ENOMEM;
    }
    for (int k = 0; k < DICT_SEGS; k++)
        atomic_init(&dict->seg[k], NULL);
    atomic_init(&dict->count, 0);
    dict->epoch = 1;
    dict->bytes = (dict->mask + 1) * sizeof(dict_slot);
    *out = dict;
    return 0;
}

/* Segment and offset of an id: id + DICT_SEG0 has its top bit at DICT_SEG0_LOG + k. */
static void dict_locate(uint32_t id, int *k, size_t *off)
{
    uint64_t v = (uint64_t)id + DICT_SEG0;
    int top = 63 - __builtin_clzll(v);
    *k = top - DICT_SEG0_LOG;
    *off = (size_t)(v - ((uint64_t)1 << top));
}

/* The entry of an id below count (any thread; the segment exists). */
static dict_entry *dict_entry_of(const sp_dict *dict, uint32_t id)
{
    int k;
    size_t off;
    dict_locate(id, &k, &off);
    dict_entry *seg = atomic_load_explicit(&((sp_dict *)dict)->seg[k], memory_order_acquire);
    return seg ? &seg[off] : NULL;
}

/* Size class of a string of len bytes (plus its NUL), or -1 for a block of its own. */
static int dict_class(size_t len)
{
    size_t need = len + 1;
    if (need > DICT_BIG) return -1;
    int c = 0;
    while ((size_t)16 << c < need)
        c++;
    return c;
}

void dict_free(sp_dict *dict)
{
    if (!dict) return;
    const sp_allocator *a = dict->alloc;
    uint32_t n = atomic_load_explicit(&dict->count, memory_order_relaxed);
    for (uint32_t id = 0; id < n; id++) {
        dict_entry *e = dict_entry_of(dict, id);
        if (e && e->s && dict_class(e->len) < 0) mem_free(a, (void *)e->s);
    }
    for (int k = 0; k < DICT_SEGS; k++)
        mem_free(a, atomic_load_explicit(&dict->seg[k], memory_order_relaxed));
    for (dict_chunk *c = dict->chunks, *next; c; c = next) {
        next = c->next;
        mem_free(a, c);
    }
    mem_free(a, dict->freeid);
    mem_free(a, dict->index);
    pthread_rwlock_destroy(&dict->lock);
    mem_free(a, dict);
}

const char *dict_get(const sp_dict *dict, uint32_t id, size_t *len)
{
    if (id >= atomic_load_explicit(&((sp_dict *)dict)->count, memory_order_acquire)) {
        if (len) *len = 0;
        return NULL;
    }
    const dict_entry *e = dict_entry_of(dict, id);
    if (!e || !e->s) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = e->len;
    return e->s;
}

uint32_t dict_size(const sp_dict *dict)
{
    return atomic_load_explicit(&((sp_dict *)dict)->count, memory_order_acquire);
}

size_t dict_bytes(const sp_dict *dict)
{
    pthread_rwlock_rdlock(&((sp_dict *)dict)->lock);
    size_t n = dict->bytes;
    pthread_rwlock_unlock(&((sp_dict *)dict)->lock);
    return n;
}

/* Under (at least) the shared lock. */
static uint32_t dict_probe(const sp_dict *dict, const char *s, size_t len, uint32_t h)
{
    for (size_t i = h & dict->mask;; i = (i + 1) & dict->mask) {
        const dict_slot *sl = &dict->index[i];
        if (sl->id == UINT32_MAX) return UINT32_MAX;
        if (sl->h != h) continue;
        const dict_entry *e = dict_entry_of(dict, sl->id);
        if (e->len == len && (len == 0 || memcmp(e->s, s, len) == 0)) return sl->id;
    }
}

static uint32_t dict_hash(const char *s, size_t len)
{
    return (uint32_t)XXH3_64bits(s, len);
}

uint32_t dict_find(sp_dict *dict, const char *s, size_t len)
{
    uint32_t h = dict_hash(s, len);
    pthread_rwlock_rdlock(&dict->lock);
    uint32_t id = dict_probe(dict, s, len, h);
    pthread_rwlock_unlock(&dict->lock);
    return id;
}

/* Under the exclusive lock: a stable NUL-terminated copy of s, in a slot of its class (taken
 * from the class's free list, else carved from the current chunk) or a block of its own. */
static const char *dict_store(sp_dict *dict, const char *s, size_t len)
{
    int cl = dict_class(len);
    char *p;
    if (cl < 0) {
        if (!(p = mem_alloc(dict->alloc, len + 1))) return NULL;
        dict->bytes += len + 1;
    } else if (dict->freeslot[cl]) {
        p = (char *)dict->freeslot[cl];
        dict->freeslot[cl] = dict->freeslot[cl]->next;
    } else {
        size_t sz = (size_t)16 << cl;
        dict_chunk *c = dict->chunks;
        if (!c || c->size - c->used < sz) {
            dict_chunk *nc = mem_alloc(dict->alloc, sizeof *nc + DICT_CHUNK);
            if (!nc) return NULL;
            nc->size = DICT_CHUNK;
            nc->used = 0;
            nc->next = c;
            dict->chunks = nc;
            dict->bytes += sizeof *nc + DICT_CHUNK;
            c = nc;
        }
        p = c->data + c->used;
        c->used += sz;
    }
    if (len) memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

/* Under the exclusive lock: gives a string's storage back (its class's free list, or its
 * own block to the allocator). */
static void dict_unstore(sp_dict *dict, const char *p, size_t len)
{
    int cl = dict_class(len);
    if (cl < 0) {
        mem_free(dict->alloc, (void *)p);
        dict->bytes -= len + 1;
        return;
    }
    dict_free_slot *f = (dict_free_slot *)(void *)p;
    f->next = dict->freeslot[cl];
    dict->freeslot[cl] = f;
}

/* Under the exclusive lock: doubles the index. */
static int dict_grow(sp_dict *dict)
{
    size_t n = (dict->mask + 1) * 2;
    dict_slot *ix = dict_index_new(dict->alloc, n);
    if (!ix) return -1;
    for (size_t i = 0; i <= dict->mask; i++) {
        dict_slot sl = dict->index[i];
        if (sl.id == UINT32_MAX) continue;
        size_t j = sl.h & (n - 1);
        while (ix[j].id != UINT32_MAX)
            j = (j + 1) & (n - 1);
        ix[j] = sl;
    }
    mem_free(dict->alloc, dict->index);
    dict->bytes += (n / 2) * sizeof *ix;
    dict->index = ix;
    dict->mask = n - 1;
    return 0;
}

uint32_t dict_intern(sp_dict *dict, const char *s, size_t len)
{
    if (len >= UINT32_MAX) return UINT32_MAX;
    uint32_t h = dict_hash(s, len);
    pthread_rwlock_rdlock(&dict->lock);
    uint32_t id = dict_probe(dict, s, len, h);
    pthread_rwlock_unlock(&dict->lock);
    if (id != UINT32_MAX) return id;

    pthread_rwlock_wrlock(&dict->lock);
    id = dict_probe(dict, s, len, h); /* another thread may have added it meanwhile */
    if (id != UINT32_MAX) goto out;
    uint32_t n = atomic_load_explicit(&dict->count, memory_order_relaxed);
    int recycled = dict->nfreeid > 0;
    if (!recycled && n == UINT32_MAX - 1) goto out; /* id space exhausted: UINT32_MAX fails */
    if ((size_t)dict->live + 1 > (dict->mask + 1) / 2 && dict_grow(dict)) goto out;
    uint32_t nid = recycled ? dict->freeid[dict->nfreeid - 1] : n;
    int k;
    size_t off;
    dict_locate(nid, &k, &off);
    dict_entry *seg = atomic_load_explicit(&dict->seg[k], memory_order_relaxed);
    if (!seg) {
        size_t segn = (size_t)DICT_SEG0 << k;
        seg = mem_alloc(dict->alloc, segn * sizeof *seg);
        if (!seg) goto out;
        dict->bytes += segn * sizeof *seg;
        atomic_store_explicit(&dict->seg[k], seg, memory_order_release);
    }
    const char *copy = dict_store(dict, s, len);
    if (!copy) goto out;
    seg[off].s = copy;
    seg[off].len = (uint32_t)len;
    seg[off].mark = dict->epoch - 1; /* unmarked: a holder must mark it to keep it */
    size_t i = h & dict->mask;
    while (dict->index[i].id != UINT32_MAX)
        i = (i + 1) & dict->mask;
    dict->index[i].id = nid;
    dict->index[i].h = h;
    dict->live++;
    dict->added_since_sweep++;
    if (recycled)
        dict->nfreeid--;
    else
        atomic_store_explicit(&dict->count, n + 1, memory_order_release);
    id = nid;
out:
    pthread_rwlock_unlock(&dict->lock);
    return id;
}

/* ------------------------------------------------------------------------------- reclaim */

uint32_t dict_live(const sp_dict *dict)
{
    pthread_rwlock_rdlock(&((sp_dict *)dict)->lock);
    uint32_t n = dict->live;
    pthread_rwlock_unlock(&((sp_dict *)dict)->lock);
    return n;
}

uint64_t dict_generation(const sp_dict *dict)
{
    return __atomic_load_n(&dict->generation, __ATOMIC_ACQUIRE);
}

uint64_t dict_reclaimed(const sp_dict *dict)
{
    return dict->reclaimed;
}

int dict_sweep_due(const sp_dict *dict, uint32_t min_new)
{
    uint32_t want = dict->live_after_sweep > min_new ? dict->live_after_sweep : min_new;
    return dict->added_since_sweep >= want;
}

void dict_mark_begin(sp_dict *dict)
{
    dict->epoch++;
    if (dict->epoch == DICT_PINNED) dict->epoch = 1; /* wrapped: harmless, marks restart */
}

void dict_mark(sp_dict *dict, uint32_t id)
{
    if (id >= atomic_load_explicit(&dict->count, memory_order_relaxed)) return;
    dict_entry *e = dict_entry_of(dict, id);
    if (e && e->s && e->mark != DICT_PINNED) e->mark = dict->epoch;
}

void dict_mark_ids(sp_dict *dict, const uint32_t *ids, size_t n)
{
    uint32_t count = atomic_load_explicit(&dict->count, memory_order_relaxed);
    uint32_t ep = dict->epoch;
    for (size_t i = 0; i < n; i++) {
        uint32_t id = ids[i];
        if (id >= count) continue;
        dict_entry *e = dict_entry_of(dict, id);
        if (e->s && e->mark != DICT_PINNED) e->mark = ep;
    }
}

void dict_pin(sp_dict *dict, uint32_t id)
{
    if (id >= atomic_load_explicit(&dict->count, memory_order_relaxed)) return;
    dict_entry *e = dict_entry_of(dict, id);
    if (e && e->s) e->mark = DICT_PINNED;
}

void dict_pin_all(sp_dict *dict)
{
    pthread_rwlock_wrlock(&dict->lock);
    uint32_t n = atomic_load_explicit(&dict->count, memory_order_relaxed);
    for (uint32_t id = 0; id < n; id++) {
        dict_entry *e = dict_entry_of(dict, id);
        if (e->s) e->mark = DICT_PINNED;
    }
    pthread_rwlock_unlock(&dict->lock);
}

/* Under the exclusive lock: deletes id's index slot (backward-shift deletion: entries after it
 * in its probe run move up so that no lookup stops early). */
static void dict_index_del(sp_dict *dict, uint32_t id, uint32_t h)
{
    size_t mask = dict->mask, i = h & mask;
    while (dict->index[i].id != id)
        i = (i + 1) & mask;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (dict->index[j].id == UINT32_MAX) break;
        size_t home = dict->index[j].h & mask;
        /* j's entry may move to the hole at i unless its home lies cyclically in (i, j]. */
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays) continue;
        dict->index[i] = dict->index[j];
        i = j;
    }
    dict->index[i].id = UINT32_MAX;
}

uint32_t dict_sweep(sp_dict *dict)
{
    pthread_rwlock_wrlock(&dict->lock);
    uint32_t n = atomic_load_explicit(&dict->count, memory_order_relaxed);
    if (dict->freeid_cap < n) {
        size_t cap = dict->freeid_cap ? dict->freeid_cap : 1024;
        while (cap < n)
            cap *= 2;
        uint32_t *f = mem_realloc(dict->alloc, dict->freeid, cap * sizeof *f);
        if (!f) { /* frees nothing this time; the next sweep retries */
            pthread_rwlock_unlock(&dict->lock);
            return 0;
        }
        dict->bytes += (cap - dict->freeid_cap) * sizeof *f;
        dict->freeid = f;
        dict->freeid_cap = cap;
    }
    /* Descending, so that the stack (which gets every free id again) pops low ids first, and
     * the free ids at the top of the range lower the high-water mark instead. */
    uint32_t freed = 0, top = n;
    dict->nfreeid = 0;
    for (uint32_t id = n; id-- > 0;) {
        dict_entry *e = dict_entry_of(dict, id);
        if (e->s && e->mark != DICT_PINNED && e->mark != dict->epoch) {
            dict_index_del(dict, id, dict_hash(e->s, e->len));
            dict_unstore(dict, e->s, e->len);
            e->s = NULL;
            e->len = 0;
            dict->live--;
            freed++;
        }
        if (!e->s) {
            if (id + 1 == top)
                top = id;
            else
                dict->freeid[dict->nfreeid++] = id;
        }
    }
    atomic_store_explicit(&dict->count, top, memory_order_release);
    dict->live_after_sweep = dict->live;
    dict->added_since_sweep = 0;
    dict->reclaimed += freed;
    if (freed) __atomic_add_fetch(&dict->generation, 1, __ATOMIC_RELEASE);
    pthread_rwlock_unlock(&dict->lock);
    return freed;
}
