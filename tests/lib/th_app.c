/* th_app.c — see th_app.h. */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "th_app.h"

void th_app_start(th_app_t *n, int i, const bftnet_config_t *cfg_in, bool keep) {
  if (!keep) {
    memset(n, 0, sizeof *n);
    assert_ok(bftnet_key_generate(&n->key));
  }
  bftnet_config_t cfg = *cfg_in;
  cfg.key = n->key;
  assert_ok(bftnet_new(&n->net, &cfg));
  snprintf(n->id, sizeof n->id, "r%u", (unsigned)i & 0xffu);
  /* Back on the same address: the listen address is ours without /p2p/. */
  char listen[BFTNET_ADDR_MAX] = "/ip4/127.0.0.1/tcp/0";
  const char *p2p = keep ? strstr(n->addr, "/p2p/") : NULL;
  if (p2p) snprintf(listen, sizeof listen, "%.*s", (int)(p2p - n->addr), n->addr);
  assert_ok(bftnet_listen(n->net, listen, n->addr, sizeof n->addr));
  n->addrs[0] = n->addr;
}

void th_app_stop(th_app_t *n) {
  bftnet_free(n->net);
  bftnet_key_free(n->key);
  n->net = NULL;
  n->key = NULL;
}

void th_app_crash(th_app_t *n) {
  bftnet_free(n->net);
  n->net = NULL;
}

void th_app_connect(th_app_t *n, const th_app_t *nodes, const int *idx, int k) {
  bftnet_member_t m[TH_APP_MAX];
  assert_true(k >= 0 && k <= TH_APP_MAX);
  for (int j = 0; j < k; j++)
    m[j] =
        (bftnet_member_t){.node_id = nodes[idx[j]].id, .addrs = nodes[idx[j]].addrs, .naddrs = 1};
  char err[256] = "";
  int rc = bftnet_connect(n->net, m, (size_t)k, err, sizeof err);
  if (rc) fail_msg("connect: %s: %s", bftnet_err_name(rc), err);
}

void th_app_connect_all(th_app_t *nodes, int k) {
  int idx[TH_APP_MAX];
  assert_true(k >= 0 && k <= TH_APP_MAX);
  for (int j = 0; j < k; j++)
    idx[j] = j;
  for (int i = 0; i < k; i++)
    th_app_connect(&nodes[i], nodes, idx, k);
}
