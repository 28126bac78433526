/*
 * metrics.c — bftnet_metrics_text: the node's counters and every member's
 * statistics and health in the Prometheus text exposition format (0.0.4).
 *
 * Conventions: every name starts with bftnet_; counters end in _total;
 * values are in base units (seconds, bytes); every family has one HELP and
 * one TYPE line and its samples follow them together. Labels come from the
 * membership only: peer="<node ID>" (and, per connection, the index of the
 * member's address it dialed), never from a peer that has not been
 * authenticated as a member, so no one outside the membership can make the
 * set of series grow.
 *
 * The renderer is a table walk: node_fams (the counters, from
 * BFTNET_COUNTER_MAP: a counter added to the map appears here without
 * more code), member_fams (one sample per member and family) and, with
 * two or more traffic classes, class_fams (one sample per member, class
 * and family, labelled class="<name>" from the configuration; a node
 * without classes renders exactly the series it did before classes) and
 * total_fams (one sample per class: what the node lost of the classes'
 * received messages outside any member's statistics).
 *
 * Consistency: the members' statistics are copied inside one epoch section
 * (each value an atomic load), then rendered outside it.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include "node_internal.h"

/* ---------------------------------------------------------- the output */

/* Text appended into buf while it fits; len counts what the whole text
 * needs, so a short buffer still learns the size to ask for. */
typedef struct out {
  char *buf;
  size_t cap, len;
} out_t;

__attribute__((format(printf, 2, 3))) static void put(out_t *o, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t room = o->len < o->cap ? o->cap - o->len : 0;
  int n = vsnprintf(room ? o->buf + o->len : NULL, room, fmt, ap);
  va_end(ap);
  if (n > 0) o->len += (size_t)n;
}

/* A label value: backslash, double quote and newline escaped. */
static void put_label_value(out_t *o, const char *v) {
  for (; *v; v++) {
    if (*v == '\\')
      put(o, "\\\\");
    else if (*v == '"')
      put(o, "\\\"");
    else if (*v == '\n')
      put(o, "\\n");
    else
      put(o, "%c", *v);
  }
}

static void family(out_t *o, const char *name, const char *type, const char *help) {
  put(o, "# HELP bftnet_%s %s\n# TYPE bftnet_%s %s\n", name, help, name, type);
}

/* One sample: name{peer="...",class="...",extra} value. peer, klass and
 * extra may be NULL (extra: more labels, already escaped). */
static void sample(out_t *o, const char *name, const char *peer, const char *klass,
                   const char *extra, const char *value) {
  put(o, "bftnet_%s", name);
  if (peer || klass || extra) {
    const char *sep = "";
    put(o, "{");
    if (peer) put(o, "peer=\""), put_label_value(o, peer), put(o, "\""), sep = ",";
    if (klass) put(o, "%sclass=\"", sep), put_label_value(o, klass), put(o, "\""), sep = ",";
    if (extra) put(o, "%s%s", sep, extra);
    put(o, "}");
  }
  put(o, " %s\n", value);
}

/* ---------------------------------------------------- the node's series */

/* How a counter of BFTNET_COUNTER_MAP is exported: its name (after
 * bftnet_, before _total), its type and its help. A counter without an
 * entry is exported as bftnet_<bftnet_counter_name>_total. */
typedef struct node_fam {
  const char *name; /* NULL: the counter's own name */
  bool gauge;
  const char *help;
} node_fam_t;

static const node_fam_t node_fams[BFTNET_COUNTER_COUNT] = {
    [BFTNET_COUNTER_CONN_INBOUND] = {NULL, false, "Inbound TCP connections accepted."},
    [BFTNET_COUNTER_CONN_OUTBOUND] = {NULL, false, "Outbound connections dialed."},
    [BFTNET_COUNTER_CONN_ESTABLISHED] = {NULL, false,
                                         "Connections that completed the upgrade (Noise, yamux)."},
    [BFTNET_COUNTER_CONN_CLOSED] = {NULL, false, "Connections closed, in any state."},
    [BFTNET_COUNTER_DIAL_FAILED] = {NULL, false, "Dials whose TCP connect failed."},
    [BFTNET_COUNTER_HANDSHAKE_TIMEOUT] = {NULL, false,
                                          "Connections not upgraded within handshake_timeout_ms."},
    [BFTNET_COUNTER_PING_TIMEOUT] =
        {NULL, false, "Connections closed because a keepalive ping went unanswered."},
    [BFTNET_COUNTER_PINGS_SENT] = {NULL, false, "Pings sent (keepalive and bftnet_ping)."},
    [BFTNET_COUNTER_PINGS_ANSWERED] = {NULL, false, "Pings answered."},
    [BFTNET_COUNTER_STREAMS_OPENED] = {NULL, false, "yamux streams opened by this node."},
    [BFTNET_COUNTER_STREAMS_ACCEPTED] = {NULL, false, "yamux streams opened by peers."},
    [BFTNET_COUNTER_STREAMS_REFUSED] = {NULL, false,
                                        "Peer streams refused at the yamux stream limit."},
    [BFTNET_COUNTER_PROTO_NA] = {NULL, false, "Protocols refused with na (multistream-select)."},
    [BFTNET_COUNTER_BYTES_IN] = {"in_bytes", false, "Bytes read from every connection."},
    [BFTNET_COUNTER_BYTES_OUT] = {"out_bytes", false, "Bytes written to every connection."},
    [BFTNET_COUNTER_BAD_MULTISTREAM] = {NULL, false, "Malformed multistream-select input."},
    [BFTNET_COUNTER_BAD_NOISE_FRAME] = {NULL, false, "Malformed Noise frames."},
    [BFTNET_COUNTER_BAD_NOISE_HANDSHAKE] = {NULL, false, "Failed Noise handshakes."},
    [BFTNET_COUNTER_BAD_NOISE_DECRYPT] = {NULL, false, "Noise frames that failed authentication."},
    [BFTNET_COUNTER_BAD_PAYLOAD] = {NULL, false, "Malformed libp2p handshake payloads."},
    [BFTNET_COUNTER_BAD_SIGNATURE] = {NULL, false, "Handshake payloads with a bad signature."},
    [BFTNET_COUNTER_PEER_ID_MISMATCH] = {NULL, false,
                                         "Dials answered by another peer ID than the one dialed."},
    [BFTNET_COUNTER_BAD_YAMUX] = {NULL, false, "yamux protocol violations."},
    [BFTNET_COUNTER_YAMUX_WINDOW_VIOLATION] = {NULL, false, "Peers that overran a yamux window."},
    [BFTNET_COUNTER_BAD_PING] = {NULL, false, "Wrong ping answers or ping floods."},
    [BFTNET_COUNTER_BAD_MESSAGE] = {NULL, false, "Malformed message frames from members."},
    [BFTNET_COUNTER_IO_ERRORS] = {NULL, false, "Connections ended by an I/O error."},
    [BFTNET_COUNTER_CONN_LIMIT] = {NULL, false, "Connections refused or closed at a limit."},
    [BFTNET_COUNTER_TENTATIVE_CREATED] = {NULL, false,
                                          "TentativeReceivers created (streams of non-members)."},
    [BFTNET_COUNTER_TENTATIVE_DESTROYED] = {NULL, false, "TentativeReceivers destroyed."},
    [BFTNET_COUNTER_TENTATIVE_PROMOTED] = {NULL, false,
                                           "TentativeReceivers promoted to a member's Receiver."},
    [BFTNET_COUNTER_TENTATIVE_BYTES] = {NULL, true, "Payload bytes buffered for non-members now."},
    [BFTNET_COUNTER_TENTATIVE_EVICTED] = {NULL, false,
                                          "Messages of non-members dropped from their buffers."},
    [BFTNET_COUNTER_DROPPED_REMOVED] = {NULL, false,
                                        "Messages queued for members when they were removed."},
    [BFTNET_COUNTER_ABORTED_REMOVED] = {NULL, false,
                                        "Messages mid-write when their member was removed."},
    [BFTNET_COUNTER_INBOUND_DISCARDED_REMOVED] = {NULL, false,
                                                  "Messages from removed members never taken."},
    [BFTNET_COUNTER_MIG_MIGRATED] = {NULL, false, "Stream migrations completed (resumes too)."},
    [BFTNET_COUNTER_MIG_DETACHED] = {NULL, false, "Logical streams that lost their connection."},
    [BFTNET_COUNTER_MIG_RESUMED] = {NULL, false, "Detached logical streams resumed."},
    [BFTNET_COUNTER_MIG_ABORTED] = {NULL, false, "Logical streams aborted, any reason."},
    [BFTNET_COUNTER_MIG_ABORTED_MSGS] = {NULL, false,
                                         "Messages lost with aborted streams (unconfirmed)."},
    [BFTNET_COUNTER_MIG_DENIED] = {NULL, false, "Migrations the peer denied."},
    [BFTNET_COUNTER_MIG_PEER_RESTARTED] = {NULL, false, "New incarnations of peers seen."},
    [BFTNET_COUNTER_MIG_RETRANSMITTED] = {NULL, false, "Bytes sent again after resumes."},
    [BFTNET_COUNTER_MIG_PLAIN] = {NULL, false, "Plain streams to peers without migration."},
    [BFTNET_COUNTER_MIG_CONN_CLOSED_EMPTY] = {NULL, false,
                                              "Duplicate connections closed once empty."},
    [BFTNET_COUNTER_MIG_BAD_MESSAGE] = {NULL, false,
                                        "Rejected: undecodable StreamMigration messages."},
    [BFTNET_COUNTER_MIG_UNEXPECTED_ACK] = {NULL, false,
                                           "Rejected: AckMigrate with no Migrate pending."},
    [BFTNET_COUNTER_MIG_BAD_PARITY] = {NULL, false, "Rejected: stream IDs of the wrong parity."},
    [BFTNET_COUNTER_MIG_ID_IN_USE] = {NULL, false, "Rejected: Labels reusing a live stream ID."},
    [BFTNET_COUNTER_MIG_REPLAY] = {NULL, false, "Rejected: Migrates replaying a used ID."},
    [BFTNET_COUNTER_MIG_NOT_LEADER] = {NULL, false,
                                       "Denied: Migrates from the follower of the pair."},
    [BFTNET_COUNTER_MIG_UNKNOWN_FROM] = {NULL, false, "Denied: Migrates naming no live stream."},
    [BFTNET_COUNTER_MIG_NO_OFFSET] = {NULL, false, "Rejected: Migrates without a read offset."},
    [BFTNET_COUNTER_MIG_BAD_OFFSET] = {NULL, false,
                                       "Rejected: read offsets outside what was sent."},
    [BFTNET_COUNTER_MIG_BAD_CREDIT] = {NULL, false, "Rejected: credit beyond the bytes sent."},
    [BFTNET_COUNTER_MIG_GAP] = {NULL, false, "Rejected: bytes beyond the read offset."},
    [BFTNET_COUNTER_MIG_DATA_AFTER_CLOSE] = {NULL, false, "Rejected: data after the writer's FIN."},
    [BFTNET_COUNTER_MIG_DATA_BEFORE_ACK] = {NULL, false,
                                            "Rejected: data on a carrier before its AckMigrate."},
    [BFTNET_COUNTER_MIG_STREAM_LIMIT] = {NULL, false,
                                         "Rejected: logical streams beyond the limit."},
    [BFTNET_COUNTER_MIG_ABORT_RESET] = {NULL, false,
                                        "Logical streams aborted by a reset (peers stopping too)."},
    [BFTNET_COUNTER_MIG_ABORT_DENIED] = {NULL, false,
                                         "Logical streams aborted because a resume was denied."},
    [BFTNET_COUNTER_MIG_ABORT_DETACH_TIMEOUT] = {NULL, false,
                                                 "Logical streams not resumed within "
                                                 "detach_timeout_ms."},
    [BFTNET_COUNTER_MIG_ABORT_PEER_RESTARTED] = {NULL, false,
                                                 "Logical streams aborted by a peer restart."},
    [BFTNET_COUNTER_MIG_ABORT_LOCAL] = {NULL, false, "Logical streams aborted locally."},
    [BFTNET_COUNTER_DROPPED_TOO_BIG] = {NULL, false,
                                        "Our messages above a member's max_message_size, "
                                        "never written."},
    [BFTNET_COUNTER_INBOUND_TOO_BIG] = {NULL, false,
                                        "Messages above our max_message_size (from members "
                                        "and not-yet members), skipped unread."},
    [BFTNET_COUNTER_MIG_BAD_CONFIRM] = {NULL, false,
                                        "Rejected: Confirms beyond the bytes sent (the stream "
                                        "aborts)."},
    [BFTNET_COUNTER_MIG_LEGACY_PEERS] = {NULL, false,
                                         "Peers that confirm with yamux window updates (an "
                                         "older bftnet)."},
    [BFTNET_COUNTER_CLASS_UNKNOWN] = {NULL, false,
                                      "Streams of a traffic class we do not have, answered na."},
    [BFTNET_COUNTER_CLASS_REFUSED] = {NULL, false, "Our traffic classes a peer answered na to."},
    [BFTNET_COUNTER_SUPERSEDED] = {NULL, false,
                                   "Queued keep-latest messages replaced by a newer one."},
    [BFTNET_COUNTER_MIG_STALE_STREAMS] = {NULL, false,
                                          "Streams refused: older than one the member opened "
                                          "later (heard of late)."},
    [BFTNET_COUNTER_MIG_STALE_INCARNATION] = {NULL, false,
                                              "Streams refused: from an incarnation the peer has "
                                              "since replaced (heard of late)."},
    [BFTNET_COUNTER_INFLIGHT_WAITS] = {NULL, false,
                                       "Times a less urgent class waited for a connection's "
                                       "in-flight cap (traffic classes)."},
};

static void node_series(out_t *o, bftnet_t *b) {
  for (int id = 0; id < BFTNET_COUNTER_COUNT; id++) {
    const node_fam_t *f = &node_fams[id];
    char name[96], help[160], value[32];
    const char *base = f->name ? f->name : bftnet_counter_name((bftnet_counter_id_t)id);
    snprintf(name, sizeof name, "%s%s", base, f->gauge ? "" : "_total");
    if (f->help)
      snprintf(help, sizeof help, "%s", f->help);
    else /* a counter this table does not describe yet */
      snprintf(help, sizeof help, "The node's %s counter (docs/OPERATING.md).", base);
    snprintf(value, sizeof value, "%" PRIu64,
             bn_counter_get(&b->counters, (bftnet_counter_id_t)id));
    family(o, name, f->gauge ? "gauge" : "counter", help);
    sample(o, name, NULL, NULL, NULL, value);
  }
}

/* ------------------------------------------------- the members' series */

typedef enum vkind { V_U64, V_U32, V_INT, V_SECONDS, V_SECONDS_OR_INF } vkind_t;

/* One series per member: a field of bftnet_peer_stats_t. */
typedef struct member_fam {
  const char *name, *type, *help;
  size_t off;
  vkind_t kind;
} member_fam_t;

#define MF(name, type, field, kind, help)                                                          \
  { name, type, help, offsetof(bftnet_peer_stats_t, field), kind }

static const member_fam_t member_fams[] = {
    MF("peer_enqueued_messages_total", "counter", enqueued, V_U64,
       "Messages accepted by bftnet_send and bftnet_broadcast for the member."),
    MF("peer_sent_messages_total", "counter", sent, V_U64,
       "Messages written to the member's stream."),
    MF("peer_delivered_messages_total", "counter", delivered, V_U64,
       "Messages received from the member and handed to the application."),
    MF("peer_dropped_overflow_messages_total", "counter", dropped_overflow, V_U64,
       "Messages dropped from the member's full send ring (oldest first)."),
    MF("peer_dropped_removed_messages_total", "counter", dropped_removed, V_U64,
       "Messages released when the member was removed."),
    MF("peer_aborted_messages_total", "counter", aborted, V_U64,
       "Messages lost unconfirmed with an aborted stream (an upper bound)."),
    MF("peer_sent_bytes_total", "counter", bytes_out, V_U64,
       "Message bytes written to the member's stream."),
    MF("peer_received_bytes_total", "counter", bytes_in, V_U64,
       "Message bytes received from the member."),
    MF("peer_reconnects_total", "counter", reconnects, V_U64,
       "Times the stream to the member was re-established."),
    MF("peer_tentative_evicted_messages_total", "counter", tentative_evicted, V_U64,
       "Messages the member sent before it was one, dropped from its bounded buffer."),
    MF("peer_send_queue_messages", "gauge", ring_depth, V_U32,
       "Messages queued for the member, not yet written."),
    MF("peer_receive_queue_messages", "gauge", inbound_depth, V_U32,
       "Messages received from the member, not yet taken by bftnet_recv."),
    MF("peer_connected", "gauge", connected, V_INT, "1 while the stream to the member is up."),
    MF("peer_migrations_total", "counter", migrations, V_U64,
       "Stream migrations with the member, resumes included."),
    MF("peer_detached_total", "counter", detached, V_U64,
       "Times a stream with the member lost its connection."),
    MF("peer_resumed_total", "counter", resumed, V_U64, "Times a detached stream resumed."),
    MF("peer_retransmitted_bytes_total", "counter", retransmitted, V_U64,
       "Bytes sent to the member again after resumes."),
    MF("peer_detach_last_seconds", "gauge", detach_ns_last, V_SECONDS,
       "The last detach-to-resume time."),
    MF("peer_detach_max_seconds", "gauge", detach_ns_max, V_SECONDS,
       "The longest detach-to-resume time."),
    MF("peer_restarts_total", "counter", peer_restarts, V_U64,
       "New incarnations (process restarts) of the member seen."),
    MF("peer_unconfirmed_bytes", "gauge", unconfirmed, V_U64,
       "Bytes written to the member not yet confirmed read."),
    MF("peer_rtt_seconds", "gauge", rtt_last_ns, V_SECONDS,
       "The last keepalive ping round trip to the member (0: none yet)."),
    MF("peer_rtt_smoothed_seconds", "gauge", rtt_smoothed_ns, V_SECONDS,
       "The smoothed keepalive round trip (gain 1/8)."),
    MF("peer_rtt_max_seconds", "gauge", rtt_max_ns, V_SECONDS,
       "The largest of the last 8 keepalive round trips."),
    MF("peer_since_heard_seconds", "gauge", since_heard_ns, V_SECONDS_OR_INF,
       "Time since anything last arrived from the member (+Inf: never)."),
    MF("peer_connection_age_seconds", "gauge", conn_age_ns, V_SECONDS,
       "Age of the member's current connection (0: none)."),
    MF("peer_inflight_bytes", "gauge", inflight_bytes, V_U64,
       "Bytes the kernel held for the member's connection, not yet acknowledged, when a less "
       "urgent class last asked to write (classes only)."),
    MF("peer_inflight_cap_bytes", "gauge", inflight_cap_bytes, V_U64,
       "The connection's in-flight cap for the less urgent classes (classes only)."),
};

/* One series per member and class: a field of bftnet_class_stats_t. */
#define CF(name, type, field, kind, help)                                                          \
  { name, type, help, offsetof(bftnet_class_stats_t, field), kind }

static const member_fam_t class_fams[] = {
    CF("class_enqueued_messages_total", "counter", enqueued, V_U64,
       "Messages accepted for the member in the class."),
    CF("class_sent_messages_total", "counter", sent, V_U64,
       "Messages written to the class's stream to the member."),
    CF("class_delivered_messages_total", "counter", delivered, V_U64,
       "Messages received from the member in the class and handed to the application."),
    CF("class_dropped_messages_total", "counter", dropped, V_U64,
       "Messages dropped from the class's full send ring (or broadcasts skipped)."),
    CF("class_superseded_messages_total", "counter", superseded, V_U64,
       "Queued keep-latest messages replaced by a newer one with their key."),
    CF("class_aborted_messages_total", "counter", aborted, V_U64,
       "Messages of the class lost unconfirmed with an aborted stream."),
    CF("class_sent_bytes_total", "counter", bytes_out, V_U64,
       "Message bytes written to the class's stream."),
    CF("class_received_bytes_total", "counter", bytes_in, V_U64,
       "Message bytes received from the member in the class."),
    CF("class_send_queue_messages", "gauge", ring_depth, V_U32,
       "Messages of the class queued for the member, not yet written."),
    CF("class_receive_queue_messages", "gauge", inbound_depth, V_U32,
       "Messages of the class received, not yet taken by bftnet_recv."),
    CF("class_queue_delay_p50_seconds", "gauge", delay_p50_ns, V_SECONDS,
       "Median queueing delay, send to written, over a sample (0: no sample)."),
    CF("class_queue_delay_p99_seconds", "gauge", delay_p99_ns, V_SECONDS,
       "99th percentile queueing delay, send to written, over a sample."),
    CF("class_queue_delay_max_seconds", "gauge", delay_max_ns, V_SECONDS,
       "The largest sampled queueing delay."),
    CF("class_connected", "gauge", connected, V_INT,
       "1 while the class's stream to the member is up."),
    CF("class_refused_by_peer_total", "counter", refused, V_U64,
       "Times the member answered na to the class."),
    CF("class_unconfirmed_bytes", "gauge", unconfirmed, V_U64,
       "Bytes of the class's stream written, not yet confirmed read."),
    /* Not class_tentative_evicted_messages_total: that is the node-wide
     * family (class_totals_series), which also counts non-members. */
    CF("class_peer_tentative_evicted_messages_total", "counter", tentative_evicted, V_U64,
       "Messages the member sent in the class before it was one, dropped from its bounded "
       "buffer."),
};

/* One series per class, node-wide: a field of bftnet_class_totals_t. They
 * outlive the members they came from, and per family the classes sum to
 * the node counter of the same meaning. */
typedef struct total_fam {
  const char *name, *help;
  size_t off;
} total_fam_t;

static const total_fam_t total_fams[] = {
    {"class_inbound_discarded_removed_messages_total",
     "Messages received in the class from members that were then removed, never taken.",
     offsetof(bftnet_class_totals_t, discarded_removed)},
    {"class_tentative_evicted_messages_total",
     "Messages of non-members in the class dropped from their buffers (promoted or not).",
     offsetof(bftnet_class_totals_t, tentative_evicted)},
};

/* What is copied per member inside the epoch section. */
typedef struct row {
  char id[BFTNET_NODE_ID_MAX];
  bftnet_peer_stats_t st;
  int path; /* the membership address of its connection, -1 inbound/none */
  bftnet_class_stats_t cls[BFTNET_MAX_CLASSES]; /* with two or more classes */
} row_t;

/* The field f->off of st (a bftnet_peer_stats_t or bftnet_class_stats_t). */
static void format_value(const member_fam_t *f, const void *st, char *v, size_t cap) {
  const char *p = (const char *)st + f->off;
  uint64_t u;
  switch (f->kind) {
  case V_U32:
    snprintf(v, cap, "%" PRIu32, *(const uint32_t *)(const void *)p);
    return;
  case V_INT:
    snprintf(v, cap, "%d", *(const int *)(const void *)p);
    return;
  case V_U64:
    snprintf(v, cap, "%" PRIu64, *(const uint64_t *)(const void *)p);
    return;
  case V_SECONDS:
  case V_SECONDS_OR_INF:
    u = *(const uint64_t *)(const void *)p;
    if (f->kind == V_SECONDS_OR_INF && u == UINT64_MAX)
      snprintf(v, cap, "+Inf");
    else
      snprintf(v, cap, "%.9g", (double)u / 1e9);
    return;
  }
}

static void member_series(out_t *o, const row_t *rows, size_t n) {
  char v[48];
  for (size_t k = 0; k < BN_ARRAY_LEN(member_fams); k++) {
    const member_fam_t *f = &member_fams[k];
    family(o, f->name, f->type, f->help);
    for (size_t i = 0; i < n; i++) {
      format_value(f, &rows[i].st, v, sizeof v);
      sample(o, f->name, rows[i].id, NULL, NULL, v);
    }
  }
  /* The current connection of each connected member: its direction and
   * which of the member's addresses it dialed (an index into the
   * membership, never the peer's own port: the set of series stays
   * bounded). */
  family(o, "peer_connection_info", "gauge",
         "The member's current connection: direction, and path = the index of the "
         "membership address it dialed (inbound: the member dialed us).");
  for (size_t i = 0; i < n; i++) {
    if (rows[i].st.conn_outbound < 0) continue;
    char extra[64];
    if (rows[i].path >= 0)
      snprintf(extra, sizeof extra, "direction=\"outbound\",path=\"%d\"", rows[i].path);
    else
      snprintf(extra, sizeof extra, "direction=\"%s\",path=\"%s\"",
               rows[i].st.conn_outbound ? "outbound" : "inbound",
               rows[i].st.conn_outbound ? "unlisted" : "inbound");
    sample(o, "peer_connection_info", rows[i].id, NULL, extra, "1");
  }
}

static void class_series(out_t *o, const bftnet_t *b, const row_t *rows, size_t n) {
  char v[48];
  for (size_t k = 0; k < BN_ARRAY_LEN(class_fams); k++) {
    const member_fam_t *f = &class_fams[k];
    family(o, f->name, f->type, f->help);
    for (size_t i = 0; i < n; i++)
      for (unsigned c = 0; c < b->ncls; c++) {
        format_value(f, &rows[i].cls[c], v, sizeof v);
        sample(o, f->name, rows[i].id, b->cls[c].c.name, NULL, v);
      }
  }
}

static void class_totals_series(out_t *o, bftnet_t *b) {
  bftnet_class_totals_t t[BFTNET_MAX_CLASSES];
  for (unsigned c = 0; c < b->ncls; c++)
    rx_class_totals(&b->rctx, c, &t[c]);
  for (size_t k = 0; k < BN_ARRAY_LEN(total_fams); k++) {
    const total_fam_t *f = &total_fams[k];
    family(o, f->name, "counter", f->help);
    for (unsigned c = 0; c < b->ncls; c++) {
      char v[24];
      snprintf(v, sizeof v, "%" PRIu64, *(const uint64_t *)(const void *)((char *)&t[c] + f->off));
      sample(o, f->name, NULL, b->cls[c].c.name, NULL, v);
    }
  }
}

/* Copies every member's statistics (one epoch section). *rows is malloc'd. */
static int copy_rows(bftnet_t *b, row_t **rows, size_t *n) {
  ck_epoch_section_t sec;
  ck_epoch_record_t *r = node__snapshot_enter(b, &sec);
  if (!r) return BFTNET_ENOMEM;
  msnap_t *s = node__snapshot_load(b);
  *n = s->n;
  *rows = calloc(s->n ? s->n : 1, sizeof **rows);
  if (*rows) {
    for (size_t i = 0; i < s->n; i++) {
      mbr_t *m = s->m[i];
      snprintf((*rows)[i].id, sizeof(*rows)[i].id, "%s", m->node_id);
      node__stats_fill(b, m, &(*rows)[i].st);
      (*rows)[i].path = ck_pr_load_int(&m->health.conn_path);
      for (unsigned c = 0; b->ncls > 1 && c < b->ncls; c++) {
        disp_class_stats(&m->d, c, &(*rows)[i].cls[c]);
        rx_class_stats(&m->r, c, &(*rows)[i].cls[c]);
      }
    }
  }
  node__snapshot_exit(b, r, &sec);
  return *rows ? 0 : BFTNET_ENOMEM;
}

BFTNET_API int bftnet_metrics_text(bftnet_t *b, char *buf, size_t cap, size_t *len) {
  if (!b || !len || (!buf && cap)) return BFTNET_EINVAL;
  row_t *rows;
  size_t n;
  int rc = copy_rows(b, &rows, &n);
  if (rc < 0) return rc;
  out_t o = {.buf = buf, .cap = cap};
  node_series(&o, b);
  size_t connected = 0;
  for (size_t i = 0; i < n; i++)
    connected += rows[i].st.connected != 0;
  family(&o, "members", "gauge", "Members in the current membership, this node excluded.");
  put(&o, "bftnet_members %zu\n", n);
  family(&o, "members_connected", "gauge", "Members whose stream is up.");
  put(&o, "bftnet_members_connected %zu\n", connected);
  member_series(&o, rows, n);
  if (b->ncls > 1) {
    class_series(&o, b, rows, n);
    class_totals_series(&o, b);
  }
  free(rows);
  if (o.len + 1 > cap) {
    if (cap) buf[0] = '\0'; /* nothing half-written stays behind */
    *len = o.len + 1;
    return BFTNET_EBUFSIZE;
  }
  *len = o.len;
  return 0;
}
