/*
 * mig_interop — bftnet against a js-libp2p 2.x peer on its STOCK yamux that
 * speaks stream migration (js_mig_peer.mjs, written from docs/PROTOCOL.md
 * §11 alone): migratable streams both ways through connection cuts
 * (resume) and a graceful migration (failback), with nothing lost,
 * duplicated or reordered, and bftnet_flush completing on both sides.
 *
 *   mig_interop JS_PEER_SCRIPT        (run by run_interop.sh js-migration)
 *
 * The js peer listens; bftnet (the pair's leader: its key is drawn until it
 * leads) reaches it through two fault proxies, A (most preferred) and B.
 * A refuses at first, so the pair starts on B. Messages flow both ways the
 * whole time. B is cut three times (every stream detaches and resumes on a
 * new connection through B); then A accepts, and bftnet's failback probe
 * migrates both streams there gracefully and closes the emptied connection
 * through B (GO_AWAY first); then A is cut twice. At the end both sides stop
 * sending and flush: bftnet_flush must return 0 (js confirmed everything)
 * and the js peer must see every byte it wrote confirmed by bftnet's
 * Confirms; each side must have received every message of the other, once,
 * in order. Exit 0 only if every check passed.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "bftnet.h"
#include "fault_proxy.h"
#include "identity.h"
#include "mig_core.h"
#include "th_msg.h"
#include "th_uvthread.h"

#define RATE 2000 /* messages per second from bftnet to js */

static int failures;
#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "mig_interop: FAIL: " __VA_ARGS__);                                          \
      fprintf(stderr, "  (%s:%d: %s)\n", __FILE__, __LINE__, #cond);                               \
      failures++;                                                                                  \
    }                                                                                              \
  } while (0)

static void sleep_ms(unsigned ms) {
  usleep(ms * 1000u);
}

/* ---------------------------------------------------------- the js peer */

static struct {
  pid_t pid;
  FILE *in; /* its stdin: commands */
  int out;  /* its stdout */
  pthread_t reader;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char addr[BFTNET_ADDR_MAX];
  char flushed[256];
  int errors;
  bool eof;
} js = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void *js_reader(void *arg) {
  (void)arg;
  FILE *f = fdopen(js.out, "r");
  char line[1024];
  while (f && fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = '\0';
    pthread_mutex_lock(&js.mu);
    /* A longer line is cut to the field (the precision says so to gcc). */
    if (strncmp(line, "ADDR ", 5) == 0)
      snprintf(js.addr, sizeof js.addr, "%.*s", (int)sizeof js.addr - 1, line + 5);
    else if (strncmp(line, "FLUSHED ", 8) == 0)
      snprintf(js.flushed, sizeof js.flushed, "%.*s", (int)sizeof js.flushed - 1, line + 8);
    else if (strncmp(line, "ERROR ", 6) == 0) {
      js.errors++;
      fprintf(stderr, "mig_interop: js peer: %s\n", line);
    }
    pthread_cond_broadcast(&js.cv);
    pthread_mutex_unlock(&js.mu);
  }
  pthread_mutex_lock(&js.mu);
  js.eof = true;
  pthread_cond_broadcast(&js.cv);
  pthread_mutex_unlock(&js.mu);
  if (f) fclose(f);
  return NULL;
}

static int js_spawn(const char *script) {
  int in[2], out[2];
  if (pipe(in) != 0 || pipe(out) != 0) return -1;
  js.pid = fork();
  if (js.pid < 0) return -1;
  if (js.pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[0]), close(in[1]), close(out[0]), close(out[1]);
    execlp("node", "node", script, (char *)NULL);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  js.in = fdopen(in[1], "w");
  js.out = out[0];
  return pthread_create(&js.reader, NULL, js_reader, NULL);
}

static void js_cmd(const char *cmd) {
  fprintf(js.in, "%s\n", cmd);
  fflush(js.in);
}

/* Waits (bounded) until buf (a field of js) is non-empty. */
static bool js_wait_field(const char *buf, uint64_t timeout_ms) {
  uint64_t deadline = th_now_ms() + timeout_ms;
  pthread_mutex_lock(&js.mu);
  while (!buf[0] && !js.eof && th_now_ms() < deadline) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 50 * 1000000L;
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_cond_timedwait(&js.cv, &js.mu, &ts);
  }
  bool ok = buf[0] != '\0';
  pthread_mutex_unlock(&js.mu);
  return ok;
}

/* ------------------------------------------------------- the proxies */

/* The proxies live on a loop thread of the driver's own (th_uvthread). */
static th_uvthread_t px;

typedef struct px_arg {
  fault_proxy_t *p;
  const char *target;
  char via[BFTNET_ADDR_MAX]; /* /ip4/127.0.0.1/tcp/PORT */
  int on, rc;
} px_arg_t;

static void do_new(void *arg) {
  px_arg_t *a = arg;
  struct sockaddr_storage lis, tgt, bound;
  a->rc = fault_proxy_addr_parse("127.0.0.1:0", &lis);
  if (a->rc == 0) a->rc = fault_proxy_addr_parse(a->target, &tgt);
  fault_proxy_opts_t o = {.seed = 1, .queue_max = 8u << 20};
  if (a->rc == 0)
    a->rc =
        fault_proxy_create(&px.loop, (struct sockaddr *)&lis, (struct sockaddr *)&tgt, &o, &a->p);
  if (a->rc == 0) a->rc = fault_proxy_bound_addr(a->p, &bound);
  if (a->rc == 0) snprintf(a->via, sizeof a->via, "/ip4/127.0.0.1/tcp/%d", fault_proxy_port(a->p));
}
static void do_cut(void *arg) {
  px_arg_t *a = arg;
  a->rc = fault_proxy_cut(a->p);
}
static void do_refuse(void *arg) {
  px_arg_t *a = arg;
  a->rc = fault_proxy_refuse(a->p, a->on);
}
static void do_close(void *arg) {
  fault_proxy_close(((px_arg_t *)arg)->p, NULL, NULL);
}

/* ----------------------------------------------------------- bftnet */

static bftnet_t *net;
static atomic_int ev_resumed, ev_failback, ev_aborted, ev_detached, ev_migrated;
static atomic_bool stop_send, stop_recv;
static uint64_t sent_to_js;        /* sender thread */
static _Atomic uint64_t recv_last; /* receiver thread: last seq from js */
static _Atomic uint64_t recv_bad;  /* gaps, duplicates, reorders, foreign */

static void on_event(const bftnet_event_t *ev, void *user) {
  (void)user;
  switch (ev->type) {
  case BFTNET_EV_RESUMED:
    atomic_fetch_add(&ev_resumed, 1);
    break;
  case BFTNET_EV_DETACHED:
    atomic_fetch_add(&ev_detached, 1);
    break;
  case BFTNET_EV_MIGRATED:
    atomic_fetch_add(&ev_migrated, 1);
    if (ev->mig_reason == BFTNET_MIG_FAILBACK) atomic_fetch_add(&ev_failback, 1);
    break;
  case BFTNET_EV_ABORTED:
    atomic_fetch_add(&ev_aborted, 1);
    fprintf(stderr, "mig_interop: stream %llu aborted: %s (lost %llu)\n",
            (unsigned long long)ev->stream_id, ev->mig_abort ? ev->mig_abort : "?",
            (unsigned long long)ev->lost);
    break;
  default:
    break;
  }
}

static void *sender_main(void *arg) {
  (void)arg;
  uint8_t buf[64];
  while (!atomic_load(&stop_send)) {
    for (int i = 0; i < RATE / 200; i++) {
      uint64_t seq = sent_to_js + 1;
      th_msg_fill(buf, seq);
      if (bftnet_send(net, "js", buf, th_msg_len(seq)) == 0) sent_to_js = seq;
    }
    sleep_ms(5);
  }
  return NULL;
}

static void *receiver_main(void *arg) {
  (void)arg;
  bftnet_msg_t msgs[64];
  while (!atomic_load(&stop_recv)) {
    int k = bftnet_recv_batch(net, msgs, 64, 50);
    for (int i = 0; i < k; i++) {
      uint64_t seq = th_msg_seq(msgs[i].data, msgs[i].len);
      bool ok = strcmp(msgs[i].from, "js") == 0 && seq == atomic_load(&recv_last) + 1 &&
                th_msg_check(msgs[i].data, msgs[i].len, seq);
      if (ok)
        atomic_store(&recv_last, seq);
      else if (atomic_fetch_add(&recv_bad, 1) < 5)
        fprintf(stderr,
                "mig_interop: js -> bftnet: message %llu after %llu (loss, duplicate or reorder)\n",
                (unsigned long long)seq, (unsigned long long)atomic_load(&recv_last));
      bftnet_msg_release(&msgs[i]);
    }
  }
  return NULL;
}

static uint64_t counter(bftnet_counter_id_t id) {
  return bftnet_counter(net, id);
}

/* Waits up to ms for *v to reach at least want. */
static bool wait_atomic(atomic_int *v, int want, uint64_t ms) {
  uint64_t deadline = th_now_ms() + ms;
  while (atomic_load(v) < want && th_now_ms() < deadline)
    sleep_ms(10);
  return atomic_load(v) >= want;
}

static bool wait_recv(uint64_t want, uint64_t ms) {
  uint64_t deadline = th_now_ms() + ms;
  while (atomic_load(&recv_last) < want && th_now_ms() < deadline)
    sleep_ms(10);
  return atomic_load(&recv_last) >= want;
}

/* A cut of proxy p: the connection through it dies; both streams detach
 * and resume on the next connection through the proxy that accepts. */
static void cut_and_resume(px_arg_t *p, const char *name) {
  int resumed = atomic_load(&ev_resumed);
  uint64_t got = atomic_load(&recv_last);
  th_uvthread_call(&px, do_cut, p);
  CHECK(p->rc >= 1, "cut of %s hit no connection\n", name);
  /* bftnet resumes its own stream and the js peer's (both detached). */
  CHECK(wait_atomic(&ev_resumed, resumed + 2, 10000), "no resume after the cut of %s\n", name);
  CHECK(wait_recv(got + 200, 10000), "js's messages did not flow again after the cut of %s\n",
        name);
  fprintf(stderr, "mig_interop: cut %s: resumed (%d resumes so far)\n", name,
          atomic_load(&ev_resumed));
  sleep_ms(300);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: mig_interop JS_PEER_SCRIPT\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  if (js_spawn(argv[1]) != 0) return 1;
  if (!js_wait_field(js.addr, 20000)) {
    fprintf(stderr, "mig_interop: the js peer printed no address\n");
    return 1;
  }
  fprintf(stderr, "mig_interop: js peer at %s\n", js.addr);
  const char *p2p = strstr(js.addr, "/p2p/");
  const char *tcp = strstr(js.addr, "/tcp/");
  if (!p2p || !tcp) return 1;
  peerid_t js_id;
  if (peerid_from_string(p2p + 5, strlen(p2p + 5), &js_id) != 0) return 1;
  char target[64];
  snprintf(target, sizeof target, "127.0.0.1:%d", atoi(tcp + 5));

  /* The proxies: A (preferred) refuses at first, B carries the pair. */
  if (th_uvthread_start(&px) != 0) return 1;
  px_arg_t A = {.target = target}, B = {.target = target};
  th_uvthread_call(&px, do_new, &A);
  th_uvthread_call(&px, do_new, &B);
  if (A.rc || B.rc) return 1;
  A.on = 1;
  th_uvthread_call(&px, do_refuse, &A);

  /* bftnet's key: drawn until bftnet leads the pair (§11.4). */
  bftnet_key_t *key = NULL;
  for (int i = 0; i < 256; i++) {
    if (bftnet_key_generate(&key) != 0) return 1;
    if (mig_self_is_leader(&key->id, &js_id)) break;
    bftnet_key_free(key);
    key = NULL;
  }
  if (!key) return 1;
  bftnet_config_t cfg;
  bftnet_config_init(&cfg);
  cfg.key = key;
  cfg.on_event = on_event;
  cfg.ping_interval_ms = 500;
  cfg.ping_timeout_ms = 3000;
  cfg.dial_backoff_min_ms = 20;
  cfg.dial_backoff_max_ms = 200;
  cfg.failback_ms = 400;
  cfg.ring_capacity = 1u << 17; /* nothing overflows while a stream is detached */
  cfg.log_level = getenv("MIG_INTEROP_LOG") ? atoi(getenv("MIG_INTEROP_LOG")) : 1;
  if (bftnet_new(&net, &cfg) != 0) return 1;
  char own[BFTNET_ADDR_MAX], viaA[BFTNET_ADDR_MAX + 64], viaB[BFTNET_ADDR_MAX + 64];
  if (bftnet_listen(net, "/ip4/127.0.0.1/tcp/0", own, sizeof own) != 0) return 1;
  snprintf(viaA, sizeof viaA, "%s%s", A.via, p2p);
  snprintf(viaB, sizeof viaB, "%s%s", B.via, p2p);
  const char *a_c[] = {own}, *a_js[] = {viaA, viaB};
  bftnet_member_t mem[] = {{"c", a_c, 1}, {"js", a_js, 2}};
  char err[256] = "";
  if (bftnet_connect(net, mem, 2, err, sizeof err) != 0) {
    fprintf(stderr, "mig_interop: bftnet_connect: %s\n", err);
    return 1;
  }
  pthread_t snd, rcv;
  pthread_create(&rcv, NULL, receiver_main, NULL);
  pthread_create(&snd, NULL, sender_main, NULL);

  /* Both streams up and flowing through B. */
  CHECK(wait_recv(500, 15000), "no messages from js\n");
  bftnet_peer_stats_t st;
  CHECK(bftnet_peer_stats(net, "js", &st) == 0 && st.connected, "bftnet not connected to js\n");

  for (int i = 0; i < 3; i++)
    cut_and_resume(&B, "B");

  /* A answers again: bftnet's failback moves both streams there
   * gracefully and closes the emptied connection through B. */
  A.on = 0;
  th_uvthread_call(&px, do_refuse, &A);
  CHECK(wait_atomic(&ev_failback, 2, 10000), "no graceful failback of both streams (%d)\n",
        atomic_load(&ev_failback));
  uint64_t deadline = th_now_ms() + 5000;
  while (counter(BFTNET_COUNTER_MIG_CONN_CLOSED_EMPTY) < 1 && th_now_ms() < deadline)
    sleep_ms(20);
  CHECK(counter(BFTNET_COUNTER_MIG_CONN_CLOSED_EMPTY) >= 1,
        "the emptied connection through B stayed\n");
  uint64_t got = atomic_load(&recv_last);
  CHECK(wait_recv(got + 200, 10000), "js's messages did not flow after the failback\n");
  fprintf(stderr, "mig_interop: failback to A done\n");

  for (int i = 0; i < 2; i++)
    cut_and_resume(&A, "A");

  /* Stop, flush both sides, compare. */
  atomic_store(&stop_send, true);
  pthread_join(snd, NULL);
  js_cmd("stop");
  int frc = bftnet_flush(net, 20000);
  CHECK(frc == 0, "bftnet_flush: %s (js did not confirm everything)\n", bftnet_strerror(frc));
  js_cmd("flush");
  CHECK(js_wait_field(js.flushed, 25000), "the js peer did not flush\n");
  unsigned long long js_sent = 0, js_recv = 0, js_mig = 0, js_res = 0, js_err = 1;
  if (sscanf(js.flushed, "sent=%llu recv=%llu migrations=%llu resumes=%llu errors=%llu", &js_sent,
             &js_recv, &js_mig, &js_res, &js_err) != 5)
    CHECK(false, "cannot parse the js peer's summary '%s'\n", js.flushed);
  CHECK(wait_recv(js_sent, 10000), "bftnet received %llu of js's %llu messages\n",
        (unsigned long long)atomic_load(&recv_last), js_sent);
  atomic_store(&stop_recv, true);
  pthread_join(rcv, NULL);

  CHECK(js_err == 0 && js.errors == 0, "the js peer reported %llu errors\n", js_err);
  CHECK(js_recv == sent_to_js, "js received up to %llu of bftnet's %llu messages\n", js_recv,
        (unsigned long long)sent_to_js);
  CHECK(atomic_load(&recv_last) == js_sent, "bftnet received up to %llu of %llu\n",
        (unsigned long long)atomic_load(&recv_last), js_sent);
  CHECK(atomic_load(&recv_bad) == 0, "%llu messages from js out of order\n",
        (unsigned long long)atomic_load(&recv_bad));
  CHECK(js_mig >= 2, "the js peer saw %llu graceful migrations, want 2\n", js_mig);
  CHECK(js_res >= 10, "the js peer answered %llu resumes, want 10 (5 cuts, 2 streams)\n", js_res);
  CHECK(bftnet_peer_stats(net, "js", &st) == 0, "no stats\n");
  CHECK(st.dropped_overflow == 0 && st.aborted == 0 && st.unconfirmed == 0,
        "dropped %llu aborted %llu unconfirmed %llu\n", (unsigned long long)st.dropped_overflow,
        (unsigned long long)st.aborted, (unsigned long long)st.unconfirmed);
  CHECK(atomic_load(&ev_aborted) == 0, "%d streams aborted\n", atomic_load(&ev_aborted));
  CHECK(counter(BFTNET_COUNTER_MIG_BAD_CREDIT) == 0, "bad_credit counted\n");
  CHECK(counter(BFTNET_COUNTER_MIG_BAD_CONFIRM) == 0, "bad_confirm counted\n");
  CHECK(counter(BFTNET_COUNTER_MIG_LEGACY_PEERS) == 0, "js taken for an older peer\n");
  CHECK(counter(BFTNET_COUNTER_MIG_BAD_MESSAGE) == 0, "bad StreamMigration messages from js\n");
  fprintf(stderr,
          "mig_interop: bftnet sent %llu, js sent %llu; %d migrations (%d failback), %d detached, "
          "%d resumed; "
          "js: %llu graceful, %llu resumes; %d failures\n",
          (unsigned long long)sent_to_js, js_sent, atomic_load(&ev_migrated),
          atomic_load(&ev_failback), atomic_load(&ev_detached), atomic_load(&ev_resumed), js_mig,
          js_res, failures);

  bftnet_free(net); /* GO_AWAY to js, then close */
  js_cmd("exit");
  int status = 0;
  for (int i = 0; i < 100 && waitpid(js.pid, &status, WNOHANG) == 0; i++)
    sleep_ms(100);
  if (waitpid(js.pid, &status, WNOHANG) == 0) {
    kill(js.pid, SIGKILL);
    waitpid(js.pid, &status, 0);
    CHECK(false, "the js peer did not exit\n");
  }
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the js peer exited with status %d\n",
        status);
  pthread_join(js.reader, NULL);
  th_uvthread_call(&px, do_close, &A);
  th_uvthread_call(&px, do_close, &B);
  (void)th_uvthread_stop(&px);
  bftnet_key_free(key);
  fprintf(stderr, "mig_interop: %s\n", failures ? "FAIL" : "PASS");
  return failures ? 1 : 0;
}
