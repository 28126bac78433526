/* membership_test.c — the member table (validation, every rejection naming
 * its entry), the JSON membership file, and Connect()'s diff. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "membership.h"

#define PEER_KNOWN "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"

/* Fixed Ed25519 public keys: the RFC 8032 section 7.1 test vectors 1-3.
 * Keys 3.. are key 0 with its last two bytes changed (any 32 bytes make a
 * well-formed identity peer ID; nothing here verifies a signature). */
static const uint8_t tm_rfc8032_pk[3][32] = {
    {0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe,
     0xd3, 0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6,
     0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a},
    {0x3d, 0x40, 0x17, 0xc3, 0xe8, 0x43, 0x89, 0x5a, 0x92, 0xb7, 0x0a,
     0xa7, 0x4d, 0x1b, 0x7e, 0xbc, 0x9c, 0x98, 0x2c, 0xcf, 0x2e, 0xc4,
     0x96, 0x8c, 0xc0, 0xcd, 0x55, 0xf1, 0x2a, 0xf4, 0x66, 0x0c},
    {0xfc, 0x51, 0xcd, 0x8e, 0x62, 0x18, 0xa1, 0xa3, 0x8d, 0xa4, 0x7e,
     0xd0, 0x02, 0x30, 0xf0, 0x58, 0x08, 0x16, 0xed, 0x13, 0xba, 0x33,
     0x03, 0xac, 0x5d, 0xeb, 0x91, 0x15, 0x48, 0x90, 0x80, 0x25},
};

#define K_KNOWN (-1) /* PEER_KNOWN */
#define K_A     0
#define K_B     1
#define K_C     2

static void tm_peer(int key, peerid_t *out) {
  if (key == K_KNOWN) {
    assert_ok(peerid_from_string(PEER_KNOWN, strlen(PEER_KNOWN), out));
    return;
  }
  uint8_t pk[32];
  memcpy(pk, tm_rfc8032_pk[key < 3 ? key : 0], 32);
  if (key >= 3) {
    pk[31] ^= (uint8_t)key;
    pk[30] ^= (uint8_t)(key >> 8) + 1;
  }
  peerid_from_ed25519(pk, out);
}

/* The peer ID text of key (a static buffer per call site is not needed:
 * each call gets a fresh slot of the pool below). */
static char tm_pool[1024][BFTNET_ADDR_MAX];
static size_t tm_pool_used;

static char *tm_slot(void) {
  assert_true(tm_pool_used < BN_ARRAY_LEN(tm_pool));
  return tm_pool[tm_pool_used++];
}

static const char *tm_pid(int key) {
  peerid_t p;
  tm_peer(key, &p);
  char *s = tm_slot();
  assert_ok(peerid_to_string(&p, s, BFTNET_ADDR_MAX));
  return s;
}

/* prefix + "/p2p/" + the peer ID of key. */
static const char *tm_addr(const char *prefix, int key) {
  char *s = tm_slot();
  snprintf(s, BFTNET_ADDR_MAX, "%s/p2p/%s", prefix, tm_pid(key));
  return s;
}

static int tm_setup(void **state) {
  (void)state;
  tm_pool_used = 0;
  return 0;
}

#define TM_MEMBER(id, ...)                                                                         \
  ((bftnet_member_t){(id), (const char *const[]){__VA_ARGS__},                                     \
                     sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)})

/* A rejected build: the code, errbuf exactly, and an empty *out. */
static void tm_reject(const bftnet_member_t *m, size_t n, int want, const char *want_err) {
  mb_table_t t = {(mb_member_t *)(uintptr_t)1, 7}; /* overwritten */
  char err[256];
  assert_err(mb_table_build(&t, m, n, err, sizeof(err)), want);
  assert_string_equal(err, want_err);
  assert_null(t.m);
  assert_int_equal(t.n, 0);
  /* errbuf is optional, and a short one is truncated, not overrun. */
  assert_err(mb_table_build(&t, m, n, NULL, 0), want);
  char small[8];
  memset(small, 'x', sizeof(small));
  assert_err(mb_table_build(&t, m, n, small, sizeof(small)), want);
  assert_int_equal(strlen(small), sizeof(small) - 1);
  assert_null(t.m);
}

/* ------------------------------------------------------------ valid tables */

static void test_build_one(void **state) {
  (void)state;
  const char *a = tm_addr("/ip4/127.0.0.1/tcp/9001", K_KNOWN);
  bftnet_member_t m = TM_MEMBER("r1", a);
  mb_table_t t;
  char err[256] = "junk";
  assert_ok(mb_table_build(&t, &m, 1, err, sizeof(err)));
  assert_string_equal(err, "");
  assert_int_equal(t.n, 1);
  assert_string_equal(t.m[0].node_id, "r1");
  assert_int_equal(t.m[0].naddrs, 1);
  assert_string_equal(t.m[0].addr_text[0], a);
  peerid_t p;
  tm_peer(K_KNOWN, &p);
  assert_true(peerid_equal(&t.m[0].peer, &p));
  assert_true(t.m[0].addrs[0].has_peer);
  assert_ptr_equal(mb_find_node(&t, "r1"), &t.m[0]);
  assert_null(mb_find_node(&t, "r2"));
  assert_null(mb_find_node(&t, NULL));
  assert_ptr_equal(mb_find_peer(&t, &p), &t.m[0]);
  tm_peer(K_A, &p);
  assert_null(mb_find_peer(&t, &p));
  mb_table_free(&t);
  assert_null(t.m);
  mb_table_free(&t); /* idempotent */
  mb_table_free(NULL);
}

static void test_build_four_sorted(void **state) {
  (void)state;
  bftnet_member_t m[4] = {
      TM_MEMBER("r3", tm_addr("/ip4/10.0.0.3/tcp/9000", K_C)),
      TM_MEMBER("r1", tm_addr("/ip4/10.0.0.1/tcp/9000", K_KNOWN)),
      TM_MEMBER("r4", tm_addr("/ip6/::1/tcp/9004", 3)),
      TM_MEMBER("r2", tm_addr("/ip4/10.0.0.2/tcp/9000", K_B)),
  };
  mb_table_t t;
  assert_ok(mb_table_build(&t, m, 4, NULL, 0));
  assert_int_equal(t.n, 4);
  const char *want[4] = {"r1", "r2", "r3", "r4"};
  const int keys[4] = {K_KNOWN, K_B, K_C, 3};
  for (size_t i = 0; i < 4; i++) {
    assert_string_equal(t.m[i].node_id, want[i]);
    assert_ptr_equal(mb_find_node(&t, want[i]), &t.m[i]);
    peerid_t p;
    tm_peer(keys[i], &p);
    assert_ptr_equal(mb_find_peer(&t, &p), &t.m[i]);
  }
  assert_null(mb_find_node(&t, "r0"));
  assert_null(mb_find_node(&t, "r5"));
  assert_null(mb_find_node(&t, "r"));
  mb_table_free(&t);
}

static void test_build_hundred(void **state) {
  (void)state;
  static bftnet_member_t m[100];
  static char ids[100][8];
  static const char *addrs[100][2];
  for (int i = 0; i < 100; i++) {
    int k = 3 + i;
    snprintf(ids[i], sizeof(ids[i]), "n%03d", 99 - i); /* reverse order */
    char p4[64], p6[64];
    snprintf(p4, sizeof(p4), "/ip4/192.168.1.%d/tcp/%d", i + 1, 9000 + i);
    snprintf(p6, sizeof(p6), "/ip6/fd00::%x/tcp/%d", i + 1, 9000 + i);
    addrs[i][0] = tm_addr(p4, k);
    addrs[i][1] = tm_addr(p6, k);
    m[i] = (bftnet_member_t){ids[i], addrs[i], 2};
  }
  mb_table_t t;
  assert_ok(mb_table_build(&t, m, 100, NULL, 0));
  assert_int_equal(t.n, 100);
  for (size_t i = 1; i < t.n; i++)
    assert_true(strcmp(t.m[i - 1].node_id, t.m[i].node_id) < 0);
  for (int i = 0; i < 100; i++) {
    const mb_member_t *e = mb_find_node(&t, ids[i]);
    assert_non_null(e);
    assert_int_equal(e->naddrs, 2);
    assert_string_equal(e->addr_text[0], addrs[i][0]);
    assert_string_equal(e->addr_text[1], addrs[i][1]);
    assert_int_equal(e->addrs[0].sa.ss_family, AF_INET);
    assert_int_equal(e->addrs[1].sa.ss_family, AF_INET6);
    peerid_t p;
    tm_peer(3 + i, &p);
    assert_ptr_equal(mb_find_peer(&t, &p), e);
  }
  mb_table_t c;
  assert_ok(mb_table_copy(&c, &t));
  assert_int_equal(c.n, t.n);
  assert_true(c.m != t.m);
  assert_memory_equal(c.m, t.m, t.n * sizeof(*t.m));
  mb_table_free(&t);
  assert_non_null(mb_find_node(&c, "n050")); /* the copy is independent */
  mb_table_free(&c);
}

static void test_build_multi_addr(void **state) {
  (void)state;
  const char *pid = tm_pid(K_A);
  char a[3][BFTNET_ADDR_MAX], want[BFTNET_ADDR_MAX];
  snprintf(a[0], sizeof(a[0]), "/ip6/2001:db8:0:0::0:1/tcp/4001/p2p/%s", pid);
  snprintf(a[1], sizeof(a[1]), "/ip4/127.0.0.1/tcp/9001/p2p/%s", pid);
  snprintf(a[2], sizeof(a[2]), "/ip6/::ffff:10.0.0.1/tcp/443/p2p/%s", pid);
  bftnet_member_t m = TM_MEMBER("r1", a[0], a[1], a[2]);
  mb_table_t t;
  assert_ok(mb_table_build(&t, &m, 1, NULL, 0));
  assert_int_equal(t.m[0].naddrs, 3);
  snprintf(want, sizeof(want), "/ip6/2001:db8::1/tcp/4001/p2p/%s", pid); /* canonical */
  assert_string_equal(t.m[0].addr_text[0], want);
  assert_string_equal(t.m[0].addr_text[1], a[1]); /* order kept: preference */
  assert_string_equal(t.m[0].addr_text[2], a[2]);
  mb_table_free(&t);

  /* Exactly BFTNET_MAX_ADDRS, and a 63-byte node ID, are accepted. */
  char eight[8][BFTNET_ADDR_MAX];
  const char *p8[8];
  for (int i = 0; i < 8; i++) {
    snprintf(eight[i], sizeof(eight[i]), "/ip4/127.0.0.1/tcp/%d/p2p/%s", 9000 + i, pid);
    p8[i] = eight[i];
  }
  char id63[64];
  memset(id63, 'z', 63);
  id63[63] = '\0';
  m = (bftnet_member_t){id63, p8, 8};
  assert_ok(mb_table_build(&t, &m, 1, NULL, 0));
  assert_string_equal(t.m[0].node_id, id63);
  assert_int_equal(t.m[0].naddrs, 8);
  mb_table_free(&t);

  /* The empty membership is valid (everyone removed). */
  assert_ok(mb_table_build(&t, NULL, 0, NULL, 0));
  assert_null(t.m);
  assert_int_equal(t.n, 0);
  assert_null(mb_find_node(&t, "r1"));
}

/* ------------------------------------------------------------ rejections */

static void test_reject_duplicates(void **state) {
  (void)state;
  char want[256];
  bftnet_member_t dup_node[3] = {
      TM_MEMBER("r1", tm_addr("/ip4/127.0.0.1/tcp/9001", K_A)),
      TM_MEMBER("r2", tm_addr("/ip4/127.0.0.1/tcp/9002", K_B)),
      TM_MEMBER("r1", tm_addr("/ip4/127.0.0.1/tcp/9003", K_C)),
  };
  tm_reject(dup_node, 3, BFTNET_EDUPLICATE, "member 3 \"r1\": duplicate node ID (also member 1)");

  bftnet_member_t dup_peer[3] = {
      TM_MEMBER("r1", tm_addr("/ip4/127.0.0.1/tcp/9001", K_A)),
      TM_MEMBER("r2", tm_addr("/ip4/127.0.0.1/tcp/9002", K_B)),
      TM_MEMBER("r3", tm_addr("/ip4/127.0.0.2/tcp/9001", K_A)),
  };
  snprintf(want, sizeof(want), "member 3 \"r3\": peer ID %s is also member 1 \"r1\"", tm_pid(K_A));
  tm_reject(dup_peer, 3, BFTNET_EDUPLICATE, want);

  /* One address twice in a member, spelled differently (canonical text). */
  const char *pid = tm_pid(K_A);
  char a1[BFTNET_ADDR_MAX], a2[BFTNET_ADDR_MAX];
  snprintf(a1, sizeof(a1), "/ip6/::1/tcp/9001/p2p/%s", pid);
  snprintf(a2, sizeof(a2), "/ip6/0:0::1/tcp/9001/p2p/%s", pid);
  bftnet_member_t dup_addr = TM_MEMBER("r1", tm_addr("/ip4/127.0.0.1/tcp/1", K_A), a1, a2);
  tm_reject(&dup_addr, 1, BFTNET_EDUPLICATE, "member 1 \"r1\": address 3 repeats address 2");
}

static void test_reject_addresses(void **state) {
  (void)state;
  char want[256];
  bftnet_member_t no_p2p[2] = {
      TM_MEMBER("r1", tm_addr("/ip4/127.0.0.1/tcp/9001", K_A)),
      TM_MEMBER("r2", "/ip4/127.0.0.1/tcp/9002"),
  };
  tm_reject(no_p2p, 2, BFTNET_EBADADDR, "member 2 \"r2\": address 1: missing /p2p/<peer ID>");

  bftnet_member_t two_peers =
      TM_MEMBER("r1", tm_addr("/ip4/127.0.0.1/tcp/9001", K_A), tm_addr("/ip6/::1/tcp/9001", K_B));
  snprintf(want, sizeof(want), "member 1 \"r1\": address 2: peer ID %s differs from address 1's %s",
           tm_pid(K_B), tm_pid(K_A));
  tm_reject(&two_peers, 1, BFTNET_EBADADDR, want);

  /* The header's own example. */
  bftnet_member_t dns[3] = {
      TM_MEMBER("r1", tm_addr("/ip4/127.0.0.1/tcp/9001", K_A)),
      TM_MEMBER("r2", tm_addr("/ip4/127.0.0.1/tcp/9002", K_B)),
      TM_MEMBER("r4", tm_addr("/ip4/127.0.0.1/tcp/9004", K_C),
                tm_addr("/dns4/example.com/tcp/9004", K_C)),
  };
  tm_reject(dns, 3, BFTNET_EBADADDR, "member 3 \"r4\": address 2: unsupported protocol 'dns4'");

  bftnet_member_t bad_port = TM_MEMBER("r1", tm_addr("/ip4/127.0.0.1/tcp/65536", K_A));
  tm_reject(&bad_port, 1, BFTNET_EBADADDR, "member 1 \"r1\": address 1: bad port '65536'");
  bftnet_member_t bad_peer = TM_MEMBER("r1", "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWnope0");
  tm_reject(&bad_peer, 1, BFTNET_EBADADDR,
            "member 1 \"r1\": address 1: bad peer ID '12D3KooWnope0'");
}

static void test_reject_node_ids(void **state) {
  (void)state;
  const char *a = tm_addr("/ip4/127.0.0.1/tcp/9001", K_A);
  const char *b = tm_addr("/ip4/127.0.0.1/tcp/9002", K_B);
  bftnet_member_t m[2] = {TM_MEMBER("r1", a), TM_MEMBER("", b)};
  tm_reject(m, 2, BFTNET_EINVAL, "member 2 \"\": empty node ID");

  char id64[65];
  memset(id64, 'x', 64);
  id64[64] = '\0';
  m[1].node_id = id64;
  tm_reject(m, 2, BFTNET_EINVAL,
            "member 2 \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\": "
            "node ID longer than 63 bytes");

  m[1].node_id = "r 2";
  tm_reject(m, 2, BFTNET_EINVAL,
            "member 2 \"r 2\": node ID byte 2 (0x20) is whitespace or not printable ASCII");
  m[1].node_id = "r\t2";
  tm_reject(m, 2, BFTNET_EINVAL,
            "member 2 \"r?2\": node ID byte 2 (0x09) is whitespace or not printable ASCII");
  m[1].node_id = "r\xc3\xa9";
  tm_reject(m, 2, BFTNET_EINVAL,
            "member 2 \"r??\": node ID byte 2 (0xc3) is whitespace or not printable ASCII");
  m[1].node_id = "zone/r2";
  tm_reject(m, 2, BFTNET_EINVAL, "member 2 \"zone/r2\": node ID must not contain '/'");
  m[1].node_id = NULL;
  tm_reject(m, 2, BFTNET_EINVAL, "member 2: node ID is NULL");
}

static void test_reject_counts_and_nulls(void **state) {
  (void)state;
  const char *pid = tm_pid(K_A);
  char nine[9][BFTNET_ADDR_MAX];
  const char *p9[9];
  for (int i = 0; i < 9; i++) {
    snprintf(nine[i], sizeof(nine[i]), "/ip4/127.0.0.1/tcp/%d/p2p/%s", 9000 + i, pid);
    p9[i] = nine[i];
  }
  bftnet_member_t m = {"r1", p9, 9};
  tm_reject(&m, 1, BFTNET_EINVAL, "member 1 \"r1\": 9 addresses (must be 1..8)");
  m.naddrs = 0;
  tm_reject(&m, 1, BFTNET_EINVAL, "member 1 \"r1\": 0 addresses (must be 1..8)");
  m = (bftnet_member_t){"r1", NULL, 1};
  tm_reject(&m, 1, BFTNET_EINVAL, "member 1 \"r1\": address list is NULL");
  const char *with_null[2] = {p9[0], NULL};
  m = (bftnet_member_t){"r1", with_null, 2};
  tm_reject(&m, 1, BFTNET_EINVAL, "member 1 \"r1\": address 2 is NULL");
  tm_reject(NULL, 1, BFTNET_EINVAL, "member list is NULL");

  static bftnet_member_t many[BFTNET_MAX_MEMBERS + 1];
  tm_reject(many, BFTNET_MAX_MEMBERS + 1, BFTNET_EINVAL, "1025 members (at most 1024)");

  char err[64];
  m = (bftnet_member_t){"r1", p9, 1};
  assert_err(mb_table_build(NULL, &m, 1, err, sizeof(err)), BFTNET_EINVAL);
  mb_table_t t;
  assert_err(mb_table_copy(&t, NULL), BFTNET_EINVAL);
  assert_err(mb_table_copy(NULL, &t), BFTNET_EINVAL);
  assert_null(mb_find_peer(NULL, NULL));
  assert_null(mb_find_node(NULL, "r1"));
}

/* ------------------------------------------------------------ JSON */

/* A membership file of members r2 (two addresses), r1 (keys in another
 * order) and r3. */
static void tm_good_json(char *doc, size_t cap) {
  const char *pa = tm_pid(K_A), *pb = tm_pid(K_B), *pc = tm_pid(K_C);
  snprintf(doc, cap,
           "{\"members\": [\n"
           " {\"id\": \"r2\", \"addrs\": [\"/ip4/127.0.0.1/tcp/9002/p2p/%s\",\n"
           "                          \"/ip6/::1/tcp/9002/p2p/%s\"]},\n"
           " {\"addrs\": [\"/ip4/127.0.0.1/tcp/9001/p2p/%s\"], \"id\": \"r1\"},\n"
           " {\"id\": \"r3\", \"addrs\": [\"/ip4/127.0.0.1/tcp/9003/p2p/%s\"]}\n"
           "]}\n",
           pb, pb, pa, pc);
}

static void test_json_good(void **state) {
  (void)state;
  char doc[1024];
  tm_good_json(doc, sizeof(doc));
  assert_true(strlen(doc) > 300);
  mb_table_t t;
  char err[256] = "junk";
  assert_ok(mb_table_from_json(&t, doc, strlen(doc), err, sizeof(err)));
  assert_string_equal(err, "");
  assert_int_equal(t.n, 3);
  assert_string_equal(t.m[0].node_id, "r1");
  assert_string_equal(t.m[1].node_id, "r2");
  assert_string_equal(t.m[2].node_id, "r3");
  assert_int_equal(t.m[1].naddrs, 2);
  assert_int_equal(t.m[1].addrs[1].sa.ss_family, AF_INET6);
  peerid_t p;
  tm_peer(K_B, &p);
  assert_ptr_equal(mb_find_peer(&t, &p), &t.m[1]);
  mb_table_free(&t);

  const char *empty = "{\"members\": []}";
  assert_ok(mb_table_from_json(&t, empty, strlen(empty), NULL, 0));
  assert_int_equal(t.n, 0);
  assert_null(t.m);
}

/* A rejected document: the code, errbuf exactly, and an empty *out. */
static void tm_json_reject(const char *doc, int want, const char *want_err) {
  mb_table_t t = {(mb_member_t *)(uintptr_t)1, 7};
  char err[256];
  assert_err(mb_table_from_json(&t, doc, strlen(doc), err, sizeof(err)), want);
  if (strcmp(err, want_err) != 0) fail_msg("doc %s\n got  %s\n want %s", doc, err, want_err);
  assert_null(t.m);
  assert_int_equal(t.n, 0);
}

static void test_json_malformed(void **state) {
  (void)state;
  tm_json_reject("{\n  \"members\": [\n    {\"id\": \"r1\",, }\n]}", BFTNET_EINVAL,
                 "line 3, column 17: string or '}' expected near ','");
  tm_json_reject("", BFTNET_EINVAL, "line 1, column 0: '[' or '{' expected near end of file");
  tm_json_reject("{\"members\": []} trailing", BFTNET_EINVAL,
                 "line 1, column 24: end of file expected near 'trailing'");
  /* Non-printable bytes jansson quotes back are masked. */
  tm_json_reject("{\"members\": [\x01]}", BFTNET_EINVAL,
                 "line 1, column 14: invalid token near '?'");
  /* An embedded NUL is not a string terminator: the whole length counts. */
  mb_table_t t;
  char err[256];
  static const char nul[] = "{\"members\": []}\0 ";
  assert_err(mb_table_from_json(&t, nul, sizeof(nul) - 1, err, sizeof(err)), BFTNET_EINVAL);
  assert_non_null(strstr(err, "line 1, column"));
  assert_err(mb_table_from_json(&t, NULL, 0, err, sizeof(err)), BFTNET_EINVAL);
  assert_err(mb_table_from_json(NULL, "{}", 2, err, sizeof(err)), BFTNET_EINVAL);
}

static void test_json_schema(void **state) {
  (void)state;
  char doc[512];
  const char *a = tm_addr("/ip4/127.0.0.1/tcp/9001", K_A);
  tm_json_reject("[]", BFTNET_EINVAL, "top level must be an object");
  tm_json_reject("{}", BFTNET_EINVAL, "missing key \"members\"");
  tm_json_reject("{\"members\": [], \"version\": 2}", BFTNET_EINVAL,
                 "unknown key \"version\" at top level");
  tm_json_reject("{\"members\": {}}", BFTNET_EINVAL, "\"members\" must be an array");
  tm_json_reject("{\"members\": [\"r1\"]}", BFTNET_EINVAL, "member 1 must be an object");

  snprintf(doc, sizeof(doc), "{\"members\": [{\"id\": \"r1\", \"addrs\": [\"%s\"], \"port\": 1}]}",
           a);
  tm_json_reject(doc, BFTNET_EINVAL, "member 1: unknown key \"port\"");
  snprintf(doc, sizeof(doc),
           "{\"members\": [{\"id\": \"r1\", \"addrs\": [\"%s\"]}, {\"id\": 2, "
           "\"addrs\": []}]}",
           a);
  tm_json_reject(doc, BFTNET_EINVAL, "member 2: \"id\" must be a string");
  snprintf(doc, sizeof(doc),
           "{\"members\": [{\"id\": \"r1\", \"addrs\": [\"%s\"]}, {\"id\": \"r2\", "
           "\"addrs\": \"%s\"}]}",
           a, a);
  tm_json_reject(doc, BFTNET_EINVAL, "member 2: \"addrs\" must be an array of strings");
  snprintf(doc, sizeof(doc),
           "{\"members\": [{\"id\": \"r1\", \"addrs\": [\"%s\"]}, {\"id\": \"r2\", "
           "\"addrs\": [\"%s\", 7]}]}",
           a, a);
  tm_json_reject(doc, BFTNET_EINVAL, "member 2: \"addrs\" must be an array of strings");
  tm_json_reject("{\"members\": [{\"addrs\": []}]}", BFTNET_EINVAL, "member 1: missing key \"id\"");
  tm_json_reject("{\"members\": [{\"id\": \"r1\"}]}", BFTNET_EINVAL,
                 "member 1: missing key \"addrs\"");
  tm_json_reject("{\"members\": [{\"id\": \"r1\", \"addrs\": null}]}", BFTNET_EINVAL,
                 "member 1: \"addrs\" must be an array of strings");
  /* Keys quoted back are made printable. */
  tm_json_reject("{\"members\": [], \"a\\tb\": 1}", BFTNET_EINVAL,
                 "unknown key \"a?b\" at top level");
}

static void test_json_duplicates_and_values(void **state) {
  (void)state;
  char doc[1024];
  const char *a = tm_addr("/ip4/127.0.0.1/tcp/9001", K_A);
  tm_json_reject("{\"members\": [], \"members\": []}", BFTNET_EINVAL,
                 "line 1, column 25: duplicate object key near '\"members\"'");
  snprintf(doc, sizeof(doc),
           "{\"members\": [{\"id\": \"r1\", \"id\": \"r2\", \"addrs\": [\"%s\"]}]}", a);
  tm_json_reject(doc, BFTNET_EINVAL, "line 1, column 30: duplicate object key near '\"id\"'");

  /* Values go through mb_table_build: the same messages. */
  snprintf(doc, sizeof(doc),
           "{\"members\": [{\"id\": \"r1\", \"addrs\": [\"%s\"]}, {\"id\": \"r1\", \"addrs\": "
           "[\"%s\"]}]}",
           a, tm_addr("/ip4/127.0.0.1/tcp/9002", K_B));
  tm_json_reject(doc, BFTNET_EDUPLICATE, "member 2 \"r1\": duplicate node ID (also member 1)");
  snprintf(doc, sizeof(doc),
           "{\"members\": [{\"id\": \"r1\", \"addrs\": [\"%s\", \"/dns4/x.org/tcp/1\"]}]}", a);
  tm_json_reject(doc, BFTNET_EBADADDR, "member 1 \"r1\": address 2: unsupported protocol 'dns4'");
  tm_json_reject("{\"members\": [{\"id\": \"r1\", \"addrs\": []}]}", BFTNET_EINVAL,
                 "member 1 \"r1\": 0 addresses (must be 1..8)");
  snprintf(doc, sizeof(doc),
           "{\"members\": [{\"id\": \"r1\", \"addrs\": [\"%s\",\"%s\",\"%s\",\"%s\",\"%s\",\"%s\","
           "\"%s\",\"%s\",\"%s\"]}]}",
           a, a, a, a, a, a, a, a, a);
  tm_json_reject(doc, BFTNET_EINVAL, "member 1 \"r1\": 9 addresses (must be 1..8)");
  snprintf(doc, sizeof(doc), "{\"members\": [{\"id\": \"\\u00e9\", \"addrs\": [\"%s\"]}]}", a);
  tm_json_reject(doc, BFTNET_EINVAL,
                 "member 1 \"??\": node ID byte 1 (0xc3) is whitespace or not printable ASCII");
  /* \u0000 inside a string is refused by jansson (no silent truncation). */
  snprintf(doc, sizeof(doc), "{\"members\": [{\"id\": \"r1\\u0000x\", \"addrs\": [\"%s\"]}]}", a);
  mb_table_t t;
  char err[256];
  assert_err(mb_table_from_json(&t, doc, strlen(doc), err, sizeof(err)), BFTNET_EINVAL);
  assert_non_null(strstr(err, "line 1, column"));
}

static void test_json_too_many_members(void **state) {
  (void)state;
  /* 1025 members of any shape: refused by count, before anything else. */
  size_t cap = 16 + (BFTNET_MAX_MEMBERS + 1) * 3;
  char *doc = malloc(cap);
  assert_non_null(doc);
  size_t k = (size_t)snprintf(doc, cap, "{\"members\":[");
  for (size_t i = 0; i <= BFTNET_MAX_MEMBERS; i++)
    k += (size_t)snprintf(doc + k, cap - k, "1,");
  doc[k - 1] = ']';
  snprintf(doc + k, cap - k, "}");
  tm_json_reject(doc, BFTNET_EINVAL, "1025 members (at most 1024)");
  free(doc);
}

static char tm_tmpdir[64];

static const char *tm_write_file(const char *name, const char *text) {
  if (!tm_tmpdir[0]) {
    snprintf(tm_tmpdir, sizeof(tm_tmpdir), "/tmp/mbtest.XXXXXX");
    assert_non_null(mkdtemp(tm_tmpdir));
  }
  char *path = tm_slot();
  snprintf(path, BFTNET_ADDR_MAX, "%s/%s", tm_tmpdir, name);
  if (text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
  }
  return path;
}

static void test_json_files(void **state) {
  (void)state;
  char doc[1024];
  tm_good_json(doc, sizeof(doc));
  const char *good = tm_write_file("good.json", doc);
  mb_table_t t;
  char err[512], want[512];
  assert_ok(mb_table_load_file(&t, good, err, sizeof(err)));
  assert_int_equal(t.n, 3);
  mb_table_free(&t);

  const char *missing = tm_write_file("missing.json", NULL);
  assert_err(mb_table_load_file(&t, missing, err, sizeof(err)), -ENOENT);
  snprintf(want, sizeof(want), "%s: %s", missing, strerror(ENOENT));
  assert_string_equal(err, want);
  assert_null(t.m);

  assert_err(mb_table_load_file(&t, tm_tmpdir, err, sizeof(err)), -EISDIR);

  const char *bad =
      tm_write_file("bad.json", "{\"members\": [\n  {\"id\": \"r1\", \"addrs\": 5}]}");
  assert_err(mb_table_load_file(&t, bad, err, sizeof(err)), BFTNET_EINVAL);
  snprintf(want, sizeof(want), "%s: member 1: \"addrs\" must be an array of strings", bad);
  assert_string_equal(err, want);
  const char *broken = tm_write_file("broken.json", "{\"members\": [\n\n  }");
  assert_err(mb_table_load_file(&t, broken, err, sizeof(err)), BFTNET_EINVAL);
  snprintf(want, sizeof(want), "%s: line 3, column 3: unexpected token near '}'", broken);
  assert_string_equal(err, want);

  /* Above 4 MiB: refused from fstat, before reading (a sparse file). */
  const char *huge = tm_write_file("huge.json", "");
  int fd = open(huge, O_WRONLY);
  assert_true(fd >= 0);
  assert_int_equal(ftruncate(fd, 4 * 1024 * 1024 + 1), 0);
  close(fd);
  assert_err(mb_table_load_file(&t, huge, err, sizeof(err)), BFTNET_ETOOBIG);
  snprintf(want, sizeof(want), "%s: larger than 4194304 bytes", huge);
  assert_string_equal(err, want);
  assert_null(t.m);
  /* The same limit applies to text handed in directly. */
  assert_err(mb_table_from_json(&t, doc, 4 * 1024 * 1024 + 1, err, sizeof(err)), BFTNET_ETOOBIG);
  /* Exactly 4 MiB is read (and is then not valid JSON). */
  fd = open(huge, O_WRONLY);
  assert_int_equal(ftruncate(fd, 4 * 1024 * 1024), 0);
  close(fd);
  assert_err(mb_table_load_file(&t, huge, err, sizeof(err)), BFTNET_EINVAL);
  assert_err(mb_table_load_file(&t, NULL, err, sizeof(err)), BFTNET_EINVAL);

  const char *paths[] = {good, bad, broken, huge};
  for (size_t i = 0; i < BN_ARRAY_LEN(paths); i++)
    unlink(paths[i]);
  rmdir(tm_tmpdir);
}

/* ------------------------------------------------------------ diff */

static void tm_table(mb_table_t *t, const bftnet_member_t *m, size_t n) {
  char err[256];
  int rc = mb_table_build(t, m, n, err, sizeof(err));
  if (rc) fail_msg("mb_table_build: %s", err);
}

static void tm_expect(const mb_change_t *c, mb_change_kind_t kind, const char *id) {
  assert_int_equal(c->kind, kind);
  const mb_member_t *m = kind == MB_REMOVED ? c->old_m : c->new_m;
  assert_non_null(m);
  assert_string_equal(m->node_id, id);
  if (kind == MB_ADDED) assert_null(c->old_m);
  if (kind == MB_REMOVED) assert_null(c->new_m);
  if (kind == MB_ADDRS_CHANGED || kind == MB_UNCHANGED) {
    assert_non_null(c->old_m);
    assert_string_equal(c->old_m->node_id, id);
  }
}

static void test_diff_kinds(void **state) {
  (void)state;
  const char *a1 = tm_addr("/ip4/10.0.0.1/tcp/1", K_A), *a2 = tm_addr("/ip6/::1/tcp/1", K_A);
  const char *b1 = tm_addr("/ip4/10.0.0.2/tcp/1", K_B), *b2 = tm_addr("/ip6/::2/tcp/1", K_B);
  const char *c1 = tm_addr("/ip4/10.0.0.3/tcp/1", K_C);
  const char *d1 = tm_addr("/ip4/10.0.0.4/tcp/1", 3), *e1 = tm_addr("/ip4/10.0.0.5/tcp/1", 4);
  const char *f1 = tm_addr("/ip4/10.0.0.6/tcp/1", 5), *f2 = tm_addr("/ip4/10.0.0.6/tcp/2", 5);
  const char *g1 = tm_addr("/ip4/10.0.0.7/tcp/1", 6), *g1x = tm_addr("/ip4/10.0.0.7/tcp/1", 7);
  bftnet_member_t old_m[] = {
      TM_MEMBER("a", a1, a2), /* unchanged */
      TM_MEMBER("b", b1, b2), /* address order swapped */
      TM_MEMBER("c", c1),     /* removed */
      TM_MEMBER("f", f1),     /* address added */
      TM_MEMBER("g", g1),     /* new peer ID: REMOVED + ADDED */
      TM_MEMBER("d", d1),     /* removed */
  };
  bftnet_member_t new_m[] = {
      TM_MEMBER("g", g1x),    TM_MEMBER("f", f1, f2), TM_MEMBER("e", e1),
      TM_MEMBER("b", b2, b1), TM_MEMBER("a", a1, a2),
  };
  mb_table_t o, n;
  tm_table(&o, old_m, BN_ARRAY_LEN(old_m));
  tm_table(&n, new_m, BN_ARRAY_LEN(new_m));
  mb_change_t *ch;
  size_t k;
  assert_ok(mb_diff(&o, &n, &ch, &k));
  assert_int_equal(k, 8);
  /* REMOVED first (c, d, and g whose peer ID changed), in node-ID order... */
  tm_expect(&ch[0], MB_REMOVED, "c");
  tm_expect(&ch[1], MB_REMOVED, "d");
  tm_expect(&ch[2], MB_REMOVED, "g");
  /* ...then the rest, in node-ID order: g's ADDED comes last. */
  tm_expect(&ch[3], MB_UNCHANGED, "a");
  tm_expect(&ch[4], MB_ADDRS_CHANGED, "b");
  tm_expect(&ch[5], MB_ADDED, "e");
  tm_expect(&ch[6], MB_ADDRS_CHANGED, "f");
  tm_expect(&ch[7], MB_ADDED, "g");
  /* Pointers point into the tables. */
  assert_ptr_equal(ch[0].old_m, mb_find_node(&o, "c"));
  assert_ptr_equal(ch[7].new_m, mb_find_node(&n, "g"));
  assert_ptr_equal(ch[2].old_m, mb_find_node(&o, "g"));
  free(ch);
  mb_table_free(&o);
  mb_table_free(&n);
}

static void test_diff_empty_and_self(void **state) {
  (void)state;
  bftnet_member_t m[] = {
      TM_MEMBER("r2", tm_addr("/ip4/10.0.0.2/tcp/1", K_B)),
      TM_MEMBER("r1", tm_addr("/ip4/10.0.0.1/tcp/1", K_A)),
  };
  mb_table_t t, e = {NULL, 0};
  tm_table(&t, m, 2);
  mb_change_t *ch;
  size_t k;
  assert_ok(mb_diff(&e, &t, &ch, &k));
  assert_int_equal(k, 2);
  tm_expect(&ch[0], MB_ADDED, "r1");
  tm_expect(&ch[1], MB_ADDED, "r2");
  free(ch);
  assert_ok(mb_diff(&t, &e, &ch, &k));
  assert_int_equal(k, 2);
  tm_expect(&ch[0], MB_REMOVED, "r1");
  tm_expect(&ch[1], MB_REMOVED, "r2");
  free(ch);
  assert_ok(mb_diff(&t, &t, &ch, &k));
  assert_int_equal(k, 2);
  tm_expect(&ch[0], MB_UNCHANGED, "r1");
  tm_expect(&ch[1], MB_UNCHANGED, "r2");
  free(ch);
  ch = (mb_change_t *)(uintptr_t)1;
  assert_ok(mb_diff(&e, &e, &ch, &k));
  assert_int_equal(k, 0);
  assert_null(ch);
  assert_err(mb_diff(NULL, &t, &ch, &k), BFTNET_EINVAL);
  assert_err(mb_diff(&t, NULL, &ch, &k), BFTNET_EINVAL);
  assert_err(mb_diff(&t, &t, NULL, &k), BFTNET_EINVAL);
  assert_err(mb_diff(&t, &t, &ch, NULL), BFTNET_EINVAL);
  mb_table_free(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_build_one, tm_setup),
      cmocka_unit_test_setup(test_build_four_sorted, tm_setup),
      cmocka_unit_test_setup(test_build_hundred, tm_setup),
      cmocka_unit_test_setup(test_build_multi_addr, tm_setup),
      cmocka_unit_test_setup(test_reject_duplicates, tm_setup),
      cmocka_unit_test_setup(test_reject_addresses, tm_setup),
      cmocka_unit_test_setup(test_reject_node_ids, tm_setup),
      cmocka_unit_test_setup(test_reject_counts_and_nulls, tm_setup),
      cmocka_unit_test_setup(test_json_good, tm_setup),
      cmocka_unit_test_setup(test_json_malformed, tm_setup),
      cmocka_unit_test_setup(test_json_schema, tm_setup),
      cmocka_unit_test_setup(test_json_duplicates_and_values, tm_setup),
      cmocka_unit_test_setup(test_json_too_many_members, tm_setup),
      cmocka_unit_test_setup(test_json_files, tm_setup),
      cmocka_unit_test_setup(test_diff_kinds, tm_setup),
      cmocka_unit_test_setup(test_diff_empty_and_self, tm_setup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
