/* receiver.c — live line sources: socketTextStream (TCP client) and lines from a file
 * descriptor (stdin). A receiver thread reads into its line cutter (lines_cut, as file
 * sources do), cuts complete lines (dropping the '\r' of CRLF) and appends them to the ingest
 * buffer: a byte ring of '\n'-terminated lines bounded by `limit` bytes. When the ring is full
 * the receiver blocks (back-pressure: the peer's writes then block in the kernel), it never
 * drops a line it keeps. A line longer than the limit is let in alone, into an empty ring.
 * The partial line being read counts against the limit too: the receiver reads on only while
 * the ring, the partial line and one read fit in it (or the ring is empty). A line longer
 * than the source's line_max is not kept: the cutter drops it as it arrives, and its number
 * and first bytes are queued as a reject; the lines after it flow on. next() moves lines from
 * the ring into the batch's raw-text column under the lock, reports the queued rejects
 * ("host:port:LINE"), and wakes the receiver.
 *
 * Stopping never hangs: the receiver waits in poll() on its input and on a wake-up pipe, and
 * in pthread_cond_wait only for space, which stop() also signals. */
#include "io/lines_int.h"
#include "io/source_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RCV_READ ((size_t)64 << 10)
#define RCV_LIMIT_DEFAULT ((size_t)64 << 20)
#define RCV_REJ_MAX 1024 /* overlong lines queued for next() before the receiver waits */

typedef struct rcv {
    const sp_allocator *alloc;
    char *place; /* "host:port" or the descriptor's name, for messages */
    char *host;  /* socket: host to connect to; NULL for a descriptor */
    int port;
    int fd;      /* input; -1 before start */
    int own_fd;  /* 1: close fd at stop (socket) */
    int wake[2]; /* stop() writes to wake[1]; the receiver polls wake[0] */
    pthread_t thread;
    int running; /* thread started and not yet joined */
    size_t batch_lines;

    pthread_mutex_t mu;   /* guards everything below */
    pthread_cond_t space; /* the receiver waits for room in the ring */
    pthread_cond_t data;  /* next() waits for batch_lines lines */
    char *ring;
    size_t head, tail, alloc_bytes; /* lines live in ring[head, tail) */
    size_t lines;
    size_t limit;
    int eof; /* the receiver has ended: input closed, error, or stop */
    int stopping;
    int err;         /* errno of a failed read or allocation, 0 if none */
    lines_over *rej; /* overlong lines not yet reported (RCV_REJ_MAX) */
    size_t nrej;

    /* Receiver-private: bytes read and not yet cut into lines, and the lines cut from one
     * read, '\n'-terminated, on their way to the ring. */
    lines_cut cut;
    char *stage;
    size_t slen, scap;
} rcv;

static const source_vt socket_vt;
static const source_vt fd_vt;

static size_t rcv_count_lines(const char *p, size_t n)
{
    size_t k = 0;
    const char *end = p + n;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p)))) {
        k++;
        p++;
    }
    return k;
}

/* Appends p[0, m), complete lines, to the ring, waiting for room. 0, 1 when stopping, or
 * ENOMEM. */
static int rcv_push(rcv *r, const char *p, size_t m)
{
    int rc = 0;
    pthread_mutex_lock(&r->mu);
    while (m > 0) {
        size_t take = 0;
        while (!r->stopping) {
            size_t used = r->tail - r->head;
            if (used + m <= r->limit) {
                take = m;
                break;
            }
            if (used < r->limit) { /* the whole lines that fit */
                const char *q = memrchr(p, '\n', r->limit - used);
                if (q) {
                    take = (size_t)(q - p) + 1;
                    break;
                }
            }
            if (used == 0) { /* one line longer than the limit: alone */
                take = (size_t)((const char *)memchr(p, '\n', m) - p) + 1;
                break;
            }
            pthread_cond_wait(&r->space, &r->mu);
        }
        if (r->stopping) {
            rc = 1;
            break;
        }
        if (r->tail + take > r->alloc_bytes && r->head) {
            memmove(r->ring, r->ring + r->head, r->tail - r->head);
            r->tail -= r->head;
            r->head = 0;
        }
        if (r->tail + take > r->alloc_bytes) {
            size_t nc = r->alloc_bytes ? r->alloc_bytes * 2 : RCV_READ * 4;
            while (nc < r->tail + take)
                nc *= 2;
            char *nr = mem_realloc(r->alloc, r->ring, nc);
            if (!nr) {
                rc = ENOMEM;
                break;
            }
            r->ring = nr;
            r->alloc_bytes = nc;
        }
        memcpy(r->ring + r->tail, p, take);
        r->tail += take;
        r->lines += rcv_count_lines(p, take);
        p += take;
        m -= take;
        pthread_cond_signal(&r->data);
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

/* Queues an overlong line for next() to report, waiting while the queue is full. 0, or 1
 * when stopping. */
static int rcv_push_reject(rcv *r, const lines_over *o)
{
    pthread_mutex_lock(&r->mu);
    while (!r->stopping && r->nrej == RCV_REJ_MAX)
        pthread_cond_wait(&r->space, &r->mu);
    int stop = r->stopping;
    if (!stop) {
        r->rej[r->nrej++] = *o;
        pthread_cond_signal(&r->data);
    }
    pthread_mutex_unlock(&r->mu);
    return stop;
}

/* Cuts what the cutter holds into lines: kept ones are staged and pushed to the ring, overlong
 * ones queued as rejects, in input order. 0, 1 when stopping, or ENOMEM. */
static int rcv_cut(rcv *r, int eof)
{
    int rc = 0;
    r->slen = 0;
    for (;;) {
        const char *p;
        size_t n;
        int k = lines_cut_next(&r->cut, eof, &p, &n);
        if (k == LINES_NEED) break;
        if (k == LINES_LINE) {
            if (r->scap - r->slen < n + 1) {
                size_t nc = r->scap ? r->scap : RCV_READ;
                while (nc - r->slen < n + 1)
                    nc *= 2;
                char *ns = mem_realloc(r->alloc, r->stage, nc);
                if (!ns) return ENOMEM;
                r->stage = ns;
                r->scap = nc;
            }
            memcpy(r->stage + r->slen, p, n);
            r->slen += n;
            r->stage[r->slen++] = '\n';
            continue;
        }
        if (r->slen && (rc = rcv_push(r, r->stage, r->slen))) return rc;
        r->slen = 0;
        if ((rc = rcv_push_reject(r, &r->cut.over))) return rc;
    }
    if (r->slen) rc = rcv_push(r, r->stage, r->slen);
    r->slen = 0;
    return rc;
}

/* Waits until the ring, the partial line and one more read fit in the limit (or the ring is
 * empty: the line cap then bounds the partial line). 0, or 1 when stopping. */
static int rcv_wait_bound(rcv *r)
{
    size_t part = lines_cut_pending(&r->cut);
    pthread_mutex_lock(&r->mu);
    while (!r->stopping && r->tail > r->head && r->tail - r->head + part + RCV_READ > r->limit)
        pthread_cond_wait(&r->space, &r->mu);
    int stop = r->stopping;
    pthread_mutex_unlock(&r->mu);
    return stop;
}

static void *rcv_main(void *arg)
{
    rcv *r = arg;
    int err = 0;
    for (;;) {
        if (rcv_wait_bound(r)) break;
        char *dst = lines_cut_room(&r->cut, RCV_READ);
        if (!dst) {
            err = ENOMEM;
            break;
        }
        struct pollfd pf[2] = {{.fd = r->fd, .events = POLLIN},
                               {.fd = r->wake[0], .events = POLLIN}};
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR) continue;
            err = errno;
            break;
        }
        if (pf[1].revents) break; /* stop() */
        ssize_t n = read(r->fd, dst, RCV_READ);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            err = errno;
            break;
        }
        /* n == 0 is the end of input: a last line without '\n' still counts. */
        lines_cut_commit(&r->cut, (size_t)n);
        int prc = rcv_cut(r, n == 0);
        if (prc == 1) break;
        if (prc) {
            err = prc;
            break;
        }
        if (n == 0) break;
    }
    pthread_mutex_lock(&r->mu);
    r->eof = 1;
    if (err && !r->stopping) r->err = err;
    pthread_cond_broadcast(&r->data);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static int rcv_launch(sp_source *s, sp_diag *d)
{
    rcv *r = s->impl;
    if (pipe2(r->wake, O_CLOEXEC) != 0) {
        r->wake[0] = r->wake[1] = -1;
        return diag_set(d, SP_EIO, "%s %s: pipe: %s", s->vt->kind, r->place, strerror(errno));
    }
    r->eof = r->stopping = r->err = 0;
    lines_cut_free(&r->cut);
    lines_cut_init(&r->cut, r->alloc, s->line_max);
    int e = pthread_create(&r->thread, NULL, rcv_main, r);
    if (e)
        return diag_set(d, SP_ERUNTIME, "%s %s: cannot start the receiver thread: %s", s->vt->kind,
                        r->place, strerror(e));
    r->running = 1;
    return 0;
}

static int rcv_next(sp_source *s, int64_t t, sp_batch *out, int *done, sp_diag *d)
{
    rcv *r = s->impl;
    sp_col *c = &out->cols[0];
    int rc;
    *done = 0;
    SP_CHECK(d, r->running || r->eof, SP_ESTATE, "%s %s: not started", s->vt->kind, r->place);
    if ((rc = source_col_raw(c, d))) return rc;
    pthread_mutex_lock(&r->mu);
    /* A batch is cut short by a stop request (checked every 50 ms: sp_context_stop may run in
     * a signal handler, so it cannot signal the condition), or when overlong lines fill the
     * reject queue meanwhile. */
    if (r->batch_lines)
        while (r->lines < r->batch_lines && !r->eof && r->nrej < RCV_REJ_MAX &&
               !(s->stop && atomic_load(s->stop))) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 50 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&r->data, &r->mu, &ts);
        }
    size_t k = r->lines;
    if (r->batch_lines && k > r->batch_lines) k = r->batch_lines;
    size_t bytes = r->tail - r->head; /* an upper bound for k lines */
    if (k && col_reserve(c, c->len + k, c->nbytes + bytes)) k = 0, rc = SP_ENOMEM;
    for (size_t i = 0; i < k; i++) {
        char *p = r->ring + r->head;
        char *nl = memchr(p, '\n', r->tail - r->head);
        if (col_push_text(c, p, (size_t)(nl - p))) {
            rc = SP_ENOMEM;
            break;
        }
        r->head += (size_t)(nl - p) + 1;
        r->lines--;
        out->n++;
    }
    if (r->head == r->tail) r->head = r->tail = 0;
    /* Overlong lines: reported under the lock (the receiver only waits for them when the
     * queue is full). */
    int rrc = SP_OK;
    for (size_t i = 0; i < r->nrej && !rrc; i++)
        rrc = source_reject_long(s, r->place, r->rej[i].line, r->rej[i].head, r->rej[i].nhead, d);
    r->nrej = 0;
    pthread_cond_broadcast(&r->space);
    int eof = r->eof, err = r->err;
    size_t left = r->lines;
    pthread_mutex_unlock(&r->mu);
    if (rc) return diag_set(d, rc, "%s %s: out of memory", s->vt->kind, r->place);
    if (rrc) return rrc;
    if (left == 0 && err)
        return diag_set(d, s->vt == &socket_vt ? SP_ECONN : SP_EIO, "%s %s: %s%s", s->vt->kind,
                        r->place,
                        s->vt == &socket_vt ? "connection lost: " : "read: ", strerror(err));
    *done = eof && left == 0;
    return source_seal(out, d);
}

static void rcv_stop(sp_source *s)
{
    rcv *r = s->impl;
    if (r->running) {
        pthread_mutex_lock(&r->mu);
        r->stopping = 1;
        pthread_cond_broadcast(&r->space);
        pthread_cond_broadcast(&r->data);
        pthread_mutex_unlock(&r->mu);
        ssize_t w;
        do
            w = write(r->wake[1], "x", 1);
        while (w < 0 && errno == EINTR);
        if (r->own_fd) shutdown(r->fd, SHUT_RDWR);
        pthread_join(r->thread, NULL);
        r->running = 0;
    }
    if (r->own_fd && r->fd >= 0) {
        close(r->fd);
        r->fd = -1;
    }
    for (int i = 0; i < 2; i++) {
        if (r->wake[i] >= 0) close(r->wake[i]);
        r->wake[i] = -1;
    }
}

static void rcv_destroy(sp_source *s)
{
    rcv *r = s->impl;
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->space);
    pthread_cond_destroy(&r->data);
    mem_free(r->alloc, r->ring);
    mem_free(r->alloc, r->rej);
    mem_free(r->alloc, r->stage);
    lines_cut_free(&r->cut);
    mem_free(r->alloc, r->place);
    mem_free(r->alloc, r->host);
    mem_free(r->alloc, r);
}

/* Spark's socket receiver retries a refused connection forever; we fail fast at start with
 * the host and port, which is what a batch job or a test wants to see. */
static int socket_start(sp_source *s, sp_diag *d)
{
    rcv *r = s->impl;
    SP_CHECK(d, !r->running && r->fd < 0, SP_ESTATE, "socketTextStream %s: already started",
             r->place);
    char port[16];
    snprintf(port, sizeof port, "%d", r->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    int e = getaddrinfo(r->host, port, &hints, &res);
    if (e) return diag_set(d, SP_ECONN, "socketTextStream %s: %s", r->place, gai_strerror(e));
    int err = ECONNREFUSED;
    for (ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            r->fd = fd;
            break;
        }
        err = errno;
        close(fd);
    }
    freeaddrinfo(res);
    if (r->fd < 0) return diag_set(d, SP_ECONN, "socketTextStream %s: %s", r->place, strerror(err));
    r->own_fd = 1;
    return rcv_launch(s, d);
}

static int fd_start(sp_source *s, sp_diag *d)
{
    rcv *r = s->impl;
    SP_CHECK(d, !r->running, SP_ESTATE, "fdStream %s: already started", r->place);
    return rcv_launch(s, d);
}

static const source_vt socket_vt = {"socketTextStream", socket_start, rcv_next, rcv_stop,
                                    rcv_destroy, NULL /* live: no replay */};
static const source_vt fd_vt = {"fdStream", fd_start, rcv_next, rcv_stop, rcv_destroy,
                                NULL /* live: no replay */};

static int rcv_new(batch_env *env, const source_vt *vt, const char *place, sp_source **out,
                   sp_diag *d)
{
    sp_source *s;
    int rc = source_alloc(env, vt, &s, d);
    if (rc) return rc;
    rcv *r = mem_calloc(env->alloc, 1, sizeof *r);
    if (!r) {
        source_free(s);
        return diag_set(d, SP_ENOMEM, "%s %s: out of memory", vt->kind, place);
    }
    r->alloc = env->alloc;
    r->fd = -1;
    r->wake[0] = r->wake[1] = -1;
    r->limit = RCV_LIMIT_DEFAULT;
    lines_cut_init(&r->cut, env->alloc, 0);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->space, NULL);
    pthread_cond_init(&r->data, NULL);
    s->impl = r;
    if (!(r->place = mem_strdup(env->alloc, place)) || !(s->td = td_leaf(env->alloc, SP_STR)) ||
        !(r->rej = mem_alloc(env->alloc, RCV_REJ_MAX * sizeof *r->rej))) {
        source_free(s);
        return diag_set(d, SP_ENOMEM, "%s %s: out of memory", vt->kind, place);
    }
    td_layout(s->td, 0);
    *out = s;
    return 0;
}

int source_socket_new(batch_env *env, const char *host, int port, sp_source **out, sp_diag *d)
{
    SP_CHECK(d, host && *host, SP_EINVAL, "socketTextStream: no host");
    SP_CHECK(d, port > 0 && port < 65536, SP_EINVAL, "socketTextStream %s:%d: bad port", host,
             port);
    char place[300];
    snprintf(place, sizeof place, "%s:%d", host, port);
    int rc = rcv_new(env, &socket_vt, place, out, d);
    if (rc) return rc;
    rcv *r = (*out)->impl;
    r->port = port;
    if (!(r->host = mem_strdup(env->alloc, host))) {
        source_free(*out);
        *out = NULL;
        return diag_set(d, SP_ENOMEM, "socketTextStream %s: out of memory", place);
    }
    return 0;
}

int source_fd_new(batch_env *env, int fd, const char *name, size_t batch_lines, sp_source **out,
                  sp_diag *d)
{
    SP_CHECK(d, fd >= 0, SP_EINVAL, "fdStream: bad descriptor %d", fd);
    char place[64];
    if (!name) snprintf(place, sizeof place, fd == 0 ? "stdin" : "fd %d", fd);
    int rc = rcv_new(env, &fd_vt, name ? name : place, out, d);
    if (rc) return rc;
    rcv *r = (*out)->impl;
    r->fd = fd;
    r->batch_lines = batch_lines;
    return 0;
}

int source_set_ingest_limit(sp_source *s, size_t bytes, sp_diag *d)
{
    SP_CHECK(d, s && (s->vt == &socket_vt || s->vt == &fd_vt), SP_EINVAL,
             "ingest limit: not a receiver source");
    SP_CHECK(d, bytes > 0, SP_EINVAL, "%s: ingest limit must be positive", s->vt->kind);
    rcv *r = s->impl;
    pthread_mutex_lock(&r->mu);
    r->limit = bytes;
    pthread_mutex_unlock(&r->mu);
    return 0;
}
