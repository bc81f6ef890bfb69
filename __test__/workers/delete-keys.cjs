// Worker of map.test.ts: opens a pinned hash map whose keys are u32 in big-endian bytes (so that the
// map's byte order is numeric order), waits for the start signal in `workerData.start` (an Int32Array
// over shared memory), then deletes keys 0 to n-1 one by one and posts the keys it did delete
// (delete() was true). A batch walking the map in its order keeps landing where this worker is.
const { workerData, parentPort } = require('node:worker_threads')
const { BpfMap } = require('../../dist')

const map = BpfMap.fromPinned(workerData.pin)
const key = new Uint8Array(4)
const view = new DataView(key.buffer)
const start = new Int32Array(workerData.start)
Atomics.store(start, 1, 1)
Atomics.notify(start, 1)
Atomics.wait(start, 0, 0)
const deleted = []
for (let k = 0; k < workerData.n; k++) {
  view.setUint32(0, k, false)
  if (map.delete(key)) deleted.push(k)
}
parentPort.postMessage(deleted)
