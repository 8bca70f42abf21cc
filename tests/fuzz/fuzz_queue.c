/* fuzz_queue.c — queueStream's JSON-lines reader (host/io/queue.c). The input's first byte picks
 * the element type (one of `types`, or inference from the file); the rest is the file, held in
 * memory (a memfd, opened by queue.c through /proc/self/fd). The source is run batch by batch as
 * the driver runs it. Contract checked: batch k reads line k (lines end at '\n'; a last line
 * without one counts; an empty file is one empty batch), so the run ends exactly at the last line
 * unless a batch fails; a failing batch's message names "queueStream PATH:k:"; construction errors
 * name the path; every batch goes back to the arena (no live bytes after the run). */
#include "io/io_int.h"

#include "fuzz.h"

#include <sys/mman.h>
#include <unistd.h>

static const sp_allocator alloc = {NULL, NULL};

static const char *const types[] = {
    NULL,
    "(str,i64)",
    "i64",
    "str",
    "(str,(i64,f64))",
    "Option[i64]",
    "List[str]",
    "(bool,Option[List[f64]],ts)",
    "(i32,f32)",
    "List[(str,Option[i32])]",
};

static struct {
    sp_topo *topo;
    sp_arena *arena;
    int fd;
    char path[64];
} g;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    sp_diag d;
    diag_clear(&d);
    topo_opts o = {0};
    o.synthetic = "pack:1 numa:1 core:2 pu:1";
    FZ_CHECK(topo_open(&o, &g.topo, &d) == 0, "%s", d.msg);
    FZ_CHECK(arena_new(g.topo, 0, 0, NULL, &g.arena, &d) == 0, "%s", d.msg);
    g.fd = memfd_create("queue.jsonl", 0);
    FZ_CHECK(g.fd >= 0, "memfd_create");
    snprintf(g.path, sizeof g.path, "/proc/self/fd/%d", g.fd);
    return 0;
}

/* Lines of the file as queue.c counts them. */
static long count_lines(const char *s, size_t n)
{
    long k = 0;
    for (size_t i = 0; i < n; i++)
        k += s[i] == '\n';
    return k + (n && s[n - 1] != '\n');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    const char *type = types[data[0] % (sizeof types / sizeof *types)];
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    FZ_CHECK(ftruncate(g.fd, 0) == 0 && pwrite(g.fd, text, n, 0) == (ssize_t)n, "writing %s",
             g.path);
    long lines = count_lines(text, n);

    sp_dict *dict = NULL;
    FZ_CHECK(dict_new(NULL, &dict) == 0, "out of memory");
    sp_arena *arenas[1] = {g.arena};
    batch_env env = {&alloc, dict, arenas, 1};
    sp_diag d;
    diag_clear(&d);
    sp_source *s = NULL;
    int rc = source_queue_new(&env, g.path, type, &s, &d);
    if (rc) {
        FZ_CHECK(strstr(d.msg, g.path) != NULL, "message without the path: %s", d.msg);
        FZ_CHECK(type == NULL, "construction with type %s failed: %s", type, d.msg);
        goto out;
    }
    FZ_CHECK(s->vt->start(s, &d) == 0, "start: %s", d.msg);
    char want[160];
    for (long k = 1;; k++) {
        FZ_CHECK(k <= (lines ? lines : 1), "batch %ld of a file of %ld lines", k, lines);
        sp_batch *b = NULL;
        FZ_CHECK(batch_new(&env, s->td, k * 1000, &b, &d) == 0, "%s", d.msg);
        int done = -1;
        rc = s->vt->next(s, k * 1000, b, &done, &d);
        batch_release(b);
        if (rc) {
            snprintf(want, sizeof want, "queueStream %s:%ld:", g.path, k);
            FZ_CHECK(strstr(d.msg, want) != NULL, "batch %ld: message without %s: %s", k, want,
                     d.msg);
            break;
        }
        FZ_CHECK(done == 0 || done == 1, "done %d", done);
        if (done) {
            FZ_CHECK(k == (lines ? lines : 1), "done after %ld batches of %ld lines", k, lines);
            break;
        }
    }
out:
    source_free(s);
    dict_free(dict);
    arena_stats st;
    arena_get_stats(g.arena, &st);
    FZ_CHECK(st.live_bytes == 0, "%zu bytes of batches not released", st.live_bytes);
    return 0;
}
