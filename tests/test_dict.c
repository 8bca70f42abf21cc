/* layers: util device exec batch */
#include "batch/batch_int.h"
#include "support/testutil.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { NSTR = 100000 };

typedef struct strset {
    char **s;
    size_t *len;
} strset;

/* NSTR random strings, fixed seed, lengths 0..40 (with duplicates by construction: short
 * strings over a small alphabet repeat). Binary bytes included. */
static strset make_strings(void)
{
    strset ss = {calloc(NSTR, sizeof(char *)), calloc(NSTR, sizeof(size_t))};
    uint64_t rng = 12345;
    for (int i = 0; i < NSTR; i++) {
        size_t len = tu_rand_below(&rng, 41);
        if (i % 7 == 0) len = tu_rand_below(&rng, 3);
        ss.s[i] = malloc(len + 1);
        for (size_t k = 0; k < len; k++)
            ss.s[i][k] =
                (char)(i % 11 == 0 ? tu_rand_below(&rng, 256) : 'a' + tu_rand_below(&rng, 4));
        ss.s[i][len] = '\0';
        ss.len[i] = len;
    }
    return ss;
}

static void free_strings(strset ss)
{
    for (int i = 0; i < NSTR; i++)
        free(ss.s[i]);
    free(ss.s);
    free(ss.len);
}

typedef struct job {
    sp_dict *dict;
    strset ss;
    uint32_t *ids;
    int reverse;
} job;

static void *intern_all(void *arg)
{
    job *j = arg;
    for (int k = 0; k < NSTR; k++) {
        int i = j->reverse ? NSTR - 1 - k : k;
        j->ids[i] = dict_intern(j->dict, j->ss.s[i], j->ss.len[i]);
        /* Lock-free read of an id another thread may have just added. */
        size_t len;
        const char *s = dict_get(j->dict, j->ids[i], &len);
        if (!s || len != j->ss.len[i] || memcmp(s, j->ss.s[i], len) != 0)
            j->ids[i] = UINT32_MAX - 1;
    }
    return NULL;
}

static void test_concurrent_intern(void **state)
{
    (void)state;
    strset ss = make_strings();
    sp_dict *dict;
    assert_int_equal(dict_new(NULL, &dict), 0);
    job jobs[2] = {{dict, ss, calloc(NSTR, 4), 0}, {dict, ss, calloc(NSTR, 4), 1}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, intern_all, &jobs[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    uint32_t n = dict_size(dict);
    assert_true(n > 1000 && n < NSTR);
    char *seen = calloc(n, 1);
    for (int i = 0; i < NSTR; i++) {
        assert_int_equal(jobs[0].ids[i], jobs[1].ids[i]);
        uint32_t id = jobs[0].ids[i];
        assert_true(id < n); /* dense */
        seen[id] = 1;
        size_t len;
        const char *s = dict_get(dict, id, &len);
        assert_int_equal(len, ss.len[i]);
        assert_memory_equal(s, ss.s[i], len);
        assert_int_equal(s[len], '\0');
        assert_int_equal(dict_find(dict, ss.s[i], ss.len[i]), id);
    }
    for (uint32_t id = 0; id < n; id++)
        assert_true(seen[id]); /* every id 0..n-1 used */
    /* Same string, same id: distinct ids have distinct strings. */
    for (uint32_t id = 1; id < n; id++) {
        size_t la, lb;
        const char *a = dict_get(dict, id - 1, &la), *b = dict_get(dict, id, &lb);
        assert_false(la == lb && memcmp(a, b, la) == 0);
    }
    assert_true(dict_bytes(dict) > 0);
    free(seen);
    free(jobs[0].ids);
    free(jobs[1].ids);
    dict_free(dict);
    free_strings(ss);
}

static void test_basics(void **state)
{
    (void)state;
    sp_dict *dict;
    assert_int_equal(dict_new(NULL, &dict), 0);
    assert_int_equal(dict_size(dict), 0);
    assert_int_equal(dict_find(dict, "", 0), UINT32_MAX);
    assert_int_equal(dict_find(dict, "a", 1), UINT32_MAX);
    uint32_t e = dict_intern(dict, "", 0);
    assert_int_equal(e, 0);
    assert_int_equal(dict_intern(dict, "a", 1), 1);
    assert_int_equal(dict_intern(dict, "", 0), 0);
    assert_int_equal(dict_find(dict, "", 0), 0);
    size_t len = 99;
    assert_string_equal(dict_get(dict, e, &len), "");
    assert_int_equal(len, 0);
    /* Embedded NUL and a prefix are different keys. */
    assert_int_equal(dict_intern(dict, "a\0b", 3), 2);
    assert_int_equal(dict_intern(dict, "ab", 2), 3);
    assert_int_equal(dict_find(dict, "a\0b", 3), 2);
    /* Not NUL-terminated input. */
    assert_int_equal(dict_intern(dict, "abc", 2), 3);
    /* A long string (bigger than a chunk) is stored and found. */
    size_t big = 200000;
    char *s = malloc(big);
    memset(s, 'x', big);
    uint32_t id = dict_intern(dict, s, big);
    assert_int_equal(id, 4);
    const char *g = dict_get(dict, id, &len);
    assert_int_equal(len, big);
    assert_memory_equal(g, s, big);
    assert_int_equal(dict_intern(dict, "after", 5), 5);
    assert_int_equal(dict_find(dict, s, big), 4);
    assert_int_equal(dict_size(dict), 6);
    assert_null(dict_get(dict, 6, &len));
    free(s);
    dict_free(dict);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basics),
        cmocka_unit_test(test_concurrent_intern),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
