/* layers: util device exec */
/* test_topo.c — topology discovery on synthetic, XML and real topologies; NUMA memory;
 * binding; device locality. */
#include "exec/topo_int.h"
#include "support/testutil.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static sp_topo *open_synthetic(const char *desc)
{
    topo_opts o = {.synthetic = desc};
    sp_topo *t = NULL;
    sp_diag d = {0};
    int rc = topo_open(&o, &t, &d);
    if (rc != SP_OK) fprintf(stderr, "topo_open: %s\n", d.msg);
    assert_int_equal(rc, SP_OK);
    assert_non_null(t);
    return t;
}

static sp_topo *open_real(void)
{
    topo_opts o = {0};
    sp_topo *t = NULL;
    sp_diag d = {0};
    int rc = topo_open(&o, &t, &d);
    if (rc != SP_OK) fprintf(stderr, "topo_open: %s\n", d.msg);
    assert_int_equal(rc, SP_OK);
    return t;
}

/* Writes the summary to a memory buffer (caller frees). */
static char *summary_of(sp_topo *t)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(topo_summary(t, f), SP_OK);
    fclose(f);
    return buf;
}

static void test_synthetic_2x2x4(void **state)
{
    sp_topo *t = open_synthetic("pack:2 numa:2 core:4 pu:1");
    assert_int_equal(topo_is_this_system(t), 0);
    assert_int_equal(topo_packages(t), 2);
    assert_int_equal(topo_numa_nodes(t), 4);
    assert_int_equal(topo_cores(t), 16);
    for (unsigned c = 0; c < 16; c++)
        assert_int_equal(topo_core_node(t, c), c / 4);
    assert_non_null(topo_hwloc(t));

    char *s = summary_of(t);
    assert_non_null(strstr(s, "2 packages, 4 NUMA nodes, 16 cores"));
    assert_non_null(strstr(s, "node 0: cores 0-3"));
    assert_non_null(strstr(s, "node 3: cores 12-15"));
    assert_non_null(strstr(s, "binding: no"));
    free(s);
    topo_close(t);
}

static void test_synthetic_one_core(void **state)
{
    sp_topo *t = open_synthetic("pack:1 numa:1 core:1 pu:1");
    assert_int_equal(topo_packages(t), 1);
    assert_int_equal(topo_numa_nodes(t), 1);
    assert_int_equal(topo_cores(t), 1);
    assert_int_equal(topo_core_node(t, 0), 0);
    /* core numbers wrap */
    assert_int_equal(topo_core_node(t, 5), 0);
    char *s = summary_of(t);
    assert_non_null(strstr(s, "1 package, 1 NUMA node, 1 core "));
    assert_non_null(strstr(s, "node 0: cores 0,"));
    free(s);
    topo_close(t);
}

static void test_synthetic_hyperthreads(void **state)
{
    /* Cores, not PUs, are counted; the map follows the node's cpuset. */
    sp_topo *t = open_synthetic("pack:1 numa:3 core:2 pu:2");
    assert_int_equal(topo_cores(t), 6);
    assert_int_equal(topo_numa_nodes(t), 3);
    for (unsigned c = 0; c < 6; c++)
        assert_int_equal(topo_core_node(t, c), c / 2);
    topo_close(t);
}

static void test_bad_synthetic(void **state)
{
    topo_opts o = {.synthetic = "pack:2 bogus:x"};
    sp_topo *t = (sp_topo *)&o; /* must be reset to NULL */
    sp_diag d = {0};
    int rc = topo_open(&o, &t, &d);
    assert_int_equal(rc, SP_EINVAL);
    assert_null(t);
    assert_non_null(strstr(d.msg, "bogus:x"));

    topo_opts both = {.synthetic = "pack:1", .xml = "x.xml"};
    assert_int_equal(topo_open(&both, &t, &d), SP_EINVAL);
    assert_int_equal(topo_open(NULL, &t, &d), SP_EINVAL);
}

static void test_missing_xml(void **state)
{
    topo_opts o = {.xml = "no-such-topology.xml"};
    sp_topo *t = NULL;
    sp_diag d = {0};
    int rc = topo_open(&o, &t, &d);
    assert_true(rc < 0);
    assert_null(t);
    assert_non_null(strstr(d.msg, "no-such-topology.xml"));
}

static void test_real_system(void **state)
{
    sp_topo *t = open_real();
    assert_int_equal(topo_is_this_system(t), 1);
    assert_true(topo_packages(t) >= 1);
    assert_true(topo_numa_nodes(t) >= 1);
    assert_true(topo_cores(t) >= 1);
    for (unsigned c = 0; c < topo_cores(t); c++)
        assert_true(topo_core_node(t, c) < topo_numa_nodes(t));
    char *s = summary_of(t);
    assert_true(strlen(s) > 20);
    assert_non_null(strstr(s, "topology: "));
    assert_non_null(strstr(s, "node 0: cores "));
    free(s);
    topo_close(t);
}

static void check_mem(sp_topo *t, unsigned node)
{
    static const size_t sizes[] = {0, 1, 4095, 4096, 4097, 12345, (size_t)1 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        unsigned char *p = topo_alloc_mem(t, node, n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 4096, 0);
        memset(p, 0xA5, n);
        if (n) {
            assert_int_equal(p[0], 0xA5);
            assert_int_equal(p[n - 1], 0xA5);
        }
        topo_free_mem(t, p, n);
    }
    topo_free_mem(t, NULL, 10); /* no-op */
}

static void test_mem_fake(void **state)
{
    sp_topo *t = open_synthetic("pack:2 numa:2 core:4 pu:1");
    for (unsigned node = 0; node < 4; node++)
        check_mem(t, node);
    check_mem(t, 99); /* a node that does not exist still gets memory */
    topo_close(t);
}

static void test_mem_real(void **state)
{
    sp_topo *t = open_real();
    for (unsigned node = 0; node < topo_numa_nodes(t); node++)
        check_mem(t, node);
    check_mem(t, 99);
    /* Many live allocations at once, freed out of order. */
    void *p[17];
    for (int i = 0; i < 17; i++) {
        p[i] = topo_alloc_mem(t, 0, (size_t)(i + 1) * 1000);
        assert_non_null(p[i]);
        memset(p[i], i, (size_t)(i + 1) * 1000);
    }
    for (int i = 16; i >= 0; i -= 2)
        topo_free_mem(t, p[i], (size_t)(i + 1) * 1000);
    for (int i = 15; i >= 0; i -= 2) {
        assert_int_equal(((unsigned char *)p[i])[i * 1000], i);
        topo_free_mem(t, p[i], (size_t)(i + 1) * 1000);
    }
    topo_close(t);
}

static void test_bind_fake(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *log = open_memstream(&buf, &len);
    topo_opts o = {.synthetic = "pack:2 numa:2 core:4 pu:1", .log = log};
    sp_topo *t = NULL;
    assert_int_equal(topo_open(&o, &t, NULL), SP_OK);
    for (unsigned c = 0; c < 40; c++)
        assert_int_equal(topo_bind_thread(t, c), 0);
    topo_close(t);
    fclose(log);
    assert_int_equal(len, 0); /* a fake topology binds nothing, quietly */
    free(buf);
}

static void test_bind_real(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *log = open_memstream(&buf, &len);
    topo_opts o = {.log = log};
    sp_topo *t = NULL;
    assert_int_equal(topo_open(&o, &t, NULL), SP_OK);
    hwloc_topology_t h = topo_hwloc(t);
    hwloc_bitmap_t saved = hwloc_bitmap_alloc();
    int have_saved = hwloc_get_cpubind(h, saved, HWLOC_CPUBIND_THREAD) == 0;

    int bound = 0;
    for (unsigned c = 0; c < topo_cores(t) * 2; c++) {
        int r = topo_bind_thread(t, c);
        assert_true(r == 0 || r == 1);
        bound += r;
        if (r == 1) {
            /* The thread now runs on exactly one PU of that core. */
            hwloc_bitmap_t now = hwloc_bitmap_alloc();
            assert_int_equal(hwloc_get_cpubind(h, now, HWLOC_CPUBIND_THREAD), 0);
            assert_int_equal(hwloc_bitmap_weight(now), 1);
            hwloc_obj_t core = hwloc_get_obj_by_type(h, HWLOC_OBJ_CORE, c % topo_cores(t));
            if (core) assert_true(hwloc_bitmap_isincluded(now, core->cpuset));
            hwloc_bitmap_free(now);
        }
    }
    fflush(log);
    if (bound == 0) {
        /* Refused everywhere: exactly one warning. */
        assert_non_null(strstr(buf, "cannot bind executor threads"));
        assert_null(strstr(strstr(buf, "cannot bind") + 1, "cannot bind"));
    } else {
        assert_int_equal(len, 0);
    }
    if (have_saved) hwloc_set_cpubind(h, saved, HWLOC_CPUBIND_THREAD);
    hwloc_bitmap_free(saved);
    topo_close(t);
    fclose(log);
    free(buf);
}

static void test_device_node_xml(void **state)
{
    topo_opts o = {.xml = tu_src_path("tests/data/topo-2pack-gpu.xml")};
    sp_topo *t = NULL;
    sp_diag d = {0};
    int rc = topo_open(&o, &t, &d);
    if (rc != SP_OK) fprintf(stderr, "%s\n", d.msg);
    assert_int_equal(rc, SP_OK);
    assert_int_equal(topo_is_this_system(t), 0);
    assert_int_equal(topo_packages(t), 2);
    assert_int_equal(topo_numa_nodes(t), 2);
    assert_int_equal(topo_cores(t), 4);
    assert_int_equal(topo_core_node(t, 1), 0);
    assert_int_equal(topo_core_node(t, 2), 1);

    dev_info info;
    memset(&info, 0, sizeof info);
    /* By PCI bus id, long and short forms. */
    snprintf(info.pci_bus_id, sizeof info.pci_bus_id, "0000:65:00.0");
    assert_int_equal(topo_device_node(t, &info), 1);
    snprintf(info.pci_bus_id, sizeof info.pci_bus_id, "65:00.0");
    assert_int_equal(topo_device_node(t, &info), 1);
    /* Unknown bus id and no matching OpenCL OS device. */
    snprintf(info.pci_bus_id, sizeof info.pci_bus_id, "0000:66:00.0");
    snprintf(info.name, sizeof info.name, "Some CPU");
    assert_int_equal(topo_device_node(t, &info), -1);
    snprintf(info.pci_bus_id, sizeof info.pci_bus_id, "garbage");
    assert_int_equal(topo_device_node(t, &info), -1);
    /* No bus id: found through hwloc's OpenCL OS device (platform 0, model name). */
    info.pci_bus_id[0] = '\0';
    snprintf(info.name, sizeof info.name, "Test GPU");
    info.platform_index = 0;
    assert_int_equal(topo_device_node(t, &info), 1);
    info.platform_index = 1;
    assert_int_equal(topo_device_node(t, &info), -1);
    assert_int_equal(topo_device_node(t, NULL), -1);
    topo_close(t);
}

static void test_device_node_real(void **state)
{
    sp_topo *t = open_real();
    dev_info info;
    memset(&info, 0, sizeof info);
    snprintf(info.name, sizeof info.name, "cpu-no-such-device");
    assert_int_equal(topo_device_node(t, &info), -1);
    /* Every PCI device hwloc found maps to a valid node or -1. */
    hwloc_obj_t pci = NULL;
    while ((pci = hwloc_get_next_pcidev(topo_hwloc(t), pci)) != NULL) {
        snprintf(info.pci_bus_id, sizeof info.pci_bus_id, "%04x:%02x:%02x.%01x",
                 pci->attr->pcidev.domain, pci->attr->pcidev.bus, pci->attr->pcidev.dev,
                 pci->attr->pcidev.func);
        int n = topo_device_node(t, &info);
        assert_true(n >= -1 && n < (int)topo_numa_nodes(t));
        if (topo_numa_nodes(t) == 1) assert_int_equal(n, 0);
    }
    topo_close(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_synthetic_2x2x4),
        cmocka_unit_test(test_synthetic_one_core),
        cmocka_unit_test(test_synthetic_hyperthreads),
        cmocka_unit_test(test_bad_synthetic),
        cmocka_unit_test(test_missing_xml),
        cmocka_unit_test(test_real_system),
        cmocka_unit_test(test_mem_fake),
        cmocka_unit_test(test_mem_real),
        cmocka_unit_test(test_bind_fake),
        cmocka_unit_test(test_bind_real),
        cmocka_unit_test(test_device_node_xml),
        cmocka_unit_test(test_device_node_real),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
