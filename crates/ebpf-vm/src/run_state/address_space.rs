//! The address space a tracing run reads with `bpf_probe_read*`: memory images the caller places
//! at addresses of its choosing (a fake `task_struct`, a user buffer ...). As in the kernel, this
//! memory is not the program's: it is no region of the run, so loads and stores through these
//! addresses trap; only the probe-read helpers copy out of it, and `bpf_probe_write_user` into
//! the images the caller marked writable (`probe_read.rs`).
//!
//! The images are shared, not copied, by the runs given the same `AddressSpace` (a test run's
//! repetitions, a batch): a run costs a reference count, whatever the images' size. The first
//! write of a run copies them (copy on write), so every run starts from the caller's bytes.

use std::sync::Arc;

/// Bytes the caller says are mapped at `address` in the traced address space.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryImage {
    pub address: u64,
    pub bytes: Vec<u8>,
    /// Whether `bpf_probe_write_user` may write it (user memory the traced task can write).
    pub writable: bool,
}

/// The images of one run. Reads may span images that touch (memory is memory, wherever one
/// image ends and the next begins); any byte outside every image is a fault. With them, the
/// traced task's call stacks (innermost frame first), which `bpf_get_stackid` and `bpf_get_stack`
/// report (`stack.rs`): the kernel stack and the user stack, as the caller gives them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressSpace {
    images: Arc<Vec<MemoryImage>>,
    kernel_stack: Arc<[u64]>,
    user_stack: Arc<[u64]>,
    /// What `bpf_get_attach_cookie` returns: the cookie the probe was attached with.
    cookie: u64,
    /// What `bpf_get_func_ip` returns: the address of the probed function.
    func_ip: u64,
}

impl Default for AddressSpace {
    /// The empty address space, shared: every run state starts with one, and an `Arc` of a new
    /// empty slice would be an allocation per run.
    fn default() -> Self {
        static EMPTY: std::sync::OnceLock<Arc<Vec<MemoryImage>>> = std::sync::OnceLock::new();
        static NO_STACK: std::sync::OnceLock<Arc<[u64]>> = std::sync::OnceLock::new();
        let no_stack = NO_STACK.get_or_init(|| Arc::from(Vec::new()));
        AddressSpace {
            images: EMPTY.get_or_init(|| Arc::new(Vec::new())).clone(),
            kernel_stack: no_stack.clone(),
            user_stack: no_stack.clone(),
            cookie: 0,
            func_ip: 0,
        }
    }
}

impl AddressSpace {
    pub fn new(images: Vec<MemoryImage>) -> AddressSpace {
        AddressSpace {
            images: Arc::new(images),
            ..AddressSpace::default()
        }
    }

    /// The same images with these call stacks (instruction pointers, innermost first).
    pub fn with_stacks(mut self, kernel: Vec<u64>, user: Vec<u64>) -> AddressSpace {
        self.kernel_stack = kernel.into();
        self.user_stack = user.into();
        self
    }

    /// The same images with this attach cookie (`bpf_get_attach_cookie`).
    pub fn with_cookie(mut self, cookie: u64) -> AddressSpace {
        self.cookie = cookie;
        self
    }

    /// The attach cookie of the probe that runs the program (0: none, as for a program attached
    /// without one or test-run).
    pub fn cookie(&self) -> u64 {
        self.cookie
    }

    /// The same images with this probed-function address (`bpf_get_func_ip`).
    pub fn with_func_ip(mut self, func_ip: u64) -> AddressSpace {
        self.func_ip = func_ip;
        self
    }

    /// The address of the function the probe is on (0: not given, what the kernel returns for a
    /// kprobe that is not at a function's entry).
    pub fn func_ip(&self) -> u64 {
        self.func_ip
    }

    /// The writable images as they are now (what a run wrote into them).
    pub fn writable_images(&self) -> Vec<MemoryImage> {
        self.images.iter().filter(|i| i.writable).cloned().collect()
    }

    /// Writes `src` at `addr`, byte by byte, into writable images (where images overlap, into
    /// the one given last, which is the one reads see), until a byte whose address no writable
    /// image holds: the number of bytes written. Copies the images first if other runs share
    /// them.
    pub fn write(&mut self, addr: u64, src: &[u8]) -> usize {
        let place = |images: &[MemoryImage], at: u64| {
            images.iter().enumerate().rev().find_map(|(k, img)| {
                let off = usize::try_from(at.checked_sub(img.address)?).ok()?;
                (off < img.bytes.len()).then_some((k, off, img.writable))
            })
        };
        for (n, b) in src.iter().enumerate() {
            let Some(at) = addr.checked_add(n as u64) else {
                return n;
            };
            match place(&self.images, at) {
                Some((k, off, true)) => Arc::make_mut(&mut self.images)[k].bytes[off] = *b,
                _ => return n,
            }
        }
        src.len()
    }

    /// The kernel stack (`user` false) or the user stack of the traced task.
    pub fn stack(&self, user: bool) -> &[u64] {
        if user {
            &self.user_stack
        } else {
            &self.kernel_stack
        }
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty() && self.kernel_stack.is_empty() && self.user_stack.is_empty()
    }

    /// Whether this is the empty address space of a new run state: no images, stacks, cookie
    /// or probed-function address (what `RunState::recycle` need not reset).
    pub fn is_default(&self) -> bool {
        self.is_empty() && self.cookie == 0 && self.func_ip == 0
    }

    /// The byte at `addr`, or `None` where no image covers it. When images overlap, the one
    /// given last wins (as a later mapping would).
    pub fn byte(&self, addr: u64) -> Option<u8> {
        self.images.iter().rev().find_map(|img| {
            let off = addr.checked_sub(img.address)?;
            img.bytes.get(usize::try_from(off).ok()?).copied()
        })
    }

    /// Copies `dst.len()` bytes from `addr` into `dst`; `false` (with `dst` partly written) if
    /// any of them is not mapped or the range wraps around the address space.
    pub fn read(&self, addr: u64, dst: &mut [u8]) -> bool {
        let mut at = addr;
        let mut done = 0;
        while done < dst.len() {
            // The longest run of bytes one image holds from `at`.
            let Some((img, off)) = self.images.iter().rev().find_map(|img| {
                let off = usize::try_from(at.checked_sub(img.address)?).ok()?;
                (off < img.bytes.len()).then_some((img, off))
            }) else {
                return false;
            };
            let n = (img.bytes.len() - off).min(dst.len() - done);
            dst[done..done + n].copy_from_slice(&img.bytes[off..off + n]);
            done += n;
            match at.checked_add(n as u64) {
                Some(next) => at = next,
                None if done == dst.len() => break,
                None => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_inside_across_touching_images_and_faults_outside() {
        let space = AddressSpace::new(vec![
            MemoryImage {
                address: 0x1000,
                bytes: vec![1, 2, 3, 4],
                writable: false,
            },
            MemoryImage {
                address: 0x1004,
                bytes: vec![5, 6],
                writable: true,
            },
        ]);
        let mut b = [0u8; 6];
        assert!(space.read(0x1000, &mut b));
        assert_eq!(b, [1, 2, 3, 4, 5, 6]);
        let mut c = [0u8; 3];
        assert!(!space.read(0x1004, &mut c), "0x1006 is not mapped");
        assert!(!space.read(0xfff, &mut [0u8; 1]));
        assert!(space.read(0x9999, &mut []), "nothing to read, no fault");
        assert_eq!((space.byte(0x1005), space.byte(0x1006)), (Some(6), None));
    }

    #[test]
    fn a_range_that_wraps_faults() {
        let space = AddressSpace::new(vec![MemoryImage {
            address: u64::MAX - 1,
            bytes: vec![7, 8],
            writable: false,
        }]);
        let mut b = [0u8; 2];
        assert!(space.read(u64::MAX - 1, &mut b));
        assert_eq!(b, [7, 8]);
        assert!(!space.read(u64::MAX - 1, &mut [0u8; 3]));
    }

    #[test]
    fn writes_stop_at_the_first_byte_no_writable_image_holds_and_copy_on_write() {
        let shared = AddressSpace::new(vec![
            MemoryImage {
                address: 0x1000,
                bytes: vec![1, 2],
                writable: false,
            },
            MemoryImage {
                address: 0x1002,
                bytes: vec![3, 4],
                writable: true,
            },
        ]);
        let mut run = shared.clone();
        assert_eq!(run.write(0x1002, &[9, 8, 7]), 2, "0x1004 is not mapped");
        assert_eq!(run.write(0x1001, &[5]), 0, "read-only image");
        assert_eq!(run.writable_images()[0].bytes, vec![9, 8]);
        assert_eq!(
            shared.writable_images()[0].bytes,
            vec![3, 4],
            "the shared copy is untouched"
        );
        assert_eq!(run.write(u64::MAX, &[1, 2]), 0);
    }
}
