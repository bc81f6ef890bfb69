//! `filterPcapRecords`: a socket filter over the records of a pcap file (either byte order,
//! micro- or nanosecond timestamps), as `filterPcap`'s fast road (ts/pcap-fast.ts) runs it: one
//! call takes a window of up to 64 MiB of the file from a record on, mapped where the page cache
//! holds it (`file_io::Window`, no copy into a read buffer), walks its whole records, runs the
//! program over them in batches of the engine (`Program::run_batch_r0`) where they lie, and writes
//! the records it keeps, cut to the returned length, to the output as the pcap writer writes them
//! (little-endian, the fraction of a second in the output's unit): a record that needs no change
//! goes out as its own bytes, straight from the mapping (`file_io::Gather`), so nothing is copied
//! in user space and nothing per packet crosses into JavaScript.
//!
//! The walk stops, for the TypeScript layer to report as the general path (`pcap.readBatches` +
//! `writeBatches`) would, at a record whose header the reader refuses (a fraction of a second out
//! of range, a captured length over the reader's limit), and when writing at a kept packet longer
//! than its original length (the writer refuses it).

use ebpf_vm::BatchInput;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::errors::{einval, io_error, Code};
use crate::file_io::{file_size, Gather, Window};
use crate::program::NativeProgram;

const RECORD_HEADER: usize = 16;
/// The reader's limit on a captured length (`MAX_BLOCK_LENGTH` of ts/pcap/format.ts).
const MAX_CAPTURED: u32 = 16 * 1024 * 1024;

/// Bytes of the file one call maps at most: more than the largest record the reader takes
/// (`MAX_CAPTURED` and its header), so that a window always holds the whole record it starts with
/// unless the file ends inside it.
const WINDOW: u64 = 64 << 20;
/// Records run as one batch of the engine (about 22 KiB of the bench's records): small, so that
/// the fetches `PREFETCH` asks for spread over the runs.
const BATCH: usize = 64;
/// How far ahead of each run the mapping is fetched into the cache (`BatchInput::prefetch_ahead`):
/// past the end of the next batch, so that its walk finds its headers in the cache (the next
/// record's place is known only once this one's header is read: a walk alone would wait for
/// every header). On the bench's capture, 64 records and 32 KiB ran in 62-64 ms of CPU per
/// million records, 1,024 and 8 KiB (fetched during the walk) in 68-70, 256 and 16 KiB in 115.
const PREFETCH: usize = 32 << 10;

/// What one call did. Counts are of the records walked (all of them unless `stop` says otherwise).
#[napi(object)]
pub struct NativeRecordsOutcome {
    /// The file offset after the records walked: the end of the last whole record of the window,
    /// or the record `stop` names.
    pub consumed: f64,
    /// The size of the capture when the call began (another process may change it during a pass).
    pub size: f64,
    pub packets: u32,
    pub kept: u32,
    pub trapped: u32,
    /// Captured bytes of the packets walked, and of the kept ones after the cut to the returned length.
    pub bytes: f64,
    pub kept_bytes: f64,
    /// Why the walk ended early: "" (it did not: `consumed` is the end of the window's whole
    /// records), "fraction" or "length" (the header of the record at `consumed` is refused by the
    /// reader), "original" (the record at `consumed` was kept with `stop_keep` bytes, more than
    /// its original length: the writer refuses it; `kept` counts the records written before it).
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

/// The lists one batch makes (see `filter_pcap_records`), kept for the next call on this thread.
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
    /// Runs the program (a socket filter without JavaScript helpers) over the whole records of
    /// the file open as `input` that start at byte `from` (a record's start, after the file
    /// header) and lie within the next 64 MiB, laid out as `layout` says; when `output` is a
    /// descriptor (not -1), writes each kept record to it at its current position (little-endian,
    /// the fraction in `layout.nano_out`'s unit) with its captured length cut to the returned
    /// length and to `snaplen` (the output's snap length). Each packet runs with its original
    /// length as `__sk_buff.len` where that is larger.
    #[napi(catch_unwind)]
    pub fn filter_pcap_records(
        &self,
        input: i32,
        from: f64,
        output: i32,
        snaplen: u32,
        layout: RecordsLayout,
    ) -> Result<NativeRecordsOutcome, Code> {
        let size = file_size(input).map_err(|e| io_error("the capture", e))?;
        if !(from >= 0.0 && from <= size as f64 && from.fract() == 0.0) {
            return Err(einval(format!(
                "record offset {from} outside the {size} bytes of the capture"
            )));
        }
        let from = from as u64;
        let window = Window::map(input, from, size.min(from + WINDOW))
            .map_err(|e| io_error("mapping the capture", e))?;
        let records = window.bytes();
        let write = output >= 0;
        let mut out = Gather::new(output);
        let one_second = if layout.nano {
            1_000_000_000
        } else {
            1_000_000
        };
        // The fraction as written: the input's, or converted between micro- and nanoseconds.
        let fraction = |f: u32| match (layout.nano, layout.nano_out) {
            (true, false) => f / 1000,
            (false, true) => f * 1000,
            _ => f,
        };
        // A kept record whole goes out as its own bytes when the writer would write the same.
        let same_header = !layout.big_endian && layout.nano == layout.nano_out;
        let mut outcome = NativeRecordsOutcome {
            consumed: 0.0,
            size: size as f64,
            packets: 0,
            kept: 0,
            trapped: 0,
            bytes: 0.0,
            kept_bytes: 0.0,
            stop: String::new(),
            stop_keep: 0,
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
        let mut at = 0usize;
        while stop.is_empty() {
            offsets.clear();
            lengths.clear();
            wire.clear();
            retvals.clear();
            while offsets.len() < BATCH && at + RECORD_HEADER <= records.len() {
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
                outcome.bytes += captured as f64;
                at += RECORD_HEADER + captured as usize;
            }
            if offsets.is_empty() {
                break;
            }
            outcome.packets += offsets.len() as u32;
            let input = BatchInput {
                packets: records,
                lengths,
                offsets: Some(offsets),
                wire_lengths: Some(wire),
                r0_only: true,
                prefetch_ahead: PREFETCH,
                ..BatchInput::default()
            };
            let trapped = &mut outcome.trapped;
            self.inner
                .run_batch_r0(&input, |_, result| match result {
                    Ok(output) => retvals.push(output.r0 as u32),
                    Err(_) => {
                        retvals.push(0);
                        *trapped += 1;
                    }
                })
                .map_err(|e| einval(e.message))?;
            for (i, &r) in retvals.iter().enumerate() {
                if r == 0 {
                    continue;
                }
                let captured = lengths[i];
                let keep = r.min(captured);
                if write {
                    let start = offsets[i] - RECORD_HEADER;
                    let [seconds, frac, _, original] =
                        Header::at(records, start, layout.big_endian).0;
                    if keep > original {
                        at = start;
                        stop = "original";
                        outcome.stop_keep = keep;
                        break;
                    }
                    let cut = keep.min(snaplen);
                    let pushed = if same_header && cut == captured {
                        out.push(&records[start..offsets[i] + cut as usize])
                    } else {
                        let mut header = [0u8; RECORD_HEADER];
                        for (k, v) in [seconds, fraction(frac), cut, original]
                            .into_iter()
                            .enumerate()
                        {
                            header[4 * k..4 * k + 4].copy_from_slice(&v.to_le_bytes());
                        }
                        out.push_header(header)
                            .and_then(|()| out.push(&records[offsets[i]..][..cut as usize]))
                    };
                    pushed.map_err(|e| io_error("writing the kept packets", e))?;
                }
                outcome.kept += 1;
                outcome.kept_bytes += keep as f64;
            }
        }
        out.flush()
            .map_err(|e| io_error("writing the kept packets", e))?;
        SCRATCH.set(scratch);
        outcome.consumed = (from + at as u64) as f64;
        outcome.stop = stop.to_string();
        Ok(outcome)
    }
}
