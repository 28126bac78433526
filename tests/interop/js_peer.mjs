#!/usr/bin/env node
// js-libp2p peer for bftnet's interop tests (driven by run_interop.sh).
//
//   node js_peer.mjs listen [LISTEN_MULTIADDR]
//       TCP + Noise + yamux + /ipfs/ping/1.0.0, and /bftnet/echo/1.0.0 (echoes
//       every byte back until the remote half-closes, then closes). Prints its
//       full multiaddr (.../p2p/<peer-id>) as the first stdout line, then logs
//       to stderr. Exits on SIGTERM/SIGINT or when stdin reaches EOF.
//
//   node js_peer.mjs dial MULTIADDR
//       Pings 3 times, round-trips 1 MiB through /bftnet/echo/1.0.0, proposes
//       /bftnet/does-not-exist/1.0.0 (the remote must answer "na"), pings again
//       on the same connection, and prints one JSON line:
//       {"ok":true,"peer":"12D3...","pings":[...],"echo_bytes":1048576,
//        "na":true,"ping_after_na":true,"same_connection":true}
//       Exit 0 only if every step passed; otherwise the JSON line has
//       "ok":false and "error", and the exit code is 1. Bounded by
//       BFTNET_INTEROP_TIMEOUT_MS (default 20000) overall.

import { newNode, tcpAddr, logger, stopAndExit } from './peer_common.mjs'

const { multiaddr } = await import('@multiformats/multiaddr')
const { randomBytes } = await import('node:crypto')
const { performance } = await import('node:perf_hooks')

const ECHO_PROTOCOL = '/bftnet/echo/1.0.0'
const MISSING_PROTOCOL = '/bftnet/does-not-exist/1.0.0'
const ECHO_BYTES = 1024 * 1024
const PING_COUNT = 3
const OVERALL_MS = Number(process.env.BFTNET_INTEROP_TIMEOUT_MS ?? 20000)
const STEP_MS = Math.min(10000, OVERALL_MS)

const log = logger('js_peer')

function usage () {
  process.stderr.write('usage: node js_peer.mjs listen [LISTEN_MULTIADDR]\n' +
                       '       node js_peer.mjs dial MULTIADDR\n')
  process.exit(2)
}

// ---------------------------------------------------------------- listen mode
async function runListen (listenAddr) {
  const node = await newNode([listenAddr])

  await node.handle(ECHO_PROTOCOL, ({ stream, connection }) => {
    log(`echo stream from ${connection.remotePeer}`)
    let echoed = 0
    // sink() consumes the source until the remote half-closes (FIN), then
    // closes our write side: exactly "echo until EOF, then close".
    async function * counted (source) {
      for await (const chunk of source) {
        echoed += chunk.byteLength
        yield chunk
      }
    }
    stream.sink(counted(stream.source))
      .then(() => log(`echo stream done, ${echoed} bytes echoed`))
      .catch((err) => {
        log(`echo stream failed after ${echoed} bytes: ${err.message}`)
        stream.abort(err)
      })
  })

  node.addEventListener('connection:open', (evt) => {
    const c = evt.detail
    log(`connection open: ${c.remotePeer} ${c.remoteAddr} (${c.direction}, ` +
        `${c.encryption ?? '?'}, ${c.multiplexer ?? '?'})`)
  })
  node.addEventListener('connection:close', (evt) => {
    log(`connection closed: ${evt.detail.remotePeer}`)
  })

  await node.start()
  const addrs = node.getMultiaddrs().map(String)
  const addr = tcpAddr(node) ?? addrs[0]
  if (addr == null) {
    throw new Error('node has no listen address')
  }
  process.stdout.write(`${addr}\n`)
  log(`listening as ${node.peerId} on ${addrs.join(' ')}`)

  let stopping = false
  const stop = async (why) => {
    if (stopping) return
    stopping = true
    log(`stopping (${why})`)
    await stopAndExit(node, 0, (err) => log(`stop: ${err.message}`))
  }
  process.on('SIGTERM', () => { void stop('SIGTERM') })
  process.on('SIGINT', () => { void stop('SIGINT') })
  process.stdin.on('end', () => { void stop('stdin EOF') })
  process.stdin.on('error', () => { void stop('stdin error') })
  process.stdin.resume()
}

// ------------------------------------------------------------------ dial mode
function withTimeout (promise, ms, what) {
  let timer
  const timeout = new Promise((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

async function timedPing (node, target) {
  const t0 = performance.now()
  await node.services.ping.ping(target, { signal: AbortSignal.timeout(STEP_MS) })
  return Math.round((performance.now() - t0) * 1000) / 1000
}

// Chunk sizes that cross yamux's 64 KiB frame limit and the 256 KiB initial
// window, plus tiny writes; deterministic so a failure is reproducible.
function chunkSizes (total) {
  const pattern = [1, 7, 512, 1000, 4096, 16384, 65535, 65536, 65537, 100000, 262144, 300000]
  const sizes = []
  let left = total
  for (let i = 0; left > 0; i++) {
    const n = Math.min(pattern[i % pattern.length], left)
    sizes.push(n)
    left -= n
  }
  return sizes
}

async function echoRoundTrip (node, target) {
  const stream = await node.dialProtocol(target, ECHO_PROTOCOL,
    { signal: AbortSignal.timeout(STEP_MS) })
  const sent = randomBytes(ECHO_BYTES)
  const sizes = chunkSizes(ECHO_BYTES)

  async function * source () {
    let off = 0
    for (const n of sizes) {
      yield sent.subarray(off, off + n)
      off += n
    }
  }
  // Read concurrently with writing: the echo side is flow-controlled, so
  // writing everything before reading would deadlock once windows fill up.
  const reader = (async () => {
    const got = Buffer.alloc(ECHO_BYTES)
    let n = 0
    for await (const chunk of stream.source) {
      const buf = chunk.subarray()
      if (n + buf.byteLength > ECHO_BYTES) {
        throw new Error(`echo returned more than ${ECHO_BYTES} bytes`)
      }
      got.set(buf, n)
      n += buf.byteLength
    }
    return { got, n }
  })()
  // sink() ends by closing our write side: the half-close the echo waits for.
  const [, { got, n }] = await Promise.all([stream.sink(source()), reader])
  if (n !== ECHO_BYTES) {
    throw new Error(`echo returned ${n} bytes, expected ${ECHO_BYTES}`)
  }
  if (!got.equals(sent)) {
    let i = 0
    while (got[i] === sent[i]) i++
    throw new Error(`echo returned different bytes (first difference at offset ${i})`)
  }
  await stream.close().catch(() => {})
  return { bytes: n, chunks: sizes.length }
}

async function expectNa (node, target) {
  try {
    const stream = await node.dialProtocol(target, MISSING_PROTOCOL,
      { signal: AbortSignal.timeout(STEP_MS) })
    stream.abort(new Error('unexpected'))
  } catch (err) {
    if (err.name === 'UnsupportedProtocolError') {
      return true
    }
    throw new Error(`proposing ${MISSING_PROTOCOL} failed, but not with "na": ${err.name}: ${err.message}`)
  }
  throw new Error(`remote accepted ${MISSING_PROTOCOL}; it should have answered "na"`)
}

async function runDial (addr) {
  const result = { ok: false, peer: null, pings: [], echo_bytes: 0, na: false, ping_after_na: false }
  const target = multiaddr(addr)
  const expected = target.getPeerId()
  if (expected == null) {
    throw new Error(`${addr} has no /p2p/<peer-id> component`)
  }
  const node = await newNode([])
  await node.start()
  let step = 'start'
  const done = async (code) => {
    await stopAndExit(node, code)
  }
  try {
    await withTimeout((async () => {
      step = 'ping'
      for (let i = 0; i < PING_COUNT; i++) {
        const rtt = await timedPing(node, target)
        result.pings.push(rtt)
        log(`ping ${i + 1}: ${rtt} ms`)
      }
      const conns = node.getConnections()
      if (conns.length !== 1) {
        throw new Error(`expected one connection after pinging, have ${conns.length}`)
      }
      const conn = conns[0]
      result.peer = conn.remotePeer.toString()
      if (result.peer !== expected) {
        throw new Error(`authenticated peer ${result.peer} is not ${expected}`)
      }
      log(`connected to ${result.peer} via ${conn.remoteAddr} (${conn.encryption}, ${conn.multiplexer})`)

      step = 'echo'
      const echo = await echoRoundTrip(node, target)
      result.echo_bytes = echo.bytes
      log(`echo: ${echo.bytes} bytes in ${echo.chunks} writes came back identical`)

      step = 'na'
      result.na = await expectNa(node, target)
      log(`${MISSING_PROTOCOL}: remote answered na, as expected`)

      step = 'ping after na'
      const rtt = await timedPing(node, target)
      result.pings.push(rtt)
      const still = node.getConnections().map((c) => c.id)
      result.same_connection = still.length === 1 && still[0] === conn.id && conn.status === 'open'
      if (!result.same_connection) {
        throw new Error('the connection did not survive the refused protocol (libp2p redialed)')
      }
      result.ping_after_na = true
      log(`ping after na: ${rtt} ms on the same connection`)
    })(), OVERALL_MS, 'interop dial')
    result.ok = true
  } catch (err) {
    result.error = `${step}: ${err.message}`
  }
  process.stdout.write(JSON.stringify(result) + '\n')
  if (!result.ok) {
    log(`FAILED at ${result.error}`)
  }
  await done(result.ok ? 0 : 1)
}

// ----------------------------------------------------------------------- main
const [mode, arg] = process.argv.slice(2)
try {
  if (mode === 'listen') {
    await runListen(arg ?? '/ip4/127.0.0.1/tcp/0')
  } else if (mode === 'dial' && arg != null) {
    await runDial(arg)
  } else {
    usage()
  }
} catch (err) {
  if (mode === 'dial') {
    process.stdout.write(JSON.stringify({ ok: false, error: err.message }) + '\n')
  }
  log(`error: ${err.stack ?? err.message}`)
  process.exit(1)
}
