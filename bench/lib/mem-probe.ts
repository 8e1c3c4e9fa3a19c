/**
 * Preloaded into the measured process (NODE_OPTIONS=--import …) by
 * bench/supernode-capacity, so the bench can tell where the memory goes
 * without touching src/: on SIGUSR2 it reads `request.json` from
 * $BENCH_MEM_PROBE_DIR and answers with `reply-<id>.json` holding
 * process.memoryUsage(), V8 heap statistics and the live libuv resources by
 * type — and, when asked, writes a V8 heap snapshot first.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getHeapSpaceStatistics, getHeapStatistics, setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface ProbeRequest {
  id: number;
  snapshot: boolean;
  /** Run a full garbage collection first, so the heap figures count live objects only. */
  gc: boolean;
}

export interface ProbeReply {
  id: number;
  memory: NodeJS.MemoryUsage;
  heap: { totalHeapSize: number; totalPhysicalSize: number; usedHeapSize: number; mallocedMemory: number; externalMemory: number };
  /** Committed (physical) and used bytes per V8 heap space. */
  spaces: Record<string, { physical: number; used: number }>;
  resources: Record<string, number>;
  snapshot?: string;
  error?: string;
}

const dir = process.env.BENCH_MEM_PROBE_DIR;

let collect: (() => void) | undefined;

function fullGc(): void {
  if (!collect) {
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as () => void;
  }
  collect();
}

function answer(request: ProbeRequest): ProbeReply {
  if (request.gc) fullGc();
  const snapshot = request.snapshot ? writeHeapSnapshot(join(dir!, `supernode-${request.id}.heapsnapshot`)) : undefined;
  const resources: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) resources[type] = (resources[type] ?? 0) + 1;
  const h = getHeapStatistics();
  const memory = process.memoryUsage();
  const spaces: ProbeReply['spaces'] = {};
  for (const space of getHeapSpaceStatistics()) spaces[space.space_name] = { physical: space.physical_space_size, used: space.space_used_size };
  return {
    id: request.id,
    memory,
    spaces,
    heap: { totalHeapSize: h.total_heap_size, totalPhysicalSize: h.total_physical_size, usedHeapSize: h.used_heap_size, mallocedMemory: h.malloced_memory, externalMemory: h.external_memory },
    resources,
    ...(snapshot ? { snapshot } : {}),
  };
}

if (dir) {
  process.on('SIGUSR2', () => {
    let reply: ProbeReply;
    let id = 0;
    try {
      const request = JSON.parse(readFileSync(join(dir, 'request.json'), 'utf8')) as ProbeRequest;
      id = request.id;
      reply = answer(request);
    } catch (err) {
      reply = { id, memory: process.memoryUsage(), heap: { totalHeapSize: 0, totalPhysicalSize: 0, usedHeapSize: 0, mallocedMemory: 0, externalMemory: 0 }, spaces: {}, resources: {}, error: String(err) };
    }
    const path = join(dir, `reply-${id}.json`);
    writeFileSync(`${path}.tmp`, JSON.stringify(reply));
    renameSync(`${path}.tmp`, path);
  });
}
