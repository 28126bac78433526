/* membership_oom_test.c — allocation-failure injection: every allocation of
 * mb_table_from_json (ours, via the linker's --wrap, and jansson's, via
 * json_set_alloc_funcs), mb_table_load_file, mb_table_copy and mb_diff is
 * failed in turn; each failure returns BFTNET_ENOMEM (or, for some of
 * jansson's, the syntax error jansson reports instead), leaves *out empty
 * and frees everything. Linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free
 * (the wrap covers this program and the static module archives, not libc). */
#include <stdio.h>
#include <unistd.h>

#include <jansson.h>

#include "harness.h"
#include "membership.h"

/* The reserved __wrap_/__real_ names are the linker's --wrap contract. */
void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);

static long om_fail_in = -1; /* allocations until the failing one; -1: never */
static long om_live;         /* blocks allocated through the wrappers, not freed */

static bool om_fail_now(void) {
  if (om_fail_in < 0) return false;
  return om_fail_in-- == 0;
}

void *__wrap_malloc(size_t n) {
  if (om_fail_now()) return NULL;
  void *p = __real_malloc(n);
  if (p) om_live++;
  return p;
}

void *__wrap_calloc(size_t k, size_t n) {
  if (om_fail_now()) return NULL;
  void *p = __real_calloc(k, n);
  if (p) om_live++;
  return p;
}

void *__wrap_realloc(void *p, size_t n) {
  if (om_fail_now()) return NULL;
  void *q = __real_realloc(p, n);
  if (q && !p) om_live++;
  return q;
}

/* jansson's allocations: the same, remembering that the failure was one
 * of jansson's (it may report its lexer's out-of-memory as a syntax error). */
static bool om_failed_in_json;

static void *om_json_malloc(size_t n) {
  bool fail = om_fail_in == 0;
  void *p = __wrap_malloc(n);
  if (fail) om_failed_in_json = true;
  return p;
}

void __wrap_free(void *p) {
  if (p) om_live--;
  __real_free(p);
}

#define PEER_A "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"
#define PEER_B "12D3KooW9xCm2jWjNVrwh51SWCQBMYdMyeU3NpT85QhLVkF6PcNM"
#define PEER_C "12D3KooWA284B2yjxoAAqAFwwVj6eRQ8DogF3t8wdpMzZ8Hh8wh4"

static const char om_doc[] =
    "{\"members\": [\n"
    " {\"id\": \"r3\", \"addrs\": [\"/ip4/127.0.0.1/tcp/9003/p2p/" PEER_C "\"]},\n"
    " {\"id\": \"r1\", \"addrs\": [\"/ip4/127.0.0.1/tcp/9001/p2p/" PEER_A "\",\n"
    "                          \"/ip6/::1/tcp/9001/p2p/" PEER_A "\"]},\n"
    " {\"id\": \"r2\", \"addrs\": [\"/ip4/127.0.0.1/tcp/9002/p2p/" PEER_B "\"]}\n"
    "]}\n";

static int om_setup(void **state) {
  (void)state;
  json_set_alloc_funcs(om_json_malloc, __wrap_free);
  return 0;
}

typedef int (*om_load_fn)(mb_table_t *out, char *err, size_t cap);

static int om_load_json(mb_table_t *out, char *err, size_t cap) {
  return mb_table_from_json(out, om_doc, sizeof(om_doc) - 1, err, cap);
}

static char om_path[] = "/tmp/mboom.XXXXXX";

static int om_load_file(mb_table_t *out, char *err, size_t cap) {
  return mb_table_load_file(out, om_path, err, cap);
}

/* Runs load with its k-th allocation failing, for k = 0, 1, ... until a run
 * allocates fewer than k + 1 times (which must then succeed, equal to the
 * reference). A failure of ours must be ENOMEM, "out of memory". jansson
 * may turn its own failure into a syntax error, or (lex_save ignores a
 * failed strbuffer append: akheron/jansson#362) silently drop a byte of a
 * string, which our validation then usually rejects ("127.0.0.1tcp");
 * either way nothing may leak and a failed call leaves *out empty. */
static void om_run(om_load_fn load) {
  mb_table_t ref;
  char err[512];
  assert_ok(load(&ref, err, sizeof(err)));
  int ours = 0, jansson = 0;
  for (long k = 0;; k++) {
    long live0 = om_live;
    mb_table_t t = {(mb_member_t *)(uintptr_t)1, 7};
    om_failed_in_json = false;
    om_fail_in = k;
    int rc = load(&t, err, sizeof(err));
    bool injected = om_fail_in == -1;
    om_fail_in = -1;
    if (!injected) {
      assert_ok(rc);
      assert_int_equal(t.n, ref.n);
      assert_memory_equal(t.m, ref.m, ref.n * sizeof(*ref.m));
      free(t.m);
      assert_int_equal(om_live, live0);
      break;
    }
    if (om_failed_in_json) {
      jansson++;
      free(t.m); /* NULL unless the corruption above produced a table */
      if (rc) assert_null(t.m);
    } else {
      ours++;
      if (rc != BFTNET_ENOMEM) fail_msg("allocation %ld failed: %d %s", k, rc, err);
      assert_non_null(strstr(err, "out of memory"));
      assert_null(t.m);
      assert_int_equal(t.n, 0);
    }
    assert_int_equal(om_live, live0);
  }
  assert_true(ours >= 2);    /* the pointer arrays, the table (and the file buffer) */
  assert_true(jansson >= 5); /* the lexer, objects, arrays, strings */
  free(ref.m);
}

static void test_oom_from_json(void **state) {
  (void)state;
  om_run(om_load_json);
}

static void test_oom_load_file(void **state) {
  (void)state;
  int fd = mkstemp(om_path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, om_doc, sizeof(om_doc) - 1), (ssize_t)(sizeof(om_doc) - 1));
  close(fd);
  om_run(om_load_file);
  unlink(om_path);
}

static void test_oom_copy_and_diff(void **state) {
  (void)state;
  mb_table_t t, c;
  assert_ok(mb_table_from_json(&t, om_doc, sizeof(om_doc) - 1, NULL, 0));
  long live0 = om_live;
  om_fail_in = 0;
  assert_err(mb_table_copy(&c, &t), BFTNET_ENOMEM);
  assert_null(c.m);
  assert_int_equal(c.n, 0);
  mb_change_t *ch = (mb_change_t *)(uintptr_t)1;
  size_t n = 9;
  om_fail_in = 0;
  assert_err(mb_diff(&t, &t, &ch, &n), BFTNET_ENOMEM);
  om_fail_in = -1;
  assert_null(ch);
  assert_int_equal(n, 0);
  assert_int_equal(om_live, live0);
  assert_ok(mb_diff(&t, &t, &ch, &n));
  assert_int_equal(n, 3);
  free(ch);
  free(t.m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_oom_from_json, om_setup),
      cmocka_unit_test_setup(test_oom_load_file, om_setup),
      cmocka_unit_test_setup(test_oom_copy_and_diff, om_setup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
