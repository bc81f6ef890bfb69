// Worker of map.test.ts: opens a pinned map and runs a program that atomically adds 1 to the value
// at key 0, `repeat` times.
const { workerData, parentPort } = require('node:worker_threads')
const { BpfMap, Program } = require('../../dist')

const map = BpfMap.fromPinned(workerData.pin)
const prog = new Program({ instructions: Uint8Array.from(workerData.bytecode), maps: [map], engine: workerData.engine })
prog.run({ repeat: workerData.repeat })
parentPort.postMessage('done')
