/* fuzz_script.c — job scripts (host/script): the lexer and parser (script_load), then the type
 * checker and compiler (script_build into a context that is never started: no device, no
 * threads, nothing read or written but what declaring a job does). Contract checked: a script
 * that fails gives a message on the error stream naming "fuzz.spate:" and ending with a
 * newline (SP_ENOMEM excepted).
 *
 * Declaring a job opens files: queueStream reads its file to infer a type and saveCsv or
 * saveJsonl create theirs. So script_build runs inside a private directory that holds only
 * two inputs, "q" (a queueStream file of (str,i64) records) and "x" (text lines), and is
 * emptied and refilled after each input; it runs only for inputs that cannot name a path outside it
 * (no '/' anywhere, no \u escape that could make one). Literals out of range and nesting past
 * SP_EXPR_MAX_DEPTH are errors at their place, so nothing else is filtered. */
#include "script/script_int.h"

#include "fuzz.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

static struct {
    char dir[64];
    int home; /* the working directory to come back to */
    FILE *null;
} g;

/* Empties the directory open as fd (recursively). */
static void empty_dir(int fd)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0) continue;
        int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        if (sub >= 0) empty_dir(sub);
        unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
    }
    closedir(d);
}

/* The inputs scripts may name: a queueStream file of (str,i64) records and a text file. */
static void fill_dir(void)
{
    static const char *const files[][2] = {{"q", "[[\"a\",1],[\"b\",2]]\n[]\n"},
                                           {"x", "a b\nc d e\n"}};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        FILE *f = fopen(files[i][0], "wb");
        FZ_CHECK(f && fputs(files[i][1], f) >= 0 && fclose(f) == 0, "writing %s", files[i][0]);
    }
}

static void cleanup(void)
{
    int fd = open(g.dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) empty_dir(fd);
    rmdir(g.dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(g.dir, sizeof g.dir, "%s/spate-fuzz-XXXXXX", tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    FZ_CHECK(mkdtemp(g.dir) != NULL, "mkdtemp %s", g.dir);
    g.home = open(".", O_RDONLY | O_DIRECTORY);
    g.null = fopen("/dev/null", "w");
    FZ_CHECK(g.home >= 0 && g.null, "opening . and /dev/null");
    atexit(cleanup);
    FZ_CHECK(chdir(g.dir) == 0, "chdir %s", g.dir);
    fill_dir();
    FZ_CHECK(fchdir(g.home) == 0, "fchdir");
    return 0;
}

/* 1 when the script may be declared in the sandbox (see the comment at the top). */
static int buildable(const char *s)
{
    return !strchr(s, '/') && !strstr(s, "\\u");
}

/* The error stream's text after a failure: "fuzz.spate:..." lines ending with '\n'. */
static void check_message(int rc, const char *msg, size_t len)
{
    if (rc == SP_ENOMEM) return;
    FZ_CHECK(len > 0, "status %d without a message", rc);
    FZ_CHECK(strncmp(msg, "fuzz.spate:", 11) == 0, "message without the file name: %s", msg);
    FZ_CHECK(msg[len - 1] == '\n', "message without a newline: %s", msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    char *text = malloc(size + 1);
    FZ_CHECK(text != NULL, "out of memory");
    memcpy(text, data, size);
    text[size] = 0; /* a NUL inside ends the script, as it ends a C string */
    char *msg = NULL;
    size_t len = 0;
    FILE *err = open_memstream(&msg, &len);
    FZ_CHECK(err != NULL, "open_memstream");
    FZ_CHECK(chdir(g.dir) == 0, "chdir %s", g.dir);
    script *sc = NULL;
    sp_context *ctx = NULL;
    int rc = script_load("fuzz.spate", NULL, text, err, &sc);
    fflush(err);
    if (rc) {
        check_message(rc, msg, len);
    } else if (buildable(text)) {
        sp_config cfg;
        sp_config_init(&cfg);
        cfg.log = g.null;
        cfg.out = g.null;
        if (script_batch_ms(sc) > 0) cfg.batch_ms = script_batch_ms(sc);
        FZ_CHECK(sp_context_new(&cfg, &ctx) == 0, "sp_context_new");
        rc = script_build(sc, ctx, err);
        fflush(err);
        if (rc) check_message(rc, msg, len);
    }
    sp_context_free(ctx);
    script_free(sc);
    fclose(err);
    free(msg);
    free(text);
    empty_dir(open(".", O_RDONLY | O_DIRECTORY));
    fill_dir();
    FZ_CHECK(fchdir(g.home) == 0, "fchdir");
    return 0;
}
