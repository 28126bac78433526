/* proto_multiaddr_test.c — /ip4|ip6/A/tcp/P[/p2p/ID]: round trips, and every
 * rejection naming the component at fault. */
#include <arpa/inet.h>

#include "harness.h"
#include "proto.h"

#define PEER "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"

static void check_roundtrip(const char *s) {
  maddr_t m;
  char err[128];
  int rc = maddr_parse(s, &m, err, sizeof(err));
  if (rc != 0) fail_msg("maddr_parse(%s): %s", s, err);
  char out[BFTNET_ADDR_MAX];
  assert_ok(maddr_format(&m, out, sizeof(out)));
  assert_string_equal(out, s);
  assert_err(maddr_format(&m, out, strlen(s)), BFTNET_EBUFSIZE);
  assert_ok(maddr_format(&m, out, strlen(s) + 1));
}

static void test_maddr_roundtrip(void **state) {
  (void)state;
  check_roundtrip("/ip4/127.0.0.1/tcp/9000/p2p/" PEER);
  check_roundtrip("/ip6/::1/tcp/4001");
  check_roundtrip("/ip4/0.0.0.0/tcp/0");
  check_roundtrip("/ip4/255.255.255.255/tcp/65535");
  check_roundtrip("/ip6/2001:db8::8a2e:370:7334/tcp/1/p2p/" PEER);
  check_roundtrip("/ip6/::ffff:10.0.0.1/tcp/443");
  check_roundtrip("/ip6/::/tcp/0");
}

static void test_maddr_fields(void **state) {
  (void)state;
  maddr_t m;
  assert_ok(maddr_parse("/ip4/127.0.0.1/tcp/9000/p2p/" PEER, &m, NULL, 0));
  const struct sockaddr_in *in = (const struct sockaddr_in *)&m.sa;
  assert_int_equal(in->sin_family, AF_INET);
  assert_int_equal(ntohs(in->sin_port), 9000);
  assert_int_equal(ntohl(in->sin_addr.s_addr), 0x7f000001);
  assert_true(m.has_peer);
  peerid_t want;
  assert_ok(peerid_from_string(PEER, strlen(PEER), &want));
  assert_true(peerid_equal(&m.peer, &want));

  assert_ok(maddr_parse("/ip6/::1/tcp/4001", &m, NULL, 0));
  const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&m.sa;
  assert_int_equal(in6->sin6_family, AF_INET6);
  assert_int_equal(ntohs(in6->sin6_port), 4001);
  assert_true(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr));
  assert_false(m.has_peer);

  /* maddr_format_sa: a bare socket address, with and without a peer. */
  char out[BFTNET_ADDR_MAX];
  assert_ok(maddr_format_sa((const struct sockaddr *)&m.sa, NULL, out, sizeof(out)));
  assert_string_equal(out, "/ip6/::1/tcp/4001");
  assert_ok(maddr_format_sa((const struct sockaddr *)&m.sa, &want, out, sizeof(out)));
  assert_string_equal(out, "/ip6/::1/tcp/4001/p2p/" PEER);
  struct sockaddr_storage un = {.ss_family = AF_UNIX};
  assert_err(maddr_format_sa((const struct sockaddr *)&un, NULL, out, sizeof(out)), BFTNET_EINVAL);
}

typedef struct maddr_bad {
  const char *in;
  const char *err; /* must appear in errbuf */
} maddr_bad_t;

static const maddr_bad_t maddr_bads[] = {
    {"", "empty"},
    {"ip4/1.2.3.4/tcp/1", "start with '/'"},
    {"/", "empty component"},
    {"/dns4/example.com/tcp/80", "unsupported protocol 'dns4'"},
    {"/dns/example.com/tcp/80", "unsupported protocol 'dns'"},
    {"/unix/tmp/sock", "unsupported protocol 'unix'"},
    {"/tcp/80", "unexpected '/tcp'"},
    {"/p2p/" PEER, "unexpected '/p2p'"},
    {"/ip4", "missing value after '/ip4'"},
    {"/ip4/", "empty component"},
    {"/ip4/1.2.3", "bad ip4 address '1.2.3'"},
    {"/ip4/1.2.3.256/tcp/1", "bad ip4 address '1.2.3.256'"},
    {"/ip4/01.2.3.4/tcp/1", "bad ip4 address '01.2.3.4'"},
    {"/ip4/::1/tcp/1", "bad ip4 address '::1'"},
    {"/ip6/1.2.3.4/tcp/1", "bad ip6 address '1.2.3.4'"},
    {"/ip6/::1%eth0/tcp/1", "bad ip6 address '::1%eth0'"},
    {"/ip6/1:2:3:4:5:6:7:8:9/tcp/1", "bad ip6 address"},
    {"/ip4/1.2.3.4", "missing '/tcp'"},
    {"/ip4/1.2.3.4/udp/1", "unsupported protocol 'udp'"},
    {"/ip4/1.2.3.4/ip4/1.2.3.4", "unexpected '/ip4'"},
    {"/ip4/1.2.3.4/tcp", "missing value after '/tcp'"},
    {"/ip4/1.2.3.4/tcp/70000", "bad port '70000'"},
    {"/ip4/1.2.3.4/tcp/65536", "bad port '65536'"},
    {"/ip4/1.2.3.4/tcp/-1", "bad port '-1'"},
    {"/ip4/1.2.3.4/tcp/+1", "bad port '+1'"},
    {"/ip4/1.2.3.4/tcp/08", "bad port '08'"},
    {"/ip4/1.2.3.4/tcp/1a", "bad port '1a'"},
    {"/ip4/1.2.3.4/tcp/9999999999999999999999", "bad port"},
    {"/ip4/1.2.3.4/tcp/1/", "empty component"},
    {"/ip4/1.2.3.4/tcp/1//p2p", "empty component"},
    {"/ip4/1.2.3.4/tcp/1/ws", "unsupported protocol 'ws'"},
    {"/ip4/1.2.3.4/tcp/1/tcp/2", "unexpected '/tcp'"},
    {"/ip4/1.2.3.4/tcp/1/ipfs/" PEER, "unsupported protocol 'ipfs'"},
    {"/ip4/1.2.3.4/tcp/1/p2p", "missing value after '/p2p'"},
    {"/ip4/1.2.3.4/tcp/1/p2p/QmNotAPeerId", "bad peer ID 'QmNotAPeerId'"},
    {"/ip4/1.2.3.4/tcp/1/p2p/" PEER "0", "bad peer ID"},
    {"/ip4/1.2.3.4/tcp/1/p2p/" PEER "/", "empty component"},
    {"/ip4/1.2.3.4/tcp/1/p2p/" PEER "/p2p/" PEER, "unexpected '/p2p'"},
    {"/ip4/1.2.3.4/tcp/1/p2p/" PEER "/p2p-circuit", "unsupported protocol 'p2p-circuit'"},
    {"/ip4/1.2.3.4/tcp/1\x01", "bad port '1?'"},
};

static void test_maddr_hostile(void **state) {
  (void)state;
  for (size_t i = 0; i < BN_ARRAY_LEN(maddr_bads); i++) {
    maddr_t m;
    memset(&m, 0xa5, sizeof(m));
    maddr_t before = m;
    char err[160];
    assert_err(maddr_parse(maddr_bads[i].in, &m, err, sizeof(err)), BFTNET_EBADADDR);
    if (!strstr(err, maddr_bads[i].err))
      fail_msg("'%s': error '%s' lacks '%s'", maddr_bads[i].in, err, maddr_bads[i].err);
    assert_memory_equal(&m, &before, sizeof(m)); /* untouched on error */
    /* No errbuf, or a tiny one, is fine too. */
    assert_err(maddr_parse(maddr_bads[i].in, &m, NULL, 0), BFTNET_EBADADDR);
    char tiny[4];
    assert_err(maddr_parse(maddr_bads[i].in, &m, tiny, sizeof(tiny)), BFTNET_EBADADDR);
    assert_int_equal(strlen(tiny), 3);
  }
}

static void test_maddr_long_component(void **state) {
  (void)state;
  /* A huge component is quoted only in part. */
  char s[4096] = "/ip4/1.2.3.4/tcp/1/";
  size_t l = strlen(s);
  memset(s + l, 'x', sizeof(s) - l - 1);
  char err[256];
  maddr_t m;
  assert_err(maddr_parse(s, &m, err, sizeof(err)), BFTNET_EBADADDR);
  assert_non_null(strstr(err, "unsupported protocol 'xxxx"));
  assert_non_null(strstr(err, "...'"));
  assert_true(strlen(err) < 100);
}

static void test_maddr_truncated(void **state) {
  (void)state;
  /* Every prefix of a full address is either valid or cleanly rejected. */
  const char *full = "/ip4/127.0.0.1/tcp/9000/p2p/" PEER;
  char s[160];
  int ok = 0;
  for (size_t k = 0; k <= strlen(full); k++) {
    memcpy(s, full, k);
    s[k] = '\0';
    maddr_t m;
    char err[128];
    int rc = maddr_parse(s, &m, err, sizeof(err));
    if (rc == 0)
      ok++;
    else
      assert_err(rc, BFTNET_EBADADDR);
  }
  /* /tcp/9, /tcp/90, /tcp/900, /tcp/9000, and the full address. */
  assert_int_equal(ok, 5);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_maddr_roundtrip), cmocka_unit_test(test_maddr_fields),
      cmocka_unit_test(test_maddr_hostile),   cmocka_unit_test(test_maddr_long_component),
      cmocka_unit_test(test_maddr_truncated),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
