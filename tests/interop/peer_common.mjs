// peer_common.mjs — what the js-libp2p peers of the interop tests share
// (js_peer.mjs, js_mig_peer.mjs): Promise.withResolvers on Node 20, the
// libp2p modules, a node on TCP + Noise + the stock yamux + ping, its TCP
// address, a stderr logger, and a bounded stop.

// Node 20 lacks Promise.withResolvers (Node 22 has it), and some transitive
// dependencies call it. Define it before any of them is loaded: static imports
// are evaluated before a module's body, so the libraries are imported
// dynamically below (and the peers import them from here).
if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers () {
      let resolve
      let reject
      const promise = new this((res, rej) => { resolve = res; reject = rej })
      return { promise, resolve, reject }
    }
  })
}

const { createLibp2p } = await import('libp2p')
const { tcp } = await import('@libp2p/tcp')
const { noise } = await import('@chainsafe/libp2p-noise')
const { yamux } = await import('@chainsafe/libp2p-yamux')
const { ping } = await import('@libp2p/ping')

// newNode(listen, extra): a libp2p node (not started) listening on the
// multiaddrs `listen`, with TCP, Noise, yamux with its stock defaults
// (window auto-tuning on, first credit on the ACK of an accepted stream) and
// the ping service; `extra` adds to or replaces those options.
export async function newNode (listen, extra = {}) {
  return createLibp2p({
    addresses: { listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { ping: ping() },
    ...extra
  })
}

// tcpAddr(node): the node's first listen address on TCP (with /p2p/<id>),
// or undefined.
export function tcpAddr (node) {
  return node.getMultiaddrs().map(String).find((a) => a.includes('/tcp/'))
}

// logger(name): a function that writes its arguments to stderr as one line
// "name: ...".
export function logger (name) {
  return (...args) => { process.stderr.write(`${name}: ${args.join(' ')}\n`) }
}

// stopAndExit(node, code, onError): stops the node, then exits with `code`
// (a number, or a function asked at exit); exits anyway after 3 s if the
// stop hangs. onError(err), if given, hears a failed stop.
export async function stopAndExit (node, code, onError) {
  const exitCode = () => (typeof code === 'function' ? code() : code)
  const force = setTimeout(() => process.exit(exitCode()), 3000)
  force.unref()
  try { await node.stop() } catch (err) { if (onError) onError(err) }
  process.exit(exitCode())
}
