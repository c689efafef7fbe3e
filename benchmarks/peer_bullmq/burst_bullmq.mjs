// BullMQ's side of benchmarks/peer_bullmq.py, run by node with this folder's npm packages.
//
//   node burst_bullmq.mjs URL N STREAM   -> one JSON line: instant_s, adds_per_s, bytes_per_job
//
// N delayed jobs added one by one with Queue.add(name, data, {jobId: couple, delay}) (one job
// per couple, as a team would when a couple's preferences arrive; delay = the instant - now),
// then one Worker (concurrency 10, BullMQ's other defaults) processes them; each job does one
// XADD to STREAM on a connection of its own. The run ends when STREAM holds N entries.
import { Queue, Worker } from 'bullmq';
import IORedis from 'ioredis';

// jobs/s at the least, to place the instant far enough ahead: one awaited Queue.add at a time
// ran at ~950/s on a loaded 2-core machine (load 9)
const ENQUEUE_RATE = 400;
const [url, nArg, stream] = process.argv.slice(2);
const n = Number(nArg);
const { hostname, port } = new URL(url);
const connection = { host: hostname, port: Number(port) };

const redis = new IORedis(url);
const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))[1]);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const queue = new Queue('nudge', { connection });
await queue.waitUntilReady();
const memory0 = await usedMemory();
const instantMs = Math.ceil((Date.now() + (n / ENQUEUE_RATE + 3) * 1000) / 1000) * 1000;
const started = performance.now();
for (let i = 0; i < n; i++) {
  const cid = `c${String(i).padStart(7, '0')}`;
  await queue.add('nudge', { couple_id: cid }, { jobId: cid, delay: instantMs - Date.now() });
}
const addSeconds = (performance.now() - started) / 1000;
const bytesPerJob = ((await usedMemory()) - memory0) / n;
if (Date.now() >= instantMs) {
  console.error('adding the jobs took longer than planned; the instant passed');
  process.exit(1);
}

const worker = new Worker(
  'nudge',
  async (job) => {
    await redis.xadd(stream, '*', 'couple_id', job.data.couple_id);
  },
  { connection, concurrency: 10 },
);
await worker.waitUntilReady();
const deadline = instantMs + Math.max(120_000, n * 20);
while ((await redis.xlen(stream)) < n && Date.now() < deadline) {
  await sleep(100);
}
await worker.close();
await queue.close();
redis.disconnect();
console.log(
  JSON.stringify({ instant_s: instantMs / 1000, adds_per_s: n / addSeconds, bytes_per_job: bytesPerJob }),
);
