/* dict.c — the stream-lifetime string dictionary.
 *
 * Invariants that make dict_get lock-free:
 *  - String bytes live in chunks that never move or shrink until dict_free.
 *  - The id -> entry table is a fixed array of DICT_SEGS segment pointers; segment k holds
 *    DICT_SEG0 << k entries and is allocated once, never reallocated. An entry and its segment
 *    pointer are written (release) before the id is published (the count, and the return of
 *    dict_intern), so a reader holding an id sees a complete entry.
 *  - The hash index (open addressing, linear probing, load <= 1/2) is only touched under
 *    the rwlock: lookups share it, inserts take it exclusively.
 * Cost: dict_intern of a present string is one XXH3 hash and a shared-lock probe; a new string
 * adds an exclusive-lock insert and, rarely, an O(size) index doubling. */
#include "batch/batch_int.h"

#include <pthread.h>
#include <string.h>
#include <xxhash.h>

enum {
    DICT_SEG0_LOG = 10,
    DICT_SEG0 = 1 << DICT_SEG0_LOG,
    DICT_SEGS = 33 - DICT_SEG0_LOG, /* covers ids up to 2^32 - 1 */
    DICT_CHUNK = 64 * 1024,         /* string chunk; longer strings get their own block */
};

typedef struct dict_entry {
    const char *s;
    size_t len;
} dict_entry;

typedef struct dict_slot {
    uint32_t id; /* UINT32_MAX: empty */
    uint32_t h;  /* low 32 bits of the hash; also picks the home slot */
} dict_slot;

typedef struct dict_chunk {
    struct dict_chunk *next;
    size_t size, used;
    char data[];
} dict_chunk;

struct sp_dict {
    const sp_allocator *alloc;
    pthread_rwlock_t lock;
    _Atomic(dict_entry *) seg[DICT_SEGS];
    atomic_uint count;
    dict_slot *index;
    size_t mask; /* index has mask + 1 slots */
    dict_chunk *chunks;
    size_t bytes; /* strings and index, under the lock */
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
    dict->bytes = (dict->mask + 1) * sizeof(dict_slot);
    *out = dict;
    return 0;
}

void dict_free(sp_dict *dict)
{
    if (!dict) return;
    const sp_allocator *a = dict->alloc;
    for (int k = 0; k < DICT_SEGS; k++)
        mem_free(a, atomic_load_explicit(&dict->seg[k], memory_order_relaxed));
    for (dict_chunk *c = dict->chunks, *next; c; c = next) {
        next = c->next;
        mem_free(a, c);
    }
    mem_free(a, dict->index);
    pthread_rwlock_destroy(&dict->lock);
    mem_free(a, dict);
}

/* Segment and offset of an id: id + DICT_SEG0 has its top bit at DICT_SEG0_LOG + k. */
static void dict_locate(uint32_t id, int *k, size_t *off)
{
    uint64_t v = (uint64_t)id + DICT_SEG0;
    int top = 63 - __builtin_clzll(v);
    *k = top - DICT_SEG0_LOG;
    *off = (size_t)(v - ((uint64_t)1 << top));
}

const char *dict_get(const sp_dict *dict, uint32_t id, size_t *len)
{
    int k;
    size_t off;
    dict_locate(id, &k, &off);
    /* The cast drops const only for the atomic load, which C11 does not allow on const. */
    dict_entry *seg = atomic_load_explicit(&((sp_dict *)dict)->seg[k], memory_order_acquire);
    if (!seg || id >= atomic_load_explicit(&((sp_dict *)dict)->count, memory_order_acquire)) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = seg[off].len;
    return seg[off].s;
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
        size_t el;
        const char *es = dict_get(dict, sl->id, &el);
        if (el == len && (len == 0 || memcmp(es, s, len) == 0)) return sl->id;
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

/* Under the exclusive lock: a stable NUL-terminated copy of s. */
static const char *dict_store(sp_dict *dict, const char *s, size_t len)
{
    size_t need = len + 1;
    dict_chunk *c = dict->chunks;
    if (!c || c->size - c->used < need) {
        size_t size = need > DICT_CHUNK / 4 ? need : DICT_CHUNK;
        dict_chunk *nc = mem_alloc(dict->alloc, sizeof *nc + size);
        if (!nc) return NULL;
        nc->size = size;
        nc->used = 0;
        dict->bytes += sizeof *nc + size;
        if (c && size != DICT_CHUNK) {
            /* A private block for a long string: keep the current chunk at the head. */
            nc->next = c->next;
            c->next = nc;
        } else {
            nc->next = c;
            dict->chunks = nc;
        }
        c = nc;
    }
    char *p = c->data + c->used;
    if (len) memcpy(p, s, len);
    p[len] = '\0';
    c->used += need;
    return p;
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
    uint32_t h = dict_hash(s, len);
    pthread_rwlock_rdlock(&dict->lock);
    uint32_t id = dict_probe(dict, s, len, h);
    pthread_rwlock_unlock(&dict->lock);
    if (id != UINT32_MAX) return id;

    pthread_rwlock_wrlock(&dict->lock);
    id = dict_probe(dict, s, len, h); /* another thread may have added it meanwhile */
    if (id != UINT32_MAX) goto out;
    uint32_t n = atomic_load_explicit(&dict->count, memory_order_relaxed);
    if (n == UINT32_MAX - 1) goto out; /* id space exhausted: UINT32_MAX is the failure value */
    if ((size_t)n + 1 > (dict->mask + 1) / 2 && dict_grow(dict)) goto out;
    int k;
    size_t off;
    dict_locate(n, &k, &off);
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
    seg[off].len = len;
    size_t i = h & dict->mask;
    while (dict->index[i].id != UINT32_MAX)
        i = (i + 1) & dict->mask;
    dict->index[i].id = n;
    dict->index[i].h = h;
    atomic_store_explicit(&dict->count, n + 1, memory_order_release);
    id = n;
out:
    pthread_rwlock_unlock(&dict->lock);
    return id;
}
