//! `filterPcapRecords`: a socket filter over the records of a piece of a little-endian
//! microsecond pcap file, as `filterPcap`'s fast path (ts/pcap-fast.ts) reads it in chunks. One
//! call walks the chunk's whole records where they lie, runs the program over all of them as one
//! batch of the engine (`Program::run_batch`) and writes the records it keeps, cut to the returned
//! length, into the caller's output buffer: nothing per packet crosses into JavaScript.
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

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

#[napi]
impl NativeProgram {
    /// Runs the program (a socket filter without JavaScript helpers) over every whole record of
    /// `records` (pcap records, little-endian, microseconds: a piece of a file after its header
    /// that starts at a record) and, when `write`, copies each kept record into `out` with its
    /// captured length cut to the returned length and to `snaplen` (the output's snap length).
    /// `out` must hold at least as many bytes as `records` (a kept record is never longer than it
    /// was). Each packet runs with its original length as `__sk_buff.len` where that is larger.
    #[napi(catch_unwind)]
    pub fn filter_pcap_records(
        &self,
        records: &[u8],
        mut out: Uint8ArraySlice<'_>,
        snaplen: u32,
        write: bool,
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
        let mut stop = "";
        let mut starts = Vec::new();
        let mut lengths = Vec::new();
        let mut wire = Vec::new();
        let mut at = 0usize;
        while at + RECORD_HEADER <= records.len() {
            let fraction = u32_at(records, at + 4);
            let captured = u32_at(records, at + 8);
            if fraction >= 1_000_000 {
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
            starts.push(at);
            lengths.push(captured);
            wire.push(u32_at(records, at + 12));
            at += RECORD_HEADER + captured as usize;
        }
        let consumed = at;
        // The packets one after the other, as a batch takes them.
        let mut packets = Vec::with_capacity(consumed - RECORD_HEADER * starts.len());
        for (&start, &len) in starts.iter().zip(&lengths) {
            packets.extend_from_slice(&records[start + RECORD_HEADER..][..len as usize]);
        }
        let mut retvals = Vec::with_capacity(starts.len());
        let mut trapped = 0u32;
        let input = BatchInput {
            packets: &packets,
            lengths: &lengths,
            wire_lengths: Some(&wire),
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
            packets: starts.len() as u32,
            kept: 0,
            trapped,
            bytes: lengths.iter().map(|&l| l as f64).sum(),
            kept_bytes: 0.0,
            stop: stop.to_string(),
            stop_keep: 0,
        };
        let mut written = 0usize;
        for (i, &r) in retvals.iter().enumerate() {
            if r == 0 {
                continue;
            }
            let keep = r.min(lengths[i]);
            if write {
                let start = starts[i];
                if keep > wire[i] {
                    outcome.consumed = start as u32;
                    outcome.stop = "original".to_string();
                    outcome.stop_keep = keep;
                    break;
                }
                let cut = keep.min(snaplen) as usize;
                out[written..written + RECORD_HEADER]
                    .copy_from_slice(&records[start..start + RECORD_HEADER]);
                out[written + 8..written + 12].copy_from_slice(&(cut as u32).to_le_bytes());
                out[written + RECORD_HEADER..written + RECORD_HEADER + cut]
                    .copy_from_slice(&records[start + RECORD_HEADER..][..cut]);
                written += RECORD_HEADER + cut;
            }
            outcome.kept += 1;
            outcome.kept_bytes += keep as f64;
        }
        outcome.written = written as u32;
        Ok(outcome)
    }
}
