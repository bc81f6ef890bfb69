//! `filterPcapRecords`: a socket filter over the records of a piece of a pcap file (either byte
//! order, micro- or nanosecond timestamps), as `filterPcap`'s fast path (ts/pcap-fast.ts) reads it
//! in chunks. One call walks the chunk's whole records, runs the program over all of them as one
//! batch of the engine (`Program::run_batch`) where they lie in the chunk (offsets into it, no
//! copy), and writes the records it keeps, cut to the returned length, into the caller's output
//! buffer as a little-endian pcap of micro- or nanoseconds writes them: nothing per packet crosses
//! into JavaScript.
//!
//! The walk stops, for the TypeScript layer to report as the general path (`pcap.readBatches` +
//! `writeBatches`) would, at a record whose header the reader refuses (a fraction of a second out
//! of range, a captured length over the reader's limit), and when writing at a kept packet longer
//! than its original length (the writer refuses it).

use ebpf_vm::BatchInput;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::errors::{einval, Code};
use crate::program::NativeProgram;

const RECORD_HEADER: usize = 16;
/// The reader's limit on a captured length (`MAX_BLOCK_LENGTH` of ts/pcap/format.ts).
const MAX_CAPTURED: u32 = 16 * 1024 * 1024;

/// What one call did. Counts are of the records walked (all of them unless `stop` says otherwise).
#[napi(object)]
pub struct NativeRecordsOutcome {
    /// Bytes of `records` walked: whole records, up to the end of the last whole one or up to the
    /// record `stop` names.
    pub consumed: u32,
    /// Bytes of records written to `out`.
    pub written: u32,
    pub packets: u32,
    pub kept: u32,
    pub trapped: u32,
    /// Captured bytes of the packets walked, and of the kept ones after the cut to the returned length.
    pub bytes: f64,
    pub kept_bytes: f64,
    /// Why the walk ended early: "" (it did not: `consumed` is the end of the whole records),
    /// "fraction" or "length" (the header of the record at `consumed` is refused by the reader),
    /// "original" (the record at `consumed` was kept with `stop_keep` bytes, more than its
    /// original length: the writer refuses it; `kept` counts the records written before it).
    pub stop: String,
    pub stop_keep: u32,
}

/// How the records of the input lie, and how kept ones are written.
#[napi(object)]
pub struct RecordsLayout {
    /// The input's byte order is big-endian.
    pub big_endian: bool,
    /// The input's fractions of a second are nanoseconds (else microseconds).
    pub nano: bool,
    /// Write nanoseconds (a `pcap-ns` output; else microseconds). The output is little-endian.
    pub nano_out: bool,
}

/// The lists one call makes (see `filter_pcap_records`), kept for the next call on this thread.
#[derive(Default)]
struct Scratch {
    offsets: Vec<usize>,
    lengths: Vec<u32>,
    wire: Vec<u32>,
    retvals: Vec<u32>,
}

thread_local! {
    static SCRATCH: std::cell::Cell<Scratch> = std::cell::Cell::new(Scratch::default());
}

/// One record header as read: seconds, fraction, captured and original lengths.
struct Header([u32; 4]);

impl Header {
    /// The header at `at` (16 bytes there, which the caller checked).
    #[inline(always)]
    fn at(bytes: &[u8], at: usize, big_endian: bool) -> Header {
        let h: &[u8; RECORD_HEADER] = bytes[at..at + RECORD_HEADER]
            .try_into()
            .expect("a whole header");
        let word = |k: usize| {
            let b = [h[k], h[k + 1], h[k + 2], h[k + 3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        Header([word(0), word(4), word(8), word(12)])
    }
}

#[napi]
impl NativeProgram {
    /// Runs the program (a socket filter without JavaScript helpers) over every whole record of
    /// `records` (pcap records laid out as `layout` says: a piece of a file after its header that
    /// starts at a record) and, when `write`, writes each kept record into `out` (little-endian,
    /// the fraction in `layout.nano_out`'s unit) with its captured length cut to the returned
    /// length and to `snaplen` (the output's snap length). `out` must hold at least as many bytes
    /// as `records` (a kept record is never longer than it was). Each packet runs with its
    /// original length as `__sk_buff.len` where that is larger.
    #[napi(catch_unwind)]
    pub fn filter_pcap_records(
        &self,
        records: &[u8],
        mut out: Uint8ArraySlice<'_>,
        snaplen: u32,
        write: bool,
        layout: RecordsLayout,
    ) -> Result<NativeRecordsOutcome, Code> {
        // SAFETY: a borrowed view of the caller's private output buffer, alive for this call; no
        // JavaScript runs during it (the program has no JavaScript helpers).
        let out = unsafe { out.as_mut() };
        if write && out.len() < records.len() {
            return Err(einval(format!(
                "the output buffer has {} bytes, the records {}",
                out.len(),
                records.len()
            )));
        }
        let one_second = if layout.nano {
            1_000_000_000
        } else {
            1_000_000
        };
        let mut stop = "";
        // The walk's lists, kept from call to call rather than grown from empty on each.
        let mut scratch = SCRATCH.take();
        let Scratch {
            offsets,
            lengths,
            wire,
            retvals,
        } = &mut scratch;
        offsets.clear();
        lengths.clear();
        wire.clear();
        retvals.clear();
        let mut at = 0usize;
        while at + RECORD_HEADER <= records.len() {
            let header = Header::at(records, at, layout.big_endian);
            let [_, fraction, captured, original] = header.0;
            if fraction >= one_second {
                stop = "fraction";
                break;
            }
            if captured > MAX_CAPTURED {
                stop = "length";
                break;
            }
            if at + RECORD_HEADER + captured as usize > records.len() {
                break;
            }
            offsets.push(at + RECORD_HEADER);
            lengths.push(captured);
            wire.push(original);
            at += RECORD_HEADER + captured as usize;
        }
        let consumed = at;
        let mut trapped = 0u32;
        let input = BatchInput {
            packets: records,
            lengths,
            offsets: Some(offsets),
            wire_lengths: Some(wire),
            r0_only: true,
            ..BatchInput::default()
        };
        self.inner
            .run_batch(&input, |run| match run.result {
                Ok((output, _)) => retvals.push(output.r0 as u32),
                Err(_) => {
                    retvals.push(0);
                    trapped += 1;
                }
            })
            .map_err(|e| einval(e.message))?;

        let mut outcome = NativeRecordsOutcome {
            consumed: consumed as u32,
            written: 0,
            packets: offsets.len() as u32,
            kept: 0,
            trapped,
            bytes: lengths.iter().map(|&l| l as f64).sum(),
            kept_bytes: 0.0,
            stop: stop.to_string(),
            stop_keep: 0,
        };
        // The fraction as written: the input's, or converted between micro- and nanoseconds.
        let fraction = |f: u32| match (layout.nano, layout.nano_out) {
            (true, false) => f / 1000,
            (false, true) => f * 1000,
            _ => f,
        };
        let mut written = 0usize;
        for (i, &r) in retvals.iter().enumerate() {
            if r == 0 {
                continue;
            }
            let keep = r.min(lengths[i]);
            if write {
                let start = offsets[i] - RECORD_HEADER;
                let [seconds, frac, _, original] = Header::at(records, start, layout.big_endian).0;
                if keep > original {
                    outcome.consumed = start as u32;
                    outcome.stop = "original".to_string();
                    outcome.stop_keep = keep;
                    break;
                }
                let cut = keep.min(snaplen);
                let header = &mut out[written..written + RECORD_HEADER];
                for (k, v) in [seconds, fraction(frac), cut, original]
                    .into_iter()
                    .enumerate()
                {
                    header[4 * k..4 * k + 4].copy_from_slice(&v.to_le_bytes());
                }
                let data = &records[offsets[i]..][..cut as usize];
                out[written + RECORD_HEADER..][..data.len()].copy_from_slice(data);
                written += RECORD_HEADER + data.len();
            }
            outcome.kept += 1;
            outcome.kept_bytes += keep as f64;
        }
        outcome.written = written as u32;
        SCRATCH.set(scratch);
        Ok(outcome)
    }
}
