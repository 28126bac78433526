/* embed — a complete replica in one file: what a program that embeds bftnet does.
 *
 *   embed ME KEY LISTEN PEER PEER_ADDR [COUNT [DEADLINE_MS]]
 *
 *   ME, PEER    node IDs: the application's names for the two replicas (r0, r1)
 *   KEY         this replica's identity, made by `bftnet-keygen KEY`
 *   LISTEN      where it listens, e.g. /ip4/127.0.0.1/tcp/9000
 *   PEER_ADDR   where PEER listens, ending in /p2p/<PEER's peer ID>
 *               (`bftnet-keygen --show PEER_KEY` prints that ID)
 *   COUNT       messages to send to PEER and to expect from it (default 100)
 *   DEADLINE_MS how long to wait for them (default 10000)
 *
 * Run it twice, one per replica, in any order and at any time apart within
 * the deadline: each sends COUNT numbered messages to the other, receives the
 * other's COUNT (checking their order), waits until the peer has confirmed
 * reading its own (bftnet_flush), then stops. It prints
 * "ME: sent COUNT, received N from PEER, flushed" and exits 0 when N == COUNT
 * and the flush completed; 1 otherwise, 2 on bad usage, 3 if LISTEN cannot be
 * bound.
 *
 * It uses the public API only (include/bftnet.h) and checks every result.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bftnet.h>

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int fail(const char *me, const char *what, int rc) {
  fprintf(stderr, "%s: %s: %s (%s)\n", me, what, bftnet_strerror(rc), bftnet_err_name(rc));
  return 1;
}

/* The peer's messages are "<PEER> <n>" with n = 1, 2, ...: checks the next one. */
static int expected(const bftnet_msg_t *m, const char *peer, int n) {
  char want[BFTNET_NODE_ID_MAX + 16];
  int len = snprintf(want, sizeof want, "%s %d", peer, n);
  return strcmp(m->from, peer) == 0 && m->len == (size_t)len && memcmp(m->data, want, m->len) == 0;
}

static long arg_long(const char *s, long min, long max) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  return (errno || *end || end == s || v < min || v > max) ? -1 : v;
}

/* Long on purpose: the README shows its core, straight-line, as an application would write it. */
int main(int argc, char **argv) {
  if (argc < 6 || argc > 8) {
    fprintf(stderr, "usage: embed ME KEY LISTEN PEER PEER_ADDR [COUNT [DEADLINE_MS]]\n");
    return 2;
  }
  const char *me = argv[1], *key_file = argv[2], *listen_addr = argv[3];
  const char *peer = argv[4], *peer_addr = argv[5];
  long count = argc > 6 ? arg_long(argv[6], 1, 1000000) : 100;
  long deadline_ms = argc > 7 ? arg_long(argv[7], 1, 3600000) : 10000;
  if (count < 0 || deadline_ms < 0) {
    fprintf(stderr, "%s: COUNT must be 1..1000000 and DEADLINE_MS 1..3600000\n", me);
    return 2;
  }
  int64_t deadline = now_ms() + deadline_ms;
  int status = 1;

  /* [embed-core] */
  bftnet_key_t *key;
  int rc = bftnet_key_load(key_file, &key); /* made by: bftnet-keygen r0.key */
  if (rc != 0) return fail(me, key_file, rc);

  bftnet_config_t cfg;
  bftnet_config_init(&cfg); /* every default; then set what you need */
  cfg.key = key;
  bftnet_t *net;
  rc = bftnet_new(&net, &cfg); /* starts the node's own loop thread */
  if (rc != 0) {
    bftnet_key_free(key);
    return fail(me, "bftnet_new", rc);
  }

  /* Listen before joining: members dial us here. /ip4/0.0.0.0/tcp/9000
   * listens on every interface, but it is not an address others can dial:
   * they need this machine's real address, as in PEER_ADDR. */
  char bound[BFTNET_ADDR_MAX];
  rc = bftnet_listen(net, listen_addr, bound, sizeof bound);
  if (rc != 0) {
    status = fail(me, listen_addr, rc);
    if (rc == -EADDRINUSE) status = 3; /* another process has that port */
    goto out;
  }
  printf("%s: listening on %s\n", me, bound);

  /* The membership: every member's node ID and addresses, each ending in
   * /p2p/<its peer ID>. Our own entry is optional (bftnet recognizes it by
   * its peer ID); listing the same table on every replica is the usual way. */
  const char *peer_addrs[] = {peer_addr};
  bftnet_member_t members[] = {{peer, peer_addrs, 1}};
  char err[256];
  rc = bftnet_connect(net, members, 1, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "%s: bftnet_connect: %s\n", me, err);
    goto out;
  }

  /* Sending never blocks and works before the peer is up: messages wait in
   * the member's ring while bftnet dials it (and redials, with backoff). */
  for (int i = 1; i <= count; i++) {
    char msg[BFTNET_NODE_ID_MAX + 16];
    int len = snprintf(msg, sizeof msg, "%s %d", me, i);
    rc = bftnet_send(net, peer, msg, (size_t)len);
    if (rc != 0) {
      fail(me, "bftnet_send", rc);
      goto out;
    }
  }

  /* Receive until we have every message or the deadline passes; silence
   * alone means nothing (the peer may not have started yet). */
  int received = 0, in_order = 1;
  while (received < count) {
    int64_t left = deadline - now_ms();
    if (left <= 0) break;
    bftnet_msg_t m;
    rc = bftnet_recv(net, &m, (int)left);
    if (rc == BFTNET_ETIMEDOUT) break;
    if (rc != 0) {
      fail(me, "bftnet_recv", rc);
      goto out;
    }
    if (!expected(&m, peer, received + 1)) in_order = 0;
    received++;
    bftnet_msg_release(&m);
  }

  /* Before stopping: wait until the peer has read everything we sent. */
  int64_t left = deadline - now_ms();
  rc = bftnet_flush(net, left > 1000 ? (int)left : 1000);
  if (rc != 0) fail(me, "bftnet_flush", rc);
  printf("%s: sent %ld, received %d from %s%s, %s\n", me, count, received, peer,
         in_order ? "" : " (OUT OF ORDER)", rc == 0 ? "flushed" : "NOT flushed");
  if (rc == 0 && received == count && in_order) status = 0;

out:
  rc = bftnet_stop(net); /* closes gracefully, joins the loop thread */
  if (rc != 0) status = fail(me, "bftnet_stop", rc);
  bftnet_free(net);
  bftnet_key_free(key);
  /* [/embed-core] */
  return status;
}
