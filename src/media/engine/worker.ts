/**
 * The media engine's worker thread: hosts a `MediaCore` on the real audio
 * device (hal/audio) and talks to `MediaEngine` over `parentPort`
 * (protocol.ts). All per-frame and per-packet work happens here, off the
 * main thread's event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { checkAudioSpec, openAudioDevice } from '../../../hal/audio/index.js';
import { MediaCore } from './core.js';
import { errorInfo, ownArrayBuffer } from './protocol.js';
import type { FromWorker, ToWorker, WorkerInit } from './protocol.js';
import type { StreamParams } from './types.js';

const port = parentPort;
if (!port) throw new Error('media engine worker: run as a worker thread (worker_threads), not directly');

function post(message: FromWorker, transfer?: ArrayBuffer[]): void {
  port!.postMessage(message, transfer);
}

const init = workerData as WorkerInit;

/** Buffers arrive as Uint8Arrays: make them Buffers again. */
function revive(params: StreamParams): StreamParams {
  const buf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
  const { send, receive } = params.srtp;
  return { ...params, srtp: { ...params.srtp, send: { key: buf(send.key), salt: buf(send.salt) }, receive: { key: buf(receive.key), salt: buf(receive.salt) } } };
}

let core: MediaCore | undefined;
try {
  checkAudioSpec(init.audio);
  core = new MediaCore({
    openDevice: () => openAudioDevice(init.audio),
    send: (id, packet) => {
      const ab = ownArrayBuffer(packet);
      post({ type: 'send', id, packet: ab }, [ab]);
    },
    onDtmf: (event) => post({ type: 'dtmf', event }),
    onStats: (id, stats) => post({ type: 'stats', id, stats }),
    onError: (err, context) => post({ type: 'error', error: errorInfo(err, context) }),
    onTrace: init.trace ? (record) => post({ type: 'trace', record }) : undefined,
  });
  post({ type: 'ready' });
} catch (err) {
  post({ type: 'failed', error: errorInfo(err, 'starting the media engine') });
}

port.on('message', (message: ToWorker) => {
  if (!core) return;
  const c = core;
  try {
    switch (message.type) {
      case 'receive':
        c.receive(message.id, Buffer.from(message.packet));
        break;
      case 'add':
        try {
          c.addStream(message.id, revive(message.params));
        } catch (err) {
          post({ type: 'error', error: errorInfo(err, 'adding a stream', message.id) });
          post({ type: 'removed', id: message.id });
        }
        break;
      case 'remove':
        c.removeStream(message.id)
          .catch((err: unknown) => post({ type: 'error', error: errorInfo(err, 'removing a stream', message.id) }))
          .finally(() => post({ type: 'removed', id: message.id }));
        break;
      case 'hold':
        c.setHold(message.id, message.held);
        break;
      case 'dtmf':
        c.sendDtmf(message.id, message.digits);
        break;
      case 'mute':
        c.setMute(message.muted);
        break;
      case 'volume':
        c.setVolume(message.level);
        break;
      case 'usage':
        post({ type: 'usage', req: message.req, usage: { busyMs: c.busyMs, ticks: c.ticks } });
        break;
      case 'close':
        c.close()
          .catch((err: unknown) => post({ type: 'error', error: errorInfo(err, 'closing') }))
          .finally(() => post({ type: 'closed', req: message.req }));
        break;
    }
  } catch (err) {
    post({ type: 'error', error: errorInfo(err, message.type, 'id' in message ? message.id : undefined) });
  }
});
