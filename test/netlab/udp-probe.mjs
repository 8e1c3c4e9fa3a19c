#!/usr/bin/env node
/**
 * A tiny NAT probe in plain Node (dgram + net), run inside lab namespaces to
 * prove each NAT recipe without any Partyline code. It speaks JSON over UDP,
 * in the spirit of a STUN binding request with CHANGE-REQUEST (RFC 5780).
 *
 *   server --addr A [--alt-addr A2] --port P [--alt-port P2] [--peer H:P] [--tcp]
 *       UDP sockets on A:P, A:P2, A2:P, A2:P2 (those given). Every request is
 *       answered from the socket it reached ("self") with the source address
 *       it saw; on request also from "alt-port", "alt-addr", "alt-both", and
 *       "peer" (another probe server, asked over UDP to answer instead).
 *       With --tcp also a TCP listener on A:P that writes the address it saw.
 *       Prints {"event":"ready",...}, then {"event":"request",...} per request.
 *   map --to H:P[,H:P...] [--local-port N] [--timeout MS]
 *       From ONE local socket, asks every target what address it saw.
 *       Prints {"local":..., "results":[{"target","mapped"|null}]}.
 *   filter --to H:P --reply-from alt-port,alt-addr,alt-both,peer [--wait MS] [--timeout MS]
 *       From a FRESH local socket that has sent only to H:P, asks for replies
 *       from the other endpoints and reports which arrived through the NAT
 *       within --wait ms (default 1000) of the first reply.
 *       Prints {"local", "target", "mapped", "arrived":[via...]}.
 *   tcp --to H:P [--timeout MS]
 *       Connects over TCP and prints {"target","mapped"|null,"error"?}.
 *
 * Exit status 0 when the probe ran (whatever got through), 2 on bad usage.
 */
import dgram from 'node:dgram';
import net from 'node:net';

const VIAS = ['self', 'alt-port', 'alt-addr', 'alt-both', 'peer'];

function usage(message) {
  process.stderr.write(`udp-probe: ${message}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const [command, ...rest] = argv;
  const opts = {};
  for (let i = 0; i < rest.length; i++) {
    const key = rest[i];
    if (!key.startsWith('--')) usage(`unexpected argument ${JSON.stringify(key)}`);
    const name = key.slice(2);
    if (name === 'tcp') opts.tcp = true;
    else if (i + 1 < rest.length) opts[name] = rest[++i];
    else usage(`${key} needs a value`);
  }
  return { command, opts };
}

function endpoint(text, what) {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(text ?? '');
  if (!m || Number(m[2]) > 65535) usage(`${what}: ${JSON.stringify(text)}, expected IPv4:port`);
  return { address: m[1], port: Number(m[2]) };
}

function int(text, what, fallback) {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) usage(`${what}: ${JSON.stringify(text)}, expected a non-negative integer`);
  return n;
}

const show = (ep) => `${ep.address}:${ep.port}`;
const print = (value) => process.stdout.write(JSON.stringify(value) + '\n');

/** Parse one datagram as a probe message; undefined (and a note on stderr) for anything else. */
function decode(buf, rinfo) {
  try {
    const msg = JSON.parse(buf.toString());
    if (msg && typeof msg === 'object' && typeof msg.type === 'string' && typeof msg.id === 'string') return msg;
  } catch (err) {
    process.stderr.write(`udp-probe: ignoring non-JSON datagram from ${show(rinfo)}: ${err.message}\n`);
    return undefined;
  }
  process.stderr.write(`udp-probe: ignoring datagram without type/id from ${show(rinfo)}\n`);
  return undefined;
}

function bindUdp(address, port) {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', reject);
    socket.bind({ address, port, exclusive: true }, () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

async function server(opts) {
  const addr = opts.addr ?? usage('server needs --addr');
  const port = int(opts.port, '--port', 3478);
  const altPort = opts['alt-port'] === undefined ? undefined : int(opts['alt-port'], '--alt-port');
  const altAddr = opts['alt-addr'];
  const peer = opts.peer === undefined ? undefined : endpoint(opts.peer, '--peer');
  // Keys: address letter P (primary) or A (alt), then port letter p (primary) or a (alt).
  const sockets = new Map();
  const want = [['Pp', addr, port], ['Pa', addr, altPort], ['Ap', altAddr, port], ['Aa', altAddr, altPort]];
  for (const [key, a, p] of want) if (a !== undefined && p !== undefined) sockets.set(key, await bindUdp(a, p));
  // The socket that answers for `via`, relative to the socket the request reached.
  const flip = (key, via) => {
    const a = via === 'alt-addr' || via === 'alt-both' ? (key[0] === 'P' ? 'A' : 'P') : key[0];
    const p = via === 'alt-port' || via === 'alt-both' ? (key[1] === 'p' ? 'a' : 'p') : key[1];
    return sockets.get(a + p);
  };
  for (const [key, socket] of sockets) {
    const local = socket.address();
    socket.on('message', (buf, rinfo) => {
      const msg = decode(buf, rinfo);
      if (!msg) return;
      if (msg.type === 'relay') {
        // Another probe server asks us to answer its client (the "peer" reply).
        const to = endpoint(msg.to, 'relay.to');
        socket.send(JSON.stringify({ type: 'mapped', id: msg.id, mapped: msg.to, via: 'peer', server: show(local) }), to.port, to.address);
        return;
      }
      if (msg.type !== 'probe') return;
      const mapped = show(rinfo);
      print({ event: 'request', id: msg.id, from: mapped, to: show(local) });
      const replyFrom = Array.isArray(msg.replyFrom) ? msg.replyFrom.filter((v) => VIAS.includes(v)) : [];
      for (const via of ['self', ...replyFrom]) {
        if (via === 'peer') {
          if (peer) socket.send(JSON.stringify({ type: 'relay', id: msg.id, to: mapped }), peer.port, peer.address);
          continue;
        }
        const from = via === 'self' ? socket : flip(key, via);
        if (!from) continue; // this server has no such endpoint; the client sees the reply missing
        from.send(JSON.stringify({ type: 'mapped', id: msg.id, mapped, via, server: show(from.address()) }), rinfo.port, rinfo.address);
      }
    });
  }
  let tcp;
  if (opts.tcp) {
    tcp = net.createServer((conn) => conn.end(JSON.stringify({ mapped: `${conn.remoteAddress}:${conn.remotePort}` }) + '\n'));
    await new Promise((resolve, reject) => tcp.once('error', reject).listen(port, addr, resolve));
  }
  print({ event: 'ready', udp: [...sockets.values()].map((s) => show(s.address())), tcp: tcp ? `${addr}:${port}` : null });
  const stop = () => {
    for (const s of sockets.values()) s.close();
    tcp?.close();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

let nextId = 0;
const newId = () => `${process.pid}-${nextId++}`;

/**
 * Send `request` to `target` every 100 ms until `done()` says so or timeoutMs passes.
 * Resolves when done or timed out.
 */
function retransmit(socket, target, request, timeoutMs, done) {
  return new Promise((resolve) => {
    const payload = JSON.stringify(request);
    const send = () => socket.send(payload, target.port, target.address);
    send();
    const timer = setInterval(() => (done() ? finish() : send()), 100);
    const deadline = setTimeout(finish, timeoutMs);
    function finish() {
      clearInterval(timer);
      clearTimeout(deadline);
      resolve();
    }
  });
}

async function mapCommand(opts) {
  const targets = (opts.to ?? usage('map needs --to')).split(',').map((t) => endpoint(t, '--to'));
  const timeoutMs = int(opts.timeout, '--timeout', 1000);
  const socket = await bindUdp(opts.bind ?? '0.0.0.0', int(opts['local-port'], '--local-port', 0));
  const replies = new Map(); // id -> message
  socket.on('message', (buf, rinfo) => {
    const msg = decode(buf, rinfo);
    if (msg?.type === 'mapped' && !replies.has(msg.id)) replies.set(msg.id, msg);
  });
  const ids = targets.map(() => newId());
  await Promise.all(targets.map((target, i) =>
    retransmit(socket, target, { type: 'probe', id: ids[i], replyFrom: [] }, timeoutMs, () => replies.has(ids[i]))));
  print({
    local: show(socket.address()),
    results: targets.map((target, i) => ({ target: show(target), mapped: replies.get(ids[i])?.mapped ?? null })),
  });
  socket.close();
}

async function filterCommand(opts) {
  const target = endpoint(opts.to, '--to');
  const replyFrom = (opts['reply-from'] ?? '').split(',').filter(Boolean);
  for (const via of replyFrom) if (!VIAS.includes(via) || via === 'self') usage(`--reply-from: ${via}, expected ${VIAS.slice(1).join(', ')}`);
  const waitMs = int(opts.wait, '--wait', 1000);
  const timeoutMs = int(opts.timeout, '--timeout', 1000);
  const socket = await bindUdp(opts.bind ?? '0.0.0.0', int(opts['local-port'], '--local-port', 0));
  const id = newId();
  const arrived = new Map(); // via -> reply
  socket.on('message', (buf, rinfo) => {
    const msg = decode(buf, rinfo);
    if (msg?.type === 'mapped' && msg.id === id && !arrived.has(msg.via)) arrived.set(msg.via, { ...msg, source: show(rinfo) });
  });
  await retransmit(socket, target, { type: 'probe', id, replyFrom }, timeoutMs, () => arrived.has('self'));
  if (arrived.has('self')) {
    // Wait for the other replies; stop early once all of them are in (absent ones cost the full wait).
    const deadline = Date.now() + waitMs;
    while (Date.now() < deadline && !replyFrom.every((v) => arrived.has(v))) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  print({
    local: show(socket.address()),
    target: show(target),
    mapped: arrived.get('self')?.mapped ?? null,
    arrived: VIAS.filter((v) => arrived.has(v)),
    replies: [...arrived.values()].map(({ via, source, mapped }) => ({ via, source, mapped })),
  });
  socket.close();
}

function tcpCommand(opts) {
  const target = endpoint(opts.to, '--to');
  const timeoutMs = int(opts.timeout, '--timeout', 2000);
  const conn = net.connect({ host: target.address, port: target.port });
  let data = '';
  let done = false;
  const finish = (mapped, error) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    conn.destroy();
    print({ target: show(target), mapped, ...(error ? { error } : {}) });
  };
  const timer = setTimeout(() => finish(null, `timeout after ${timeoutMs} ms`), timeoutMs);
  conn.setEncoding('utf8');
  conn.on('data', (chunk) => (data += chunk));
  conn.on('end', () => {
    try {
      finish(JSON.parse(data).mapped ?? null);
    } catch (err) {
      finish(null, `bad reply ${JSON.stringify(data)}: ${err.message}`);
    }
  });
  conn.on('error', (err) => finish(null, err.message));
}

const { command, opts } = parseArgs(process.argv.slice(2));
const commands = { server, map: mapCommand, filter: filterCommand, tcp: tcpCommand };
const handler = commands[command] ?? usage(`unknown command ${JSON.stringify(command)}; expected ${Object.keys(commands).join(', ')}`);
Promise.resolve(handler(opts)).catch((err) => {
  process.stderr.write(`udp-probe: ${err.stack ?? err}\n`);
  process.exit(1);
});
