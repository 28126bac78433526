/*
 * net_internal.h — the structures and functions the files of net/src share.
 *
 * The files call each other in one direction only (a DAG), top to bottom:
 *
 *   net.c          the net_t object: listeners, dialing, the connection list
 *   ping.c         /ipfs/ping/1.0.0: responder and keepalive
 *   stream.c       yamux streams with multistream-select; protocol handlers
 *   conn_in.c      a connection's socket events and its input framing
 *   conn_upgrade.c multistream-select, the Noise handshake, muxer selection
 *   conn.c         a connection's lifecycle and its output
 *
 * (tcp_uv.c, the libuv seam, is reached through bn_transport_t only.)
 * Where a lower file must reach a higher one (a connection is up or torn
 * down, a yamux stream event), it calls a hook in net_t.hooks, which the
 * higher files fill in net_new. Functions shared between files are named
 * net__<file>_<verb> and declared below, grouped by the file defining them.
 */
#ifndef BFTNET_NET_INTERNAL_H
#define BFTNET_NET_INTERNAL_H

#include "identity.h"
#include "net.h"
#include "noise.h"
#include "yamux.h"

#define NET_MAX_HANDLERS      16
#define NET_MAX_LISTENERS     8
#define NET_MAX_PINGS         16 /* outstanding pings per connection */
#define NET_MAX_PENDING_DIALS 64
#define NET_NOISE_FRAME_HDR   2u /* a Noise frame's big-endian length prefix */
#define NET_RTT_WINDOW        8u /* keepalive round trips whose maximum is reported */

typedef struct net_handler {
  char proto[BN_MS_MAX_MSG];
  net_proto_open_cb cb;
  void *ud;
} net_handler_t;

/* Connection state machine (one enum): the upgrade's events are in
 * conn_upgrade.c, DIALING's end in conn_in.c, CLOSING in conn.c. */
typedef enum conn_state {
  CONN_DIALING = 0, /* TCP connect in flight */
  CONN_MS_SEC,      /* multistream-select of /noise, in the clear */
  CONN_NOISE,       /* Noise XX handshake messages */
  CONN_MS_MUX,      /* multistream-select of /yamux/1.0.0, encrypted */
  CONN_READY,       /* yamux session up */
  CONN_CLOSING      /* torn down; waiting for the socket's close callback */
} conn_state_t;

typedef struct ping_slot {
  uint8_t payload[BN_PING_SIZE];
  uint64_t sent_ns;
  net_ping_cb cb; /* NULL for a keepalive */
  void *ud;
} ping_slot_t;

typedef struct pending_done {
  net_dial_cb cb;
  void *ud;
  net_conn_t *conn;
  int err;
} pending_done_t;

struct net_conn {
  net_t *net;
  net_conn_t *prev, *next;
  conn_state_t state;
  bool outbound;
  uint64_t seq;
  bool counted_pending; /* counts against max_pending_handshakes */
  bn_tsock_t *sock;
  struct sockaddr_storage remote_sa;
  bool expect_peer;
  peerid_t expected;
  peerid_t peer;
  char peer_str[BFTNET_PEER_ID_MAX];
  net_dial_cb dial_cb; /* outbound: completes once */
  void *dial_ud;
  bftnet_reason_t down_reason;
  bool was_ready;
  int down_err;

  /* upgrade */
  bn_buf_t in;    /* received bytes not yet framed */
  bn_buf_t ms_in; /* decrypted bytes during CONN_MS_MUX */
  bool ms_header_seen;
  bool ms_header_sent;
  unsigned ms_proposals;
  noise_hs_t *hs;
  noise_cipher_t tx, rx;

  /* output: sealed Noise frames, then one open frame at frame_start */
  bn_buf_t out;
  size_t frame_start;
  bool frame_open;
  bool flush_queued;
  bool urgent; /* a window update or ping answer waits in out: flush
                   after this read, not after the loop's whole turn */
  net_conn_t *flush_next;

  yamux_session_t *ymx;
  uint64_t ymx_refused; /* yamux's refused-stream count already added to counters */
  int in_feed;          /* > 0 while inside yamux_session_feed */
  bool teardown_pending;

  bn_ttimer_t *hs_timer;
  bn_ttimer_t *ping_timer;
  net_stream_t *ping_stream;
  bool ping_opening;
  ping_slot_t pings[NET_MAX_PINGS];
  unsigned ping_head, ping_count;
  uint64_t last_ping_ns;
  uint8_t pong_buf[BN_PING_SIZE];
  size_t pong_len;

  /* health (net_conn_health): conn_upgrade.c sets up_ns, conn_in.c
   * last_rx_ns, ping.c the round trips */
  uint64_t up_ns, last_rx_ns;
  uint64_t rtt_last_ns, rtt_srtt_ns;
  uint64_t rtt_win[NET_RTT_WINDOW]; /* the last round trips, rtt_n % window next */
  uint32_t rtt_n;
  bool goaway_rcvd;  /* the peer sent GO_AWAY (normal termination), or is going away */
  bool goaway_frame; /* the peer sent GO_AWAY (normal termination) on this one */

  /* the in-flight cap (conn.c, net__conn_cap_room) */
  bn_ttimer_t *cap_timer; /* re-checks while streams wait above the cap */
  bool cap_armed;
  uint64_t cap_armed_ns; /* when the re-check was armed */
  uint64_t recheck_ns;   /* how long re-checks took, averaged (0: none yet) */
  uint64_t inflight, inflight_max, inflight_cap;
  uint64_t tx_handed;           /* bytes handed to the transport's write, ever */
  uint64_t inflight_handed;     /* tx_handed when `inflight` was read */
  uint64_t rate[2];             /* bytes/s acknowledged over the last span, the one before */
  uint64_t span_ns, span_acked; /* where the current span began: when, acknowledged bytes */
  uint64_t info_ns;             /* when the kernel's counts were last read */
  uint32_t min_rtt_us;
  uint32_t mss;        /* the kernel's segment size (0: unknown) */
  uint32_t recheck_us; /* the re-check period (0: not set yet) */

  net_stream_t *congested_head; /* streams parked until the output drains */
  net_stream_t *waking_head;    /* the parked list being woken right now */
  void *user;
  bn_ratelimit_t rl;
};

typedef enum ns_state {
  NS_PROPOSING = 0, /* outbound: proposal sent, waiting for the echo */
  NS_LISTENING,     /* inbound: waiting for a proposal we support */
  NS_READY,         /* protocol agreed */
  NS_DEAD           /* reset / refused / connection gone */
} ns_state_t;

struct net_stream {
  net_conn_t *conn;
  yamux_stream_t *ys;
  ns_state_t state;
  bool header_seen;
  bool header_sent;
  unsigned proposals;
  size_t pre_out; /* bytes we wrote before the protocol was agreed */
  char proto[BN_MS_MAX_MSG];
  bn_buf_t pre; /* bytes received before the handler took over */
  net_stream_cbs_t cbs;
  void *ud;
  bool congested; /* waiting for the connection to drain */
  uint8_t prio;   /* parked streams go on in this order (lower first) */
  net_stream_t *congested_next;
};

/* How conn*.c reaches the files above it. Filled in net_new by the files
 * that handle each event (net__conn_register, net__stream_register,
 * net__ping_register); conn*.c calls them through these pointers only. */
typedef struct net_hooks {
  /* Copied into every yamux session: conn.c's output and stream.c's
   * stream events (one indirect call per yamux event, as any callback). */
  yamux_cbs_t ymx;
  /* ping.c: the upgrade completed; start the keepalive. */
  void (*conn_ready)(net_conn_t *c);
  /* ping.c: the connection is being torn down; stop the keepalive and
   * fail the pings in flight with err. */
  void (*conn_down)(net_conn_t *c, int err);
} net_hooks_t;

struct net {
  bn_transport_t *t;
  const struct bftnet_key *key;
  net_config_t cfg;
  net_cbs_t cbs;
  void *ud;
  bn_counters_t *ctr;
  uint8_t static_priv[NOISE_DHLEN];
  uint8_t static_pub[NOISE_DHLEN];
  uint8_t payload[512]; /* our libp2p handshake payload (signed once) */
  size_t payload_len;
  uint64_t conn_seq; /* creation counter (net_conn_seq) */
  net_hooks_t hooks;
  net_handler_t handlers[NET_MAX_HANDLERS];
  unsigned nhandlers;
  bn_tlistener_t *listeners[NET_MAX_LISTENERS];
  unsigned nlisteners;
  net_conn_t *conns; /* every connection not yet closed */
  unsigned nconns;
  unsigned npending;   /* inbound connections not yet authenticated */
  unsigned live_socks; /* sockets whose close callback has not run */
  net_conn_t *flush_list;
  pending_done_t done[NET_MAX_PENDING_DIALS];
  unsigned ndone;
  bool closing;
  const peerid_t *dial_actual; /* during a dial callback for BFTNET_EPEERMISMATCH */
  void (*close_done)(void *ud);
  void *close_ud;
  bn_ratelimit_t rl;
};

/* conn.c: lifecycle and output */
/* Allocates a connection on sock, links it into n->conns and starts the
 * handshake timer. The socket's callbacks are set by net__conn_in_start. */
net_conn_t *net__conn_new(net_t *n, bn_tsock_t *sock, bool outbound);
/* Ends the connection (once; later calls do nothing): counts counter
 * (BFTNET_COUNTER_COUNT for none), logs, and tears it down now or, while
 * a yamux call is on the stack (c->in_feed > 0), from the flush pass. */
void net__conn_fail(net_conn_t *c, bftnet_reason_t reason, int err, bftnet_counter_id_t counter);
void net__conn_oom(net_conn_t *c);
/* The teardown net__conn_fail deferred (c->teardown_pending). */
void net__conn_teardown(net_conn_t *c);
/* Fills conn.c's part of n->hooks.ymx (the frames a session sends). */
void net__conn_register(net_t *n);
/* Cleartext bytes (before Noise is established), flushed at the loop's turn. */
void net__conn_out_raw(net_conn_t *c, const void *p, size_t n);
/* a then b appended to the open Noise frame, flushed at the loop's turn. */
void net__conn_out_secure(net_conn_t *c, const uint8_t *a, size_t alen, const uint8_t *b,
                          size_t blen);
/* Writes the output now; all: even while the previous write is in flight. */
void net__conn_flush(net_conn_t *c, bool all);
bool net__conn_congested(const net_conn_t *c);
/* The bytes a stream of priority > 0 may write now under the in-flight
 * cap: SIZE_MAX without a cap, 0 to wait (a re-check is armed). */
size_t net__conn_cap_room(net_conn_t *c);
/* Parks s until the connection's output drains (then s's on_writable),
 * once; unpark takes it off again (s is being freed). */
void net__conn_park(net_conn_t *c, net_stream_t *s);
void net__conn_unpark(net_conn_t *c, net_stream_t *s);
/* Socket events handled here (conn_in.c's table names them). */
void net__conn_on_drain(void *ud);
void net__conn_on_close(void *ud);

/* conn_upgrade.c: multistream-select, Noise XX, muxer selection */
/* Outbound, TCP connected: header and /noise proposal, pipelined. */
void net__conn_upgrade_begin(net_conn_t *c);
/* One multistream message in CONN_MS_SEC. Returns < 0 after failing c. */
int net__conn_upgrade_sec_msg(net_conn_t *c, const char *text, size_t len);
/* One Noise handshake message in CONN_NOISE (msg writable, len <= 65535). */
void net__conn_upgrade_noise_msg(net_conn_t *c, uint8_t *msg, size_t len);
/* Plaintext in CONN_MS_MUX. Once the muxer is agreed (state READY), bytes
 * pipelined behind the selection wait in c->ms_in for the caller. */
void net__conn_upgrade_mux_plain(net_conn_t *c, const uint8_t *p, size_t n);

/* conn_in.c: socket events and input */
/* Gives c's socket its callbacks; an inbound connection starts reading. */
void net__conn_in_start(net_conn_t *c);

/* stream.c */
/* Fills stream.c's part of n->hooks.ymx (the stream events). */
void net__stream_register(net_t *n);
/* A write that ignores connection congestion (pings only). */
int net__stream_write_uncongested(net_stream_t *s, const uint8_t *p, size_t n);

/* ping.c */
/* Serves /ipfs/ping/1.0.0 and fills n->hooks.conn_ready / conn_down. */
int net__ping_register(net_t *n);

#endif
